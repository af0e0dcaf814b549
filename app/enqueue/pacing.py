"""Time, injectable: the token bucket behind ``--max-per-second`` and every wait of the run read this clock,
so tests measure the rate on a fake clock instead of waiting for real seconds."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class TokenBucket:
    """At most ``capacity + rate * t`` messages in any interval of t seconds.

    The capacity is one batch: a full batch must fit, or a rate under 10/s could never send one, and anything
    more would let a burst run ahead of the rate the operator asked for. The bucket starts full, so the first
    batch goes at once.
    """

    def __init__(self, rate: float, *, capacity: float, clock: Clock) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._updated = clock.monotonic()

    def acquire(self, count: int) -> float:
        """Take ``count`` tokens, sleeping until there are enough; returns the seconds slept."""
        if count > self.capacity:
            raise ValueError(f"cannot take {count} tokens at once from a bucket of {self.capacity}")
        self._refill()
        pause = 0.0
        if self._tokens < count:
            pause = (count - self._tokens) / self.rate
            self._clock.sleep(pause)  # time.sleep sleeps at least this long
            self._refill()
            # The pause was exactly what was missing; float rounding (a clock far from zero cannot move by
            # a tiny step) may leave a sliver short, which must not cost another sleep or a loop.
            self._tokens = max(self._tokens, float(count))
        self._tokens -= count
        return pause

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
