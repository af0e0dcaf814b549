"""Counters of what a worker run did: its summary line, the tests' view, and (through app.metrics.record)
the Prometheus metrics. One tally, so a count can never disagree with its metric. Thread-safe."""

from __future__ import annotations

import threading
from collections import Counter

from app import metrics


class RunStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount
        metrics.record(name, amount)

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))
