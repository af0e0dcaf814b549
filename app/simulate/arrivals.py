"""When files land in the bucket: a profile, or the timestamps of a real day's uploads.

Every profile returns the arrival times in seconds from the start of the horizon, sorted, as float64. The
random ones draw from the generator they are given (seeded by the caller), so the same seed gives the same
files; ``--compare`` runs every variant on the very same arrivals (common random numbers), which is what
makes a difference between two columns a difference of settings and not of luck.

* ``steady``: ``files`` arrivals spread uniformly at random over the horizon (a Poisson process conditioned
  on its count).
* ``daily``: a batch each day at ``batch_at_minute``, landing uniformly over ``batch_minutes``; the files
  split as evenly as possible between the days (the guide's "daily batch").
* ``bursts``: ``bursts_per_day`` bursts a day on average at random times, each landing over
  ``burst_minutes``; each file picks a burst uniformly at random.
* a CSV path: one timestamp per line in the first column, epoch seconds or ISO 8601 (a header line is
  skipped); times are taken relative to the first one, and the horizon is the span rounded up to a minute.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.simulate.settings import PROFILES, Settings, SettingsError

Seconds = NDArray[np.float64]
DAY = 86_400.0


@dataclass(frozen=True)
class Arrivals:
    """Sorted arrival times (seconds) and the horizon (whole minutes) they belong to."""

    times: Seconds
    horizon_minutes: int
    source: str  # what produced them, for the report


def make_arrivals(settings: Settings, rng: np.random.Generator) -> Arrivals:
    """The arrivals ``settings`` ask for (a profile drawn from ``rng``, or the CSV it names)."""
    if settings.arrivals in PROFILES:
        horizon = settings.days * DAY
        minutes = math.ceil(horizon / 60)
        n = settings.files
        if settings.arrivals == "steady":
            times = np.sort(rng.uniform(0.0, horizon, n))
        elif settings.arrivals == "daily":
            times = _daily(n, horizon, settings.batch_at_minute * 60.0, settings.batch_minutes * 60.0, rng)
        else:
            times = _bursts(n, horizon, settings.bursts_per_day, settings.burst_minutes * 60.0, rng)
        return Arrivals(times, minutes, settings.arrivals)
    times = read_csv(Path(settings.arrivals))
    span = float(times[-1]) if times.size else 0.0
    return Arrivals(times, max(1, math.floor(span / 60) + 1), f"csv:{settings.arrivals}")


def _daily(n: int, horizon: float, at: float, spread: float, rng: np.random.Generator) -> Seconds:
    starts = np.arange(0.0, horizon, DAY) + at
    starts = starts[starts < horizon]
    if starts.size == 0:  # a horizon shorter than the first batch's start: the batch lands at 0
        starts = np.zeros(1)
    per_day = np.full(starts.size, n // starts.size)
    per_day[: n % starts.size] += 1
    offsets = rng.uniform(0.0, spread, n)
    times = np.repeat(starts, per_day) + offsets
    return np.sort(np.minimum(times, np.nextafter(horizon, 0.0)))


def _bursts(n: int, horizon: float, per_day: float, spread: float, rng: np.random.Generator) -> Seconds:
    count = max(1, round(per_day * horizon / DAY))
    starts = np.sort(rng.uniform(0.0, max(horizon - spread, 0.0), count))
    which = rng.integers(0, count, n)
    times = starts[which] + rng.uniform(0.0, spread, n)
    return np.sort(np.minimum(times, np.nextafter(horizon, 0.0)))


def read_csv(path: Path) -> Seconds:
    """Arrival times (seconds after the first) from the first column of a CSV file."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row and row[0].strip()]
    except OSError as exc:
        raise SettingsError(f"--arrivals {path}: {exc.strerror or exc}") from None
    values: list[float] = []
    for number, row in enumerate(rows, start=1):
        value = _timestamp(row[0].strip())
        if value is None:
            if number == 1:  # a header
                continue
            raise SettingsError(
                f"--arrivals {path}: line {number}: {row[0].strip()!r} is neither epoch seconds nor ISO 8601"
            )
        values.append(value)
    if not values:
        raise SettingsError(f"--arrivals {path}: no timestamps")
    times = np.sort(np.asarray(values, dtype=np.float64))
    relative: Seconds = times - times[0]
    return relative


def _timestamp(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return value if math.isfinite(value) else None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:  # a naive time is read as UTC: only differences matter here
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
