"""Building a real Worker against an emulator, with a handler the test controls."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3

from app.config import QueueSettings, region_from_env
from app.consumer.queue import SqsQueue
from app.events import FileEvent
from app.handler import FileResult
from app.worker import Worker


class RecordingHandler:
    """Calls ``behaviour`` per event (default: succeed) and records every call, thread-safely."""

    def __init__(self, behaviour: Callable[[FileEvent, int], str | None] | None = None) -> None:
        self._behaviour = behaviour
        self._lock = threading.Lock()
        self.calls: list[tuple[float, FileEvent]] = []

    def handle(self, event: FileEvent) -> str:
        with self._lock:
            self.calls.append((time.monotonic(), event))
            attempt = sum(1 for _, e in self.calls if e.key == event.key)
        if self._behaviour is not None:
            result = self._behaviour(event, attempt)
            if result is not None:
                return result
        return FileResult.PROCESSED

    def keys(self) -> list[str]:
        with self._lock:
            return [event.key for _, event in self.calls]


def build_worker(
    queue_url: str, dlq_url: str, handler: Any, *, max_receive_count: int = 5, **env: str
) -> tuple[Worker, Any]:
    """A Worker wired like the CLI wires it; returns it with its SQS client (for counting calls)."""
    settings = QueueSettings.from_env({"SQS_QUEUE_URL": queue_url, "WAIT_TIME_SECONDS": "1", **env})
    client = boto3.client("sqs", region_name=region_from_env(os.environ))
    worker = Worker(
        settings,
        source=SqsQueue(client, queue_url),
        dead_letter=SqsQueue(client, dlq_url),
        max_receive_count=max_receive_count,
        handler=handler,
    )
    return worker, client


class CallCounter:
    """Counts the API operations a boto3 client makes, through botocore's own event hooks."""

    def __init__(self, client: Any) -> None:
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.counts[model.name] = self.counts.get(model.name, 0) + 1
