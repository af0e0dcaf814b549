"""Progress on stderr: a redrawn bar on a terminal, a plain line every few seconds otherwise (a log file, CI).

Written here rather than with tqdm or rich: one line of text does not justify a new runtime dependency of the
worker image. The total arrives from a second listing running alongside (see backfill.Counter); until it is
known the line shows a lower bound.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TextIO

from app.enqueue.pacing import Clock

BAR_WIDTH = 24
TTY_INTERVAL = 0.1  # redraws per second a terminal can show without flicker
LOG_INTERVAL = 10.0  # a line per 10 s keeps a log readable yet shows a stall


@dataclass(frozen=True, slots=True)
class Total:
    objects: int
    bytes: int
    final: bool  # False while the counting listing is still going: a lower bound


class Progress:
    def __init__(self, stream: TextIO, *, tty: bool, clock: Clock, verb: str = "enqueued") -> None:
        self._stream = stream
        self._tty = tty
        self._clock = clock
        self._verb = verb
        self._started = clock.monotonic()
        self._last_shown: float | None = None
        self._lock = threading.Lock()  # the counting thread sets the total while the run draws
        self._total: Total | None = None

    def set_total(self, objects: int, size: int, *, final: bool) -> None:
        with self._lock:
            self._total = Total(objects, size, final)

    def update(self, objects: int, size: int) -> None:
        now = self._clock.monotonic()
        interval = TTY_INTERVAL if self._tty else LOG_INTERVAL
        if self._last_shown is not None and now - self._last_shown < interval:
            return
        self._last_shown = now
        self._show(self.line(objects, size, now=now))

    def finish(self, objects: int, size: int) -> None:
        self._show(self.line(objects, size, now=self._clock.monotonic()))
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()

    def line(self, objects: int, size: int, *, now: float) -> str:
        with self._lock:
            total = self._total
        elapsed = max(now - self._started, 1e-9)
        rate = objects / elapsed
        parts: list[str] = []
        if total is not None and total.final and total.objects > 0:
            fraction = min(1.0, objects / total.objects)
            if self._tty:
                filled = round(fraction * BAR_WIDTH)
                parts.append("[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]")
            parts.append(f"{fraction:.0%}")
            parts.append(f"{objects:,}/{total.objects:,} objects")
        elif total is not None:
            parts.append(f"{objects:,}/≥{total.objects:,} objects (counting)")
        else:
            parts.append(f"{objects:,} objects")
        parts.append(human_bytes(size))
        parts.append(f"{rate:,.0f}/s")
        if total is not None and total.final and rate > 0 and objects < total.objects:
            parts.append(f"ETA {duration((total.objects - objects) / rate)}")
        return f"{self._verb} " + "  ".join(parts)

    def _show(self, text: str) -> None:
        if self._tty:
            # carriage return, the line, then "erase to end of line" for a shorter line after a longer one
            self._stream.write(f"\r{text}\x1b[K")
        else:
            self._stream.write(f"filefleet enqueue: {text}\n")
        self._stream.flush()


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
