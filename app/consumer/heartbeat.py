"""Keeps in-flight messages invisible while their work runs, so a long job is never delivered twice."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from botocore.exceptions import BotoCoreError, ClientError

from app.config import SQS_MAX_VISIBILITY_TIMEOUT
from app.consumer.message import ReceivedMessage
from app.consumer.queue import SqsQueue
from app.stats import RunStats

log = logging.getLogger(__name__)

# Entry errors meaning the receipt handle no longer holds the message: it was deleted, or its visibility
# lapsed and SQS handed it to someone else. Extending again cannot help.
LOST_LEASE_CODES = frozenset(
    {"ReceiptHandleIsInvalid", "AWS.SimpleQueueService.MessageNotInflight", "MessageNotInflight"}
)


class VisibilityHeartbeat:
    """One thread extends, in batches, every tracked message whose visibility has run half down.

    ``untrack`` waits for an extension call in flight, so a message released (visibility 0) or retried is
    never hidden again by an extension that raced it.
    """

    def __init__(
        self,
        queue: SqsQueue,
        *,
        visibility_timeout: int,
        stats: RunStats,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._visibility_timeout = visibility_timeout
        self._stats = stats
        self._clock = clock
        self._deadlines: dict[ReceivedMessage, float] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.tick_seconds = max(0.2, min(visibility_timeout / 4, 10.0))
        self.last_beat = clock()

    def track(self, messages: Iterable[ReceivedMessage]) -> None:
        with self._lock:
            for message in messages:
                self._deadlines[message] = message.received_at + self._visibility_timeout

    def untrack(self, messages: Iterable[ReceivedMessage]) -> None:
        with self._lock:
            for message in messages:
                self._deadlines.pop(message, None)

    def tracked(self) -> int:
        with self._lock:
            return len(self._deadlines)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="visibility-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self.tick_seconds):
            try:
                self.extend_due()
            except (BotoCoreError, ClientError) as exc:
                log.warning("visibility.extend_failed", extra={"error": str(exc)})
            except Exception:  # a bug here must not stop the heartbeat of every other message
                log.exception("visibility.extend_failed")
            self.last_beat = self._clock()

    def extend_due(self) -> int:
        """Extend every message within half a timeout of expiry; returns how many were extended."""
        with self._lock:
            now = self._clock()
            due = [
                (message, timeout)
                for message, deadline in self._deadlines.items()
                if deadline - now <= self._visibility_timeout / 2
                and (timeout := self._next_timeout(message, now, deadline)) is not None
            ]
            if not due:
                return 0
            failures = self._queue.change_visibility(due)
            failed = {failure.index: failure for failure in failures}
            extended = 0
            for index, (message, timeout) in enumerate(due):
                failure = failed.get(index)
                if failure is None:
                    self._deadlines[message] = now + timeout
                    extended += 1
                elif failure.code in LOST_LEASE_CODES:
                    del self._deadlines[message]
                    self._stats.add("visibility.lost")
                    log.warning(
                        "visibility.lost",
                        extra={
                            "message_id": message.message_id,
                            "code": failure.code,
                            "detail": failure.detail,
                        },
                    )
            self._stats.add("visibility.extended", extended)
            return extended

    def _next_timeout(self, message: ReceivedMessage, now: float, deadline: float) -> int | None:
        """SQS caps visibility at 12 hours from the receive; past that, nothing can keep a message hidden."""
        room = int(message.received_at + SQS_MAX_VISIBILITY_TIMEOUT - now)
        timeout = min(self._visibility_timeout, room)
        if now + timeout <= deadline:
            return None
        return timeout
