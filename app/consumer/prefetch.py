"""How many messages a worker may hold beyond those it is running."""

from __future__ import annotations

import threading

from app.consumer.queue import BATCH_LIMIT

_SMOOTHING = 0.2  # weight of the newest duration in the moving average


class PrefetchPolicy:
    """Hold no more waiting messages than can *start* within half a visibility timeout.

    A message waiting in this worker is invisible to every other worker, so prefetching too much starves
    the rest of the fleet (and hides backlog from the scaling metric). The allowance follows a moving average
    of how long a message takes: until the first one finishes, nothing is prefetched.
    """

    def __init__(self, *, concurrency: int, visibility_timeout: int, max_prefetch: int = BATCH_LIMIT) -> None:
        self._concurrency = concurrency
        self._visibility_timeout = visibility_timeout
        self._max_prefetch = max_prefetch
        self._mean_seconds: float | None = None
        self._lock = threading.Lock()

    def observe(self, duration_seconds: float) -> None:
        with self._lock:
            if self._mean_seconds is None:
                self._mean_seconds = duration_seconds
            else:
                self._mean_seconds += _SMOOTHING * (duration_seconds - self._mean_seconds)

    def allowance(self) -> int:
        with self._lock:
            mean = self._mean_seconds
        if mean is None:
            return 0
        startable = int(self._concurrency * (self._visibility_timeout / 2) / max(mean, 1e-3))
        return max(0, min(self._max_prefetch, startable))

    def capacity(self) -> int:
        """Messages this worker may hold at once: running plus waiting."""
        return self._concurrency + self.allowance()
