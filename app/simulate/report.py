"""From a run to figures: cost by component, instance-hours, files, queue waits, scaling activity.

:func:`summarize` computes a flat dict of figures (what ``--json`` prints per run); :func:`render_table`
lays several runs side by side (what ``--compare`` prints; one run is a one-column table), and
:func:`verdict` answers "which setting for my traffic?" from the same figures.

Definitions:

* queue wait: from the file's arrival to the start of the attempt that completed it (time lost to a drained
  attempt counts as waiting); percentiles are nearest-rank over the completed files.
* time to done: arrival to completion.
* instance-hours: per-second billing from running to termination, 60-second minimum per instance.
* cost: compute (Spot and On-Demand hours x price), EBS (the root volume, billed like the instance,
  GB-month prorated over 730 h) and detailed monitoring (per instance, prorated by started hour). Not here:
  SQS requests, data transfer, CloudWatch alarms and custom metrics (see ``filefleet cost``).
* utilisation: slot-seconds spent on files (completed or thrown away by a drain) / billed slot-seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.simulate.engine import RunResult
from app.simulate.fleet import billed_seconds, monitoring_hours, monthly_to_hourly


@dataclass(frozen=True)
class Labelled:
    """A run and the label of its column (``target=30``), with its figures."""

    label: str
    result: RunResult
    summary: dict[str, Any]


def summarize(result: RunResult) -> dict[str, Any]:
    """The figures of one run, JSON-able (floats rounded for reading, not for arithmetic)."""
    s = result.settings
    until = result.end_time
    done = np.isfinite(result.end) & (result.end <= until)
    running = np.isfinite(result.end) & (result.end > until)
    files_in = int(result.arrivals.size)
    files_done = int(done.sum())
    in_flight = int(running.sum())
    waits = (result.start - result.arrivals)[done]
    to_done = (result.end - result.arrivals)[done]

    spot_seconds = on_demand_seconds = 0.0
    monitored_hours = 0
    for inst in result.instances:
        seconds = billed_seconds(inst, until=until)
        if inst.spot:
            spot_seconds += seconds
        else:
            on_demand_seconds += seconds
        monitored_hours += monitoring_hours(inst, until=until)
    spot_hours = spot_seconds / 3600.0
    on_demand_hours = on_demand_seconds / 3600.0
    hours = spot_hours + on_demand_hours
    cost_spot = spot_hours * s.spot_price
    cost_on_demand = on_demand_hours * s.on_demand_price
    cost_ebs = hours * s.ebs_gb * monthly_to_hourly(s.ebs_price)
    cost_monitoring = monitored_hours * monthly_to_hourly(s.monitoring_price)
    total = cost_spot + cost_on_demand + cost_ebs + cost_monitoring

    busy = float(np.minimum(result.end[done | running], until).sum() - result.start[done | running].sum())
    busy += result.redone_seconds
    capacity = hours * 3600.0 * s.concurrency
    scale_out = sum(1 for action in result.actions if action.after > action.before)
    return {
        "files_in": files_in,
        "files_done": files_done,
        "files_queued_at_end": files_in - files_done - in_flight,
        "files_in_flight_at_end": in_flight,
        "wait_p50_s": _percentile(waits, 50),
        "wait_p95_s": _percentile(waits, 95),
        "wait_max_s": _round(float(waits.max())) if waits.size else None,
        "done_p95_s": _percentile(to_done, 95),
        "peak_backlog": int(result.visible.max()) if result.visible.size else 0,
        "instance_hours": _round(hours),
        "instance_hours_spot": _round(spot_hours),
        "instance_hours_on_demand": _round(on_demand_hours),
        "cost_spot": _money(cost_spot),
        "cost_on_demand": _money(cost_on_demand),
        "cost_ebs": _money(cost_ebs),
        "cost_monitoring": _money(cost_monitoring),
        "cost_total": _money(total),
        "cost_per_1000_files": _money(1000 * total / files_done) if files_done else None,
        "utilisation": _round(busy / capacity, 3) if capacity > 0 else None,
        "redone_minutes": _round(result.redone_seconds / 60.0),
        "launches": len(result.instances),
        "interruptions": result.interruptions,
        "replacements": result.replacements,
        "scale_out_actions": scale_out,
        "scale_in_actions": len(result.actions) - scale_out,
        "max_desired": int(result.desired.max()) if result.desired.size else 0,
        "simulated_days": _round(until / 86_400.0, 3),
        "horizon_days": _round(result.horizon_minutes / 1440.0, 3),
    }


def _percentile(values: np.ndarray[Any, Any], q: float) -> float | None:
    if values.size == 0:
        return None
    return _round(float(np.percentile(values, q, method="inverted_cdf")))


def _round(value: float, digits: int = 1) -> float:
    return round(value, digits)


def _money(value: float) -> float:
    return round(value, 2)


# -- the table ---------------------------------------------------------------------------------------------

# (heading or None, key, label, formatter)
_ROWS: tuple[tuple[str | None, str, str, str], ...] = (
    ("Cost (USD)", "cost_spot", "Spot instances", "money"),
    (None, "cost_on_demand", "On-Demand instances", "money"),
    (None, "cost_ebs", "EBS root volumes", "money"),
    (None, "cost_monitoring", "detailed monitoring", "money"),
    (None, "cost_total", "total", "money"),
    (None, "cost_per_1000_files", "per 1,000 files done", "money"),
    ("Instances", "instance_hours", "instance-hours", "number"),
    (None, "instance_hours_spot", "  of which Spot", "number"),
    (None, "instance_hours_on_demand", "  of which On-Demand", "number"),
    (None, "utilisation", "slot utilisation", "percent"),
    (None, "launches", "launches", "int"),
    ("Files", "files_in", "arrived", "int"),
    (None, "files_done", "done", "int"),
    (None, "files_queued_at_end", "still queued at the end", "int"),
    (None, "files_in_flight_at_end", "in flight at the end", "int"),
    ("Queue wait", "wait_p50_s", "p50", "duration"),
    (None, "wait_p95_s", "p95", "duration"),
    (None, "wait_max_s", "max", "duration"),
    (None, "done_p95_s", "arrival to done, p95", "duration"),
    (None, "peak_backlog", "peak backlog (visible)", "int"),
    ("Scaling", "scale_out_actions", "scale-out actions", "int"),
    (None, "scale_in_actions", "scale-in actions", "int"),
    (None, "max_desired", "highest desired capacity", "int"),
    (None, "interruptions", "Spot interruptions", "int"),
    (None, "replacements", "replacement launches", "int"),
    (None, "redone_minutes", "work redone after drains", "minutes"),
)


def render_table(runs: Sequence[Labelled]) -> str:
    """The runs side by side, one column each."""
    label_width = max(len(label) for _, _, label, _ in _ROWS) + 2
    widths = [max(12, len(run.label)) for run in runs]
    lines = [
        " " * label_width + "  ".join(run.label.rjust(width) for run, width in zip(runs, widths, strict=True))
    ]
    for heading, key, label, kind in _ROWS:
        if heading:
            lines.append(heading)
        cells = [
            _format(run.summary.get(key), kind).rjust(width) for run, width in zip(runs, widths, strict=True)
        ]
        lines.append(("  " + label).ljust(label_width) + "  ".join(cells))
    return "\n".join(lines)


_FORMATS = {
    "money": "{:,.2f}",
    "int": "{:,}",
    "minutes": "{:,.1f} min",
    "number": "{:,.1f}",
}


def _format(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "percent":
        return f"{100 * value:.1f} %"
    if kind == "duration":
        return format_duration(float(value))
    return _FORMATS[kind].format(value)


def format_duration(seconds: float) -> str:
    """``42 s``, ``7.9 min``, ``4.2 h``, ``3.1 d``: short enough for a table cell."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def verdict(runs: Sequence[Labelled], *, p95_goal: float | None) -> list[str]:
    """Warnings about unfinished files, then (with several runs) the cheapest, the fastest, and the
    cheapest that meets the p95 goal among the runs that finished everything."""
    lines = []
    complete = []
    for run in runs:
        left = run.summary["files_queued_at_end"] + run.summary["files_in_flight_at_end"]
        if left:
            lines.append(
                f"{run.label}: {left:,} file(s) never finished: stranded under the guide's Lambda threshold, "
                "or redone forever by scale-in of busy instances (see --scale-in-protection)"
            )
        else:
            complete.append(run)
    if len(runs) < 2 or not complete:
        return lines
    cheapest = min(complete, key=lambda run: run.summary["cost_total"])
    fastest = min(complete, key=_p95)
    lines.append(
        f"cheapest: {cheapest.label} (${cheapest.summary['cost_total']:,.2f}, p95 wait {_wait(cheapest)})"
    )
    lines.append(
        f"shortest p95 wait: {fastest.label} ({_wait(fastest)}, ${fastest.summary['cost_total']:,.2f})"
    )
    if p95_goal is not None:
        meeting = [run for run in complete if _p95(run) <= p95_goal]
        goal = format_duration(p95_goal)
        if meeting:
            best = min(meeting, key=lambda run: run.summary["cost_total"])
            lines.append(
                f"cheapest with p95 wait <= {goal}: {best.label} "
                f"(${best.summary['cost_total']:,.2f}, p95 {_wait(best)})"
            )
        else:
            lines.append(f"no run keeps the p95 wait under {goal}: raise --max or lower the target")
    return lines


def _p95(run: Labelled) -> float:
    value = run.summary["wait_p95_s"]
    return math.inf if value is None else float(value)


def _wait(run: Labelled) -> str:
    value = run.summary["wait_p95_s"]
    return "-" if value is None else format_duration(float(value))


def as_json(runs: Sequence[Labelled]) -> dict[str, Any]:
    """What ``--json`` prints: every run's settings and figures."""
    return {
        "runs": [
            {"label": run.label, "settings": run.result.settings.as_dict(), "summary": run.summary}
            for run in runs
        ]
    }
