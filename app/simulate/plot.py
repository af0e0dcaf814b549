"""``--plot FILE``: backlog, desired and in-service instances over time, one panel per run (PNG).

matplotlib is an optional extra (``pip install 'filefleet[plot]'``): the worker image does not carry it, and
nothing else in filefleet needs it. :func:`require_matplotlib` is called before any simulation runs, so a
missing install is said at once rather than after the work.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.simulate.report import Labelled, format_duration

INSTALL_HINT = "pip install 'filefleet[plot]'  (or: pip install 'matplotlib>=3.8')"


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def require_matplotlib() -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise PlotUnavailable(f"--plot needs matplotlib, which is not installed: {INSTALL_HINT}")


def write_plot(runs: Sequence[Labelled], path: Path, *, days: float | None = None) -> None:
    """One panel per run: visible messages (left axis), desired and in-service instances (right axis)."""
    require_matplotlib()
    import matplotlib  # noqa: PLC0415 - optional dependency, imported only when plotting

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt  # noqa: PLC0415

    height = min(2.4 * len(runs) + 0.8, 40.0)
    figure, axes = plt.subplots(len(runs), 1, figsize=(12.0, height), sharex=True, squeeze=False)
    for axis, run in zip(axes[:, 0], runs, strict=True):
        result = run.result
        minutes = result.visible.size
        shown = minutes if days is None else min(minutes, max(1, int(days * 1440)))
        hours = np.arange(1, shown + 1) / 60.0
        axis.fill_between(hours, result.visible[:shown], step="post", color="tab:blue", alpha=0.35, lw=0)
        axis.set_ylabel("visible messages", color="tab:blue")
        axis.set_ylim(bottom=0)
        instances = axis.twinx()
        # In service under desired, dashed on top: where they coincide both stay visible.
        instances.step(
            hours, result.in_service[:shown], where="post", color="tab:green", lw=2.2, label="in service"
        )
        instances.step(
            hours, result.desired[:shown], where="post", color="tab:orange", lw=1.2, ls="--", label="desired"
        )
        top = max(int(result.settings.max_size), 1)
        instances.set_ylim(0, top + 0.5)
        instances.set_yticks(range(0, top + 1, max(1, top // 6)))
        instances.set_ylabel("instances")
        instances.legend(loc="upper right", fontsize="small")
        summary = run.summary
        wait = summary["wait_p95_s"]
        axis.set_title(
            f"{run.label}: ${summary['cost_total']:,.2f}, p95 wait "
            f"{'-' if wait is None else format_duration(float(wait))}, "
            f"{summary['scale_out_actions'] + summary['scale_in_actions']} scaling actions",
            fontsize="medium",
            loc="left",
        )
    axes[-1, 0].set_xlabel("hours since start")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
