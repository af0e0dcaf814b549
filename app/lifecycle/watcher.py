"""Polls every monitor on one daemon thread and turns the first cause into the one drain request.

It keeps polling after that request: a drain started by SIGTERM or a Spot notice may be followed by Auto
Scaling's Terminated state, and that later observation is what decides whether the termination lifecycle
hook is heartbeated and completed. Every distinct cause is reported once to ``on_cause``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from app.drain import DrainSignal
from app.lifecycle.monitors import Monitor
from app.stats import RunStats

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 5.0


class LifecycleWatcher:
    def __init__(
        self,
        monitors: Sequence[Monitor],
        drain: DrainSignal,
        *,
        interval: float,
        stats: RunStats,
        on_cause: Callable[[str], None] | None = None,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval={interval} must be more than 0 seconds")
        self._monitors = tuple(monitors)
        self._drain = drain
        self._interval = interval
        self._stats = stats
        self._on_cause = on_cause
        self._stop_timeout = stop_timeout
        self._poll_lock = threading.Lock()  # the thread and a caller's final poll_once never interleave
        self._seen: list[str] = []
        self._requested: str | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def causes_seen(self) -> tuple[str, ...]:
        """Every distinct cause observed so far, in order."""
        with self._poll_lock:
            return tuple(self._seen)

    @property
    def requested(self) -> str | None:
        """The cause this watcher asked the worker to drain for, if any."""
        with self._poll_lock:
            return self._requested

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="lifecycle-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling; waits at most ``stop_timeout`` (a poll in flight is bounded by the IMDS timeout)."""
        self._stopping.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        thread.join(timeout=self._stop_timeout)
        if thread.is_alive():
            log.warning("lifecycle.watcher_stop_timeout", extra={"timeout_s": self._stop_timeout})

    def poll_once(self) -> list[str]:
        """Check every monitor once; returns the causes not seen before. Never raises."""
        new: list[str] = []
        with self._poll_lock:
            for monitor in self._monitors:
                try:
                    cause = monitor.check()
                except Exception:  # a monitor's bug must not stop the others, nor this thread
                    log.exception("lifecycle.monitor_error", extra={"monitor": monitor.name})
                    continue
                if cause is None or cause in self._seen:
                    continue
                self._seen.append(cause)
                new.append(cause)
                self._stats.add("lifecycle.notices")
                log.info("lifecycle.notice", extra={"cause": cause, "monitor": monitor.name})
                if self._requested is None:
                    self._requested = cause
                    self._drain.request(cause)
                    log.warning("lifecycle.drain_requested", extra={"cause": cause})
        for cause in new:  # outside the lock: a callback may call back into this watcher
            self._notify(cause)
        return new

    def _notify(self, cause: str) -> None:
        if self._on_cause is None:
            return
        try:
            self._on_cause(cause)
        except Exception:  # the callback's failure is logged; polling goes on
            log.exception("lifecycle.on_cause_failed", extra={"cause": cause})

    def _run(self) -> None:
        self.poll_once()
        while not self._stopping.wait(self._interval):
            self.poll_once()
