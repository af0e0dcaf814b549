"""A stand-in for our own SqsQueue seam (not for boto3): records calls, fails entries on request."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from app.consumer.message import ReceivedMessage
from app.consumer.queue import EntryFailure, OutgoingMessage


class FakeQueue:
    def __init__(self, url: str = "https://sqs.us-east-1.amazonaws.com/123456789012/files") -> None:
        self.url = url
        self.calls: list[tuple[str, list[object]]] = []
        self.fail_codes: dict[str, list[str]] = {}  # receipt handle or body -> codes for the next calls
        self.lock = threading.Lock()

    @property
    def is_fifo(self) -> bool:
        return self.url.endswith(".fifo")

    def _record(self, action: str, keys: list[str], payload: list[object]) -> list[EntryFailure]:
        with self.lock:
            self.calls.append((action, payload))
            failures = []
            for index, key in enumerate(keys):
                codes = self.fail_codes.get(key)
                if codes:
                    failures.append(EntryFailure(index, codes.pop(0), "injected", True))
            return failures

    def delete(self, messages: Sequence[ReceivedMessage]) -> list[EntryFailure]:
        return self._record("delete", [m.receipt_handle for m in messages], [m.message_id for m in messages])

    def change_visibility(self, entries: Sequence[tuple[ReceivedMessage, int]]) -> list[EntryFailure]:
        return self._record(
            "change_visibility",
            [m.receipt_handle for m, _ in entries],
            [(m.message_id, t) for m, t in entries],
        )

    def send(self, messages: Sequence[OutgoingMessage]) -> list[EntryFailure]:
        return self._record("send", [m.body for m in messages], list(messages))

    def actions(self) -> list[str]:
        with self.lock:
            return [action for action, _ in self.calls]


def message(n: int, *, body: str = "{}", receive_count: int = 1, received_at: float = 0.0) -> ReceivedMessage:
    return ReceivedMessage(
        message_id=f"id-{n}",
        receipt_handle=f"rh-{n}",
        body=body,
        receive_count=receive_count,
        received_at=received_at,
    )
