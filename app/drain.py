"""The one signal every reason to stop ends in: SIGTERM, a Spot notice, a scale-in, an idle batch run."""

from __future__ import annotations

import queue


class DrainSignal:
    """A request to drain, with its cause. ``request`` is safe to call from a signal handler.

    It is built on ``queue.SimpleQueue``, whose ``put`` is documented reentrant; an ``Event`` is not, and
    setting one from a handler can deadlock the main thread.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[str] = queue.SimpleQueue()

    def request(self, cause: str) -> None:
        self._requests.put(cause)

    def wait(self, timeout: float) -> str | None:
        """The first pending cause, or None after ``timeout`` seconds without one."""
        try:
            return self._requests.get(timeout=timeout)
        except queue.Empty:
            return None
