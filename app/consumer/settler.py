"""Acts on message outcomes, each message exactly once, in as few SQS calls as the API allows.

Outcomes arrive one at a time from the worker threads; the settler gathers them for a short linger (or until
a batch of 10 is full) and then issues DeleteMessageBatch, ChangeMessageVisibilityBatch and, for dead letters,
SendMessageBatch to the DLQ followed by a delete. A dead letter is deleted from the source only once the DLQ
has accepted it; if the DLQ refuses it, the message is retried instead, so nothing is ever dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.consumer.backoff import ExponentialBackoff
from app.consumer.deadletter import dead_letter_message
from app.consumer.heartbeat import LOST_LEASE_CODES, VisibilityHeartbeat
from app.consumer.message import ReceivedMessage
from app.consumer.outcome import Ack, DeadLetter, Outcome, Release, Retry
from app.consumer.queue import EntryFailure, SqsQueue
from app.stats import RunStats

log = logging.getLogger(__name__)

MAX_SETTLE_ATTEMPTS = 3  # each attempt is itself retried by botocore; after that the message redelivers


@dataclass(eq=False)
class _Pending:
    message: ReceivedMessage
    outcome: Outcome
    attempts: int = 0


@dataclass(eq=False)
class _FlushRequest:
    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()


class Settler:
    def __init__(
        self,
        source: SqsQueue,
        dead_letter: SqsQueue,
        heartbeat: VisibilityHeartbeat,
        stats: RunStats,
        *,
        backoff: ExponentialBackoff,
        linger_seconds: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._dead_letter = dead_letter
        self._heartbeat = heartbeat
        self._stats = stats
        self._backoff = backoff
        self._linger = linger_seconds
        self._clock = clock
        self._inbox: queue.SimpleQueue[_Pending | _FlushRequest | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def settle(self, message: ReceivedMessage, outcome: Outcome) -> bool:
        """Queue the message's one settlement; False (and nothing done) if it was already settled."""
        if not message.claim_settlement():
            log.warning(
                "message.already_settled",
                extra={"message_id": message.message_id, "outcome": type(outcome).__name__},
            )
            return False
        self._inbox.put(_Pending(message, outcome))
        return True

    def flush(self) -> None:
        """Return once everything settled before this call has been sent to SQS (or given up on)."""
        request = _FlushRequest()
        self._inbox.put(request)
        request.done.wait()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="settler", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._inbox.put(_STOP)
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        pending: list[_Pending] = []
        oldest = 0.0
        while True:
            timeout = None if not pending else max(0.0, oldest + self._linger - self._clock())
            try:
                item = self._inbox.get(timeout=timeout)
            except queue.Empty:
                pending = self._send(pending)
                oldest = self._clock()
                continue
            if isinstance(item, _Pending):
                if not pending:
                    oldest = self._clock()
                pending.append(item)
                if sum(1 for p in pending if type(p.outcome) is type(item.outcome)) >= 10:
                    pending = self._send(pending)
                    oldest = self._clock()
                continue
            pending = self._send_until_done(pending)
            if isinstance(item, _FlushRequest):
                item.done.set()
                continue
            return  # _STOP

    def _send_until_done(self, pending: list[_Pending]) -> list[_Pending]:
        while pending:
            pending = self._send(pending)
        return pending

    def _send(self, pending: list[_Pending]) -> list[_Pending]:
        """One round of calls for everything pending; returns what must be tried again."""
        acks = [p for p in pending if isinstance(p.outcome, Ack)]
        visibility = [p for p in pending if isinstance(p.outcome, Retry | Release)]
        dead = [p for p in pending if isinstance(p.outcome, DeadLetter)]
        again: list[_Pending] = []
        if dead:
            acks_after_dlq, retry_instead = self._send_dead_letters(dead)
            acks += acks_after_dlq
            visibility += retry_instead
        if acks:
            again += self._call("delete", acks, self._source.delete)
        if visibility:
            again += self._call(
                "change_visibility",
                visibility,
                lambda msgs: self._source.change_visibility(
                    [(m, _visibility_timeout(p.outcome)) for m, p in zip(msgs, visibility, strict=True)]
                ),
            )
        return again

    def _send_dead_letters(self, dead: list[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
        outgoing = [
            dead_letter_message(
                p.message,
                p.outcome,  # type: ignore[arg-type]
                source_queue_url=self._source.url,
                fifo=self._dead_letter.is_fifo,
            )
            for p in dead
        ]
        try:
            failures = self._dead_letter.send(outgoing)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the messages are retried, not dropped
            failures = [EntryFailure(i, type(exc).__name__, str(exc), False) for i in range(len(dead))]
        refused = {failure.index: failure for failure in failures}
        delivered: list[_Pending] = []
        retry_instead: list[_Pending] = []
        for index, item in enumerate(dead):
            failure = refused.get(index)
            if failure is None:
                self._stats.add("dead_letter.sent")
                delivered.append(item)
                continue
            # Never delete what the DLQ did not take: bring it back later instead.
            self._stats.add("dead_letter.refused")
            log.error(
                "dead_letter.refused",
                extra={"message_id": item.message.message_id, "code": failure.code, "detail": failure.detail},
            )
            delay = self._backoff.delay_for(item.message.receive_count)
            retry_instead.append(_Pending(item.message, Retry(delay, failure.code, failure.detail)))
        return delivered, retry_instead

    def _call(
        self,
        action: str,
        items: Sequence[_Pending],
        call: Callable[[list[ReceivedMessage]], list[EntryFailure]],
    ) -> list[_Pending]:
        messages = [p.message for p in items]
        # Stop extending before acting, and wait for an extension in flight, so none can undo this call.
        self._heartbeat.untrack(messages)
        try:
            failures = call(messages)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the entries are tried again
            failures = [EntryFailure(i, type(exc).__name__, str(exc), False) for i in range(len(items))]
        refused = {failure.index: failure for failure in failures}
        again: list[_Pending] = []
        for index, item in enumerate(items):
            failure = refused.get(index)
            if failure is None:
                self._stats.add(f"sqs.{action}")
                continue
            if failure.code in LOST_LEASE_CODES:
                # The visibility lapsed and SQS handed the message out again: the other delivery settles it.
                self._stats.add("settle.lost_lease")
                log.warning("settle.lost_lease", extra=_failure_fields(item, action, failure))
                continue
            item.attempts += 1
            if item.attempts < MAX_SETTLE_ATTEMPTS:
                again.append(item)
                continue
            self._stats.add("settle.failed")
            log.error("settle.failed", extra=_failure_fields(item, action, failure))
        return again


def _visibility_timeout(outcome: Outcome) -> int:
    return outcome.delay_seconds if isinstance(outcome, Retry) else 0


def _failure_fields(item: _Pending, action: str, failure: EntryFailure) -> dict[str, object]:
    return {
        "message_id": item.message.message_id,
        "action": action,
        "code": failure.code,
        "detail": failure.detail,
        "consequence": "the message will be delivered again; indexing is idempotent",
    }
