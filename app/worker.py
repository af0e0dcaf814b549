"""The worker: receive in batches, run up to WORKER_CONCURRENCY files at once, settle, and drain on request.

Threads, and what each owns:
- the *poller* receives batches while there is room (running + a bounded prefetch);
- WORKER_CONCURRENCY *file threads* turn each message into an outcome through the handler;
- the *settler* sends outcomes to SQS in batches; the *heartbeat* keeps in-flight messages invisible;
- the calling thread *supervises*: it waits for a drain request (signal, lifecycle, idle, fatal error) and
  then drains: stop receiving, release what has not started, let running work finish inside DRAIN_SECONDS.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from app import metrics
from app.aws import NO_SUCH_QUEUE_CODES, error_codes
from app.config import QueueSettings
from app.consumer.backoff import ExponentialBackoff
from app.consumer.heartbeat import VisibilityHeartbeat
from app.consumer.message import ReceivedMessage
from app.consumer.outcome import Ack, DeadLetter, Outcome, Release, Retry, outcome_of_failure
from app.consumer.prefetch import PrefetchPolicy
from app.consumer.queue import BATCH_LIMIT, SqsQueue
from app.consumer.settler import Settler
from app.drain import DrainSignal
from app.errors import FileError, PermanentError, TransientError
from app.events import FileEvent, InvalidMessage, parse_body
from app.handler import FileHandler
from app.state import WorkerStatus
from app.stats import RunStats

log = logging.getLogger(__name__)

# Receive errors that no retry will fix: the worker stops with a non-zero exit so the operator sees it.
_FATAL_RECEIVE_CODES = NO_SUCH_QUEUE_CODES | frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "KMS.AccessDeniedException",
    }
)
_RECEIVE_ERROR_PAUSE_MAX = 30.0
IDLE = "idle"


@dataclass(frozen=True)
class RunResult:
    cause: str
    stats: dict[str, int]
    abandoned: int  # files still running when the drain deadline passed (their messages were released)
    fatal: str | None = None

    @property
    def exit_code(self) -> int:
        return 1 if self.fatal or self.abandoned else 0


class Worker:
    def __init__(
        self,
        settings: QueueSettings,
        *,
        source: SqsQueue,
        dead_letter: SqsQueue,
        max_receive_count: int,
        handler: FileHandler,
        drain: DrainSignal | None = None,
        stats: RunStats | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._source = source
        self._handler = handler
        self._max_receive_count = max_receive_count
        self.drain_signal = drain or DrainSignal()
        self.stats = stats or RunStats()
        self._clock = clock
        self.worker_id = uuid.uuid4().hex[:12]
        self._backoff = ExponentialBackoff(settings.retry_base_seconds, settings.retry_max_seconds)
        self._prefetch = PrefetchPolicy(
            concurrency=settings.worker_concurrency, visibility_timeout=settings.visibility_timeout
        )
        self._heartbeat = VisibilityHeartbeat(
            source, visibility_timeout=settings.visibility_timeout, stats=self.stats, clock=clock
        )
        self._settler = Settler(source, dead_letter, self._heartbeat, self.stats, backoff=self._backoff)
        self._executor = ThreadPoolExecutor(settings.worker_concurrency, thread_name_prefix="file")
        # Guarded by _room: what this worker holds, and whether it may receive more.
        self._room = threading.Condition()
        self._futures: dict[Future[None], ReceivedMessage] = {}
        self._unstarted = 0
        self._stop_receiving = False
        self._draining = False
        self._last_activity = clock()
        self._fatal: str | None = None
        self._poll_wait_seconds = settings.wait_time_seconds
        self._state = "starting"
        self._cause: str | None = None
        self._loop_beat = time.time()

    # -- supervision -------------------------------------------------------------------------------------

    def run(self, *, until_idle: float | None = None) -> RunResult:
        """Work until a drain is requested, or, with ``until_idle``, until nothing arrived for that long."""
        log.info(
            "worker.started",
            extra={
                "worker_id": self.worker_id,
                "queue_url": self._source.url,
                "concurrency": self._settings.worker_concurrency,
                "visibility_timeout": self._settings.visibility_timeout,
                "max_receive_count": self._max_receive_count,
            },
        )
        with self._room:
            self._last_activity = self._clock()  # the idle window starts now, not at construction
        if until_idle is not None:
            # Poll no longer than the idle window, so a batch run ends soon after the queue empties.
            self._poll_wait_seconds = min(self._settings.wait_time_seconds, max(1, math.ceil(until_idle)))
        self._heartbeat.start()
        self._settler.start()
        poller = threading.Thread(target=self._poll, name="poller", daemon=True)
        poller.start()
        self._set_state("running")
        cause = self._supervise(until_idle)
        if cause == IDLE:
            cause = self._finish_after_idle(poller)
        abandoned = 0 if cause == IDLE else self._drain(cause, poller)
        self._settler.close()
        self._heartbeat.stop()
        self._executor.shutdown(wait=abandoned == 0, cancel_futures=True)
        self._set_state("stopped", cause)
        result = RunResult(cause=cause, stats=self.stats.snapshot(), abandoned=abandoned, fatal=self._fatal)
        log.info("worker.stopped", extra={"cause": cause, "abandoned": abandoned, "counts": result.stats})
        return result

    def _supervise(self, until_idle: float | None) -> str:
        while True:
            cause = self.drain_signal.wait(timeout=0.2)
            if cause is not None:
                return cause
            if self._fatal is not None:
                return "fatal"
            if until_idle is not None and self.idle_seconds() >= until_idle:
                return IDLE

    def status(self) -> WorkerStatus:
        with self._room:
            beat = time.time() if self._state == "draining" else self._loop_beat
            return WorkerStatus(self._state, beat, self._cause, len(self._futures), os.getpid())

    def _set_state(self, state: str, cause: str | None = None) -> None:
        with self._room:
            self._state, self._cause = state, cause
            self._loop_beat = time.time()
        metrics.set_worker_state(state)

    def idle_seconds(self) -> float:
        """How long this worker has held no message and received none; 0 while it holds any."""
        with self._room:
            if self._futures:
                return 0.0
            return self._clock() - self._last_activity

    def _finish_after_idle(self, poller: threading.Thread) -> str:
        """A batch run ends gracefully: stop receiving, then process whatever the last receive brought.

        A drain requested meanwhile (SIGTERM) takes over; its cause is returned instead of IDLE.
        """
        self._stop_receiving_now()
        while poller.is_alive() or self._holding():
            cause = self.drain_signal.wait(timeout=0.2)
            if cause is not None:
                return cause
        self._settler.flush()
        return IDLE

    def _holding(self) -> bool:
        with self._room:
            return bool(self._futures)

    def _drain(self, cause: str, poller: threading.Thread) -> int:
        deadline = self._clock() + self._settings.drain_seconds
        self._set_state("draining", cause)
        with self._room:
            self._draining = True
        self._stop_receiving_now()
        released = 0
        with self._room:
            held = list(self._futures.items())
        for future, message in held:
            if future.cancel():
                self._settle(message, Release(), started=self._clock(), events=())
                released += 1
        self._settler.flush()  # unstarted messages are visible to other workers from here on
        running = [future for future, _ in held if not future.cancelled()]
        self.stats.add(f"drains.{cause.split(':', 1)[0]}")
        log.info("worker.draining", extra={"cause": cause, "running": len(running), "released": released})
        wait_futures(running, timeout=max(0.0, deadline - self._clock()))
        # The poller may sit in a long poll; it releases whatever that brings once it returns.
        poller.join(timeout=self._settings.wait_time_seconds + 5)
        with self._room:
            still_running = list(self._futures.items())
        for _, message in still_running:
            self._settle(message, Release(), started=self._clock(), events=())
        if still_running:
            log.error(
                "worker.drain_deadline_passed",
                extra={"running": len(still_running), "drain_seconds": self._settings.drain_seconds},
            )
        self._settler.flush()
        return len(still_running)

    def _stop_receiving_now(self) -> None:
        with self._room:
            self._stop_receiving = True
            self._room.notify_all()

    # -- receiving ---------------------------------------------------------------------------------------

    def _poll(self) -> None:
        try:
            self._receive_until_stopped()
        except Exception as exc:
            log.exception("worker.poller_failed")
            self._fatal = f"poller failed: {type(exc).__name__}: {exc}"

    def _receive_until_stopped(self) -> None:
        pause = 1.0
        while (wanted := self._wait_for_room()) > 0:
            try:
                messages = self._source.receive(
                    max_messages=wanted,
                    wait_seconds=self._poll_wait_seconds,
                    visibility_timeout=self._settings.visibility_timeout,
                )
            except (BotoCoreError, ClientError) as exc:
                if _is_fatal(exc):
                    self._fatal = f"receive failed: {exc}"
                    log.error("worker.receive_fatal", extra={"error": str(exc)})
                    return
                self.stats.add("receive.errors")
                log.warning("worker.receive_failed", extra={"error": str(exc), "retry_in_s": pause})
                time.sleep(pause)
                pause = min(pause * 2, _RECEIVE_ERROR_PAUSE_MAX)
                continue
            pause = 1.0
            self._loop_beat = time.time()
            self.stats.add("sqs.receive")
            if messages:
                self._accept(messages)

    def _wait_for_room(self) -> int:
        """Block until a full batch fits (or the file threads would otherwise go idle); 0 means stop."""
        with self._room:
            while not self._stop_receiving:
                self._loop_beat = time.time()
                capacity = self._prefetch.capacity()
                room = capacity - len(self._futures)
                if room >= min(BATCH_LIMIT, capacity) or (room > 0 and self._unstarted == 0):
                    return min(BATCH_LIMIT, room)
                self._room.wait(timeout=1.0)
            return 0

    def _accept(self, messages: list[ReceivedMessage]) -> None:
        self.stats.add("messages.received", len(messages))
        with self._room:
            self._last_activity = self._clock()
            if self._draining:
                late = messages
            else:
                late = []
                self._heartbeat.track(messages)
                for message in messages:
                    future = self._executor.submit(self._process, message)
                    self._futures[future] = message
                    self._unstarted += 1
                    future.add_done_callback(self._forget)
                metrics.MESSAGES_IN_FLIGHT.set(len(self._futures))
        for message in late:
            self._settle(message, Release(), started=self._clock(), events=())

    def _forget(self, future: Future[None]) -> None:
        with self._room:
            self._futures.pop(future, None)
            metrics.MESSAGES_IN_FLIGHT.set(len(self._futures))
            if future.cancelled():
                self._unstarted -= 1
            self._last_activity = self._clock()
            self._room.notify_all()

    # -- processing --------------------------------------------------------------------------------------

    def _process(self, message: ReceivedMessage) -> None:
        with self._room:
            self._unstarted -= 1
        started = self._clock()
        events: tuple[FileEvent, ...] = ()
        try:
            parsed = parse_body(message.body, default_bucket=self._settings.s3_bucket)
            events = parsed.events
            for label in parsed.ignored:
                self.stats.add(f"ignored.{label}")
            outcome = self._outcome_of(message, events, ignored=bool(parsed.ignored))
        except InvalidMessage as exc:
            outcome = DeadLetter(error_class=exc.error_class, reason=exc.reason)
        except Exception as exc:  # a bug in one message must never stop the worker
            log.exception("worker.unexpected_error", extra={"message_id": message.message_id})
            error = TransientError(f"unexpected {type(exc).__name__}: {exc}", error_class=type(exc).__name__)
            outcome = self._failure(error, message)
        self._prefetch.observe(self._clock() - started)
        self._settle(message, outcome, started=started, events=events)

    def _outcome_of(
        self, message: ReceivedMessage, events: tuple[FileEvent, ...], *, ignored: bool
    ) -> Outcome:
        results: list[str] = []
        failures: list[FileError] = []
        for event in events:
            try:
                result = self._handler.handle(event)
            except FileError as exc:
                failures.append(_about(exc, event, several=len(events) > 1))
                continue
            except Exception as exc:  # unclassified: retry; the attempt limit decides
                log.exception("file.unexpected_error", extra={"bucket": event.bucket, "key": event.key})
                error = TransientError(
                    f"unexpected {type(exc).__name__}: {exc}", error_class=type(exc).__name__
                )
                failures.append(_about(error, event, several=len(events) > 1))
                continue
            results.append(str(result))
            self.stats.add(f"files.{result}")
        if failures:
            # A transient failure anywhere retries the whole message (the rest is idempotent);
            # otherwise the first permanent failure dead-letters it.
            transient = [f for f in failures if not isinstance(f, PermanentError)]
            return self._failure((transient or failures)[0], message)
        if not events:
            return Ack(result="ignored" if ignored else "empty")
        return Ack(result=results[0] if len(set(results)) == 1 else "mixed")

    def _failure(self, error: FileError, message: ReceivedMessage) -> Outcome:
        return outcome_of_failure(
            error, message, backoff=self._backoff, max_receive_count=self._max_receive_count
        )

    def _settle(
        self, message: ReceivedMessage, outcome: Outcome, *, started: float, events: tuple[FileEvent, ...]
    ) -> None:
        if not self._settler.settle(message, outcome):
            return
        kind = _OUTCOME_NAMES[type(outcome)]
        self.stats.add(f"messages.{kind}")
        if isinstance(outcome, DeadLetter):
            self.stats.add(f"dead_letter_reason.{outcome.error_class}")
        metrics.MESSAGE_DURATION.observe(self._clock() - message.received_at)
        fields: dict[str, object] = {
            "message_id": message.message_id,
            "outcome": kind,
            "receive_count": message.receive_count,
            "duration_ms": round((self._clock() - started) * 1000, 1),
        }
        if len(events) == 1:
            fields.update(bucket=events[0].bucket, key=events[0].key, action=str(events[0].action))
        elif events:
            fields["files"] = [{"bucket": e.bucket, "key": e.key, "action": str(e.action)} for e in events]
        if isinstance(outcome, Ack):
            fields["result"] = outcome.result
        elif isinstance(outcome, Retry | DeadLetter):
            fields.update(error_class=outcome.error_class, reason=outcome.reason)
            if isinstance(outcome, Retry):
                fields["retry_in_s"] = outcome.delay_seconds
        level = logging.WARNING if isinstance(outcome, Retry | DeadLetter) else logging.INFO
        log.log(level, "message.settled", extra=fields)


_OUTCOME_NAMES: dict[type, str] = {Ack: "ack", Retry: "retry", DeadLetter: "dead_letter", Release: "release"}


def _about(error: FileError, event: FileEvent, *, several: bool) -> FileError:
    """With several files in one message, say which one failed."""
    if not several:
        return error
    return type(error)(f"s3://{event.bucket}/{event.key}: {error.reason}", error_class=error.error_class)


def _is_fatal(exc: Exception) -> bool:
    return isinstance(exc, ClientError) and bool(error_codes(exc) & _FATAL_RECEIVE_CODES)
