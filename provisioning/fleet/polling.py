"""Waiting for AWS, as a value: how often to ask, for how long, and with which clock.

Every wait in the fleet commands goes through :meth:`Polling.until`, so a test can make all of them fast
(``Polling(interval=0.01)``) and a timeout is one number an operator can change (``--timeout``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from provisioning.fleet.errors import OperationTimedOut

T = TypeVar("T")

DEFAULT_INTERVAL_SECONDS = 5.0  # stack events and refresh progress: fresh enough to watch, few API calls
DEFAULT_TIMEOUT_SECONDS = 3600.0  # a stack with an Auto Scaling group takes minutes; an hour means stuck


@dataclass(frozen=True)
class Polling:
    interval: float = DEFAULT_INTERVAL_SECONDS
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def with_timeout(self, timeout: float) -> Polling:
        return Polling(interval=self.interval, timeout=timeout, sleep=self.sleep, clock=self.clock)

    def until(self, check: Callable[[], T | None], *, waiting_for: str, on_timeout: str = "") -> T:
        """Call ``check`` until it returns something other than None; raise OperationTimedOut at the deadline.

        ``check`` runs at least once, and once more at the deadline, so a short timeout still sees a result
        that is already there.
        """
        deadline = self.clock() + self.timeout
        while True:
            result = check()
            if result is not None:
                return result
            remaining = deadline - self.clock()
            if remaining <= 0:
                hint = f"; {on_timeout}" if on_timeout else ""
                raise OperationTimedOut(f"gave up waiting for {waiting_for} after {self.timeout:g} s{hint}")
            self.sleep(min(self.interval, remaining))
