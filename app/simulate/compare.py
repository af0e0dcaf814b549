"""``--compare KEY=V1,V2,...``: the same traffic under several settings, side by side.

KEY is the name of a ``filefleet simulate`` option without its dashes (``target``, ``policy``, ``boot``,
``max``, ...). Repeat ``--compare`` to cross two axes: ``--compare policy=target,step --compare
boot=ami,userdata`` runs four columns. Every column uses the same seed, so the same arrivals and processing
times (common random numbers): the differences between columns come from the settings.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.simulate.settings import POLICIES, WORKERS, Settings, SettingsError, boot_seconds

MAX_RUNS = 24  # a month of 100,000 files takes about half a second; two dozen columns stay readable


def _choice(options: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise SettingsError(f"{text!r} is not one of {', '.join(options)}")
        return text

    return parse


def _switch(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"on", "true", "yes", "1"}:
        return True
    if lowered in {"off", "false", "no", "0"}:
        return False
    raise SettingsError(f"{text!r} is not on or off")


def _number(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise SettingsError(f"{text!r} is not a number") from None

    return parse


# compare key -> (Settings field, parser)
KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "target": ("target", _number(float)),
    "policy": ("policy", _choice(POLICIES)),
    "boot": ("boot_seconds", boot_seconds),
    "min": ("min_size", _number(int)),
    "max": ("max_size", _number(int)),
    "concurrency": ("concurrency", _number(int)),
    "warmup": ("warmup_seconds", _number(float)),
    "worker": ("worker", _choice(WORKERS)),
    "drain-seconds": ("drain_seconds", _number(float)),
    "interruption-rate": ("interruption_rate", _number(float)),
    "rebalance": ("rebalance", _switch),
    "scale-in-protection": ("scale_in_protection", _switch),
    "on-demand-percent": ("on_demand_percent", _number(float)),
    "on-demand-base": ("on_demand_base", _number(int)),
    "scale-out-periods": ("scale_out_periods", _number(int)),
    "scale-in-periods": ("scale_in_periods", _number(int)),
    "mean-seconds": ("mean_seconds", _number(float)),
    "sigma": ("sigma", _number(float)),
    "spot-price": ("spot_price", _number(float)),
    "on-demand-price": ("on_demand_price", _number(float)),
    "seed": ("seed", _number(int)),
}


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple[tuple[str, Any], ...]  # (as written, parsed)


def parse_axis(text: str) -> Axis:
    """``target=10,30,60`` -> Axis('target', (('10', 10.0), ('30', 30.0), ('60', 60.0)))."""
    key, sep, rest = text.partition("=")
    key = key.strip().lstrip("-")
    if not sep or not rest.strip():
        raise SettingsError(f"--compare {text!r}: expected KEY=V1,V2,... (e.g. target=10,30,60)")
    if key not in KEYS:
        raise SettingsError(f"--compare {text!r}: unknown key {key!r}; one of: {', '.join(KEYS)}")
    _, parse = KEYS[key]
    written = [part.strip() for part in rest.split(",") if part.strip()]
    values = []
    for word in written:
        try:
            values.append((word, parse(word)))
        except SettingsError as exc:
            raise SettingsError(f"--compare {key}: {exc}") from None
    if len(values) < 1:
        raise SettingsError(f"--compare {text!r}: no values")
    return Axis(key, tuple(values))


def expand(base: Settings, axes: Sequence[Axis]) -> list[tuple[str, Settings]]:
    """Every combination of the axes' values applied to ``base``, labelled ``key=value, key=value``."""
    if not axes:
        return [("this run", base)]
    keys = [axis.key for axis in axes]
    if len(set(keys)) != len(keys):
        raise SettingsError("--compare: each key at most once")
    combos = list(itertools.product(*(axis.values for axis in axes)))
    if len(combos) > MAX_RUNS:
        raise SettingsError(f"--compare: {len(combos)} runs; at most {MAX_RUNS}")
    runs = []
    for combo in combos:
        changes = {KEYS[key][0]: parsed for key, (_, parsed) in zip(keys, combo, strict=True)}
        label = ", ".join(f"{key}={written}" for key, (written, _) in zip(keys, combo, strict=True))
        try:
            runs.append((label, base.changed(**changes)))
        except SettingsError as exc:
            raise SettingsError(f"--compare {label}: {exc}") from None
    return runs
