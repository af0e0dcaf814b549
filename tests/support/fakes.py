"""Stand-ins for our own seams (not for boto3): the SqsQueue (records calls, fails entries on request) and
the clock (time passes only when a test moves it or the code sleeps)."""

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


class FakeClock:
    """A monotonic clock for code that takes ``clock=``: call it, or use ``monotonic()`` and ``sleep()``."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
