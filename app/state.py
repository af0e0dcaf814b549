"""The worker's status, shared with the health endpoint's process through one small JSON file.

`filefleet run` starts the worker and gunicorn as separate processes; the worker publishes its state and
the heartbeat of its receive loop here once a second, and /healthz and /readyz read it. The file is
replaced atomically (write, then rename), so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from app import metrics

STATE_FILE_ENV = "FILEFLEET_STATE_FILE"
PUBLISH_SECONDS = 1.0  # the heartbeat's refresh, at the least
WATCH_SECONDS = 0.2  # a change of state (running, draining) is published within this


@dataclass(frozen=True)
class WorkerStatus:
    """What the health endpoint needs to know of the worker."""

    state: str  # starting | running | draining | stopped
    heartbeat: float  # wall-clock time the receive loop last went round (now, while draining)
    cause: str | None = None  # why it is draining or stopped
    in_flight: int = 0
    pid: int = 0

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.heartbeat


class StateFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def write(self, state: WorkerStatus) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(asdict(state)))
        temporary.replace(self.path)

    def read(self) -> WorkerStatus | None:
        try:
            return WorkerStatus(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


class StatePublisher:
    """Publishes ``source()`` from a daemon thread: at once when the state changes, else every second."""

    def __init__(self, state_file: StateFile) -> None:
        self._file = state_file
        self._source: Callable[[], WorkerStatus] | None = None
        self._published: WorkerStatus | None = None
        self._published_at = 0.0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="state-publisher", daemon=True)

    def start(self) -> StatePublisher:
        self._publish()
        self._thread.start()
        return self

    def follow(self, source: Callable[[], WorkerStatus]) -> None:
        self._source = source
        self._publish()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._publish()

    def _run(self) -> None:
        while not self._stopped.wait(WATCH_SECONDS):
            self._publish(only_if_due=True)

    def _publish(self, *, only_if_due: bool = False) -> None:
        if self._source is None:
            state = WorkerStatus("starting", time.time(), pid=os.getpid())
            metrics.set_worker_state("starting")
        else:
            state = self._source()
        last = self._published
        changed = last is None or (state.state, state.cause) != (last.state, last.cause)
        if only_if_due and not changed and time.monotonic() - self._published_at < PUBLISH_SECONDS:
            return
        self._file.write(state)
        self._published, self._published_at = state, time.monotonic()
