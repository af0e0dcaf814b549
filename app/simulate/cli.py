"""argparse for ``filefleet simulate``: :func:`add_simulate_parser` adds it to filefleet's commands.

Exit status: 0 done; 1 the plot could not be written; 2 an input that cannot be simulated (an option out of
range, an unreadable CSV, ``--plot`` without matplotlib), said on one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app import argtypes
from app.simulate.compare import KEYS, expand, parse_axis
from app.simulate.engine import simulate
from app.simulate.plot import PlotUnavailable, require_matplotlib, write_plot
from app.simulate.report import Labelled, as_json, format_duration, render_table, summarize, verdict
from app.simulate.settings import BOOT_PRESETS, POLICIES, WORKERS, Settings, SettingsError, boot_seconds

EXIT_FAILURE = 1
EXIT_CONFIG = 2

_DEFAULTS = Settings()


def add_simulate_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simulate`` to filefleet's subcommands; its handler takes the args and returns an exit code."""
    d = _DEFAULTS
    parser = commands.add_parser(
        "simulate",
        help="simulate the queue and the Auto Scaling group: cost and queue wait before deploying",
        description=(
            "A seeded, minute-by-minute simulation of the SQS queue and the Auto Scaling group: target "
            "tracking (or the guide's step policy, or the guide's Lambda metric), warm-up, Spot "
            "interruptions and drains, the On-Demand/Spot split, per-second billing. Defaults are the "
            "guide's and this repository's stack. README, 'Simulating', lists every AWS behaviour encoded."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    traffic = parser.add_argument_group("traffic")
    traffic.add_argument(
        "--arrivals",
        default=d.arrivals,
        metavar="PROFILE|FILE.csv",
        help="steady, daily (a batch a day), bursts, or a CSV of timestamps (epoch seconds or ISO 8601)",
    )
    traffic.add_argument(
        "--files", type=argtypes.whole(), default=d.files, help="files over the horizon (profiles)"
    )
    traffic.add_argument("--days", type=argtypes.positive, default=d.days, help="horizon of a profile")
    traffic.add_argument("--batch-at", type=_time_of_day, default="09:00", metavar="HH:MM", help="daily")
    traffic.add_argument("--batch-minutes", type=argtypes.positive, default=d.batch_minutes, help="daily")
    traffic.add_argument("--bursts-per-day", type=argtypes.positive, default=d.bursts_per_day, help="bursts")
    traffic.add_argument("--burst-minutes", type=argtypes.positive, default=d.burst_minutes, help="bursts")

    work = parser.add_argument_group("work")
    work.add_argument(
        "--mean-seconds", type=argtypes.positive, default=d.mean_seconds, help="mean processing time"
    )
    work.add_argument(
        "--sigma", type=argtypes.non_negative, default=d.sigma, help="lognormal shape; 0 = constant"
    )
    work.add_argument(
        "--concurrency", type=argtypes.whole(), default=d.concurrency, help="WORKER_CONCURRENCY"
    )
    work.add_argument(
        "--boot",
        type=_boot,
        default="ami",
        metavar="ami|userdata|SECONDS",
        help=f"launch to first message: ami = {BOOT_PRESETS['ami']:g} s, userdata = "
        f"{BOOT_PRESETS['userdata']:g} s (a lower bound)",
    )
    work.add_argument("--worker", choices=WORKERS, default=d.worker, help="drain behaviour on stop")
    work.add_argument(
        "--drain-seconds", type=argtypes.non_negative, default=d.drain_seconds, help="DRAIN_SECONDS"
    )

    group = parser.add_argument_group("scaling")
    group.add_argument("--policy", choices=POLICIES, default=d.policy, help="target = our stack")
    group.add_argument("--target", type=argtypes.positive, default=d.target, help="backlog per instance")
    group.add_argument(
        "--warmup", type=argtypes.non_negative, default=d.warmup_seconds, help="instance warm-up, s"
    )
    group.add_argument("--min", type=argtypes.whole(), default=d.min_size, help="MinSize")
    group.add_argument("--max", type=argtypes.whole(), default=d.max_size, help="MaxSize")
    group.add_argument(
        "--scale-out-periods", type=argtypes.whole(), default=d.scale_out_periods, help="high alarm"
    )
    group.add_argument(
        "--scale-in-periods", type=argtypes.whole(), default=d.scale_in_periods, help="low alarm"
    )
    group.add_argument(
        "--on-demand-base", type=argtypes.whole(), default=d.on_demand_base, help="OnDemandBaseCapacity"
    )
    group.add_argument(
        "--on-demand-percent", type=argtypes.non_negative, default=d.on_demand_percent, help="above the base"
    )
    group.add_argument(
        "--interruption-rate",
        type=argtypes.non_negative,
        default=d.interruption_rate,
        help="Spot interruption notices per Spot instance-hour (0 = none)",
    )
    group.add_argument(
        "--rebalance",
        action=argparse.BooleanOptionalAction,
        default=d.rebalance,
        help="capacity rebalancing (replace an interrupted Spot instance at the notice)",
    )
    group.add_argument(
        "--scale-in-protection",
        action=argparse.BooleanOptionalAction,
        default=d.scale_in_protection,
        help="SCALE_IN_PROTECTION: a worker holding work (and 120 s after) is not scaled in",
    )

    prices = parser.add_argument_group("prices (USD)")
    prices.add_argument("--spot-price", type=argtypes.non_negative, default=d.spot_price, help="per hour")
    prices.add_argument(
        "--on-demand-price", type=argtypes.non_negative, default=d.on_demand_price, help="per hour"
    )
    prices.add_argument("--ebs-gb", type=argtypes.non_negative, default=d.ebs_gb, help="root volume size")
    prices.add_argument("--ebs-price", type=argtypes.non_negative, default=d.ebs_price, help="per GB-month")
    prices.add_argument(
        "--monitoring-price",
        type=argtypes.non_negative,
        default=d.monitoring_price,
        help="per instance-month",
    )

    output = parser.add_argument_group("run and output")
    output.add_argument("--seed", type=int, default=d.seed, help="same seed, same result")
    output.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help=f"run several values side by side (repeat to cross axes); KEY: {', '.join(KEYS)}",
    )
    output.add_argument(
        "--p95-goal",
        type=argtypes.positive,
        metavar="SECONDS",
        help="with --compare: name the cheapest run whose p95 queue wait is at most this",
    )
    output.add_argument("--json", action="store_true", help="print JSON instead of the table")
    output.add_argument("--plot", type=Path, metavar="FILE.png", help="write a PNG (needs filefleet[plot])")
    output.add_argument(
        "--plot-days", type=argtypes.positive, metavar="DAYS", help="plot only the first DAYS"
    )
    parser.set_defaults(command=run_simulate)


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        arrivals=args.arrivals,
        files=args.files,
        days=args.days,
        batch_at_minute=args.batch_at,
        batch_minutes=args.batch_minutes,
        bursts_per_day=args.bursts_per_day,
        burst_minutes=args.burst_minutes,
        mean_seconds=args.mean_seconds,
        sigma=args.sigma,
        concurrency=args.concurrency,
        boot_seconds=args.boot,
        worker=args.worker,
        drain_seconds=args.drain_seconds,
        policy=args.policy,
        target=args.target,
        warmup_seconds=args.warmup,
        min_size=args.min,
        max_size=args.max,
        scale_out_periods=args.scale_out_periods,
        scale_in_periods=args.scale_in_periods,
        on_demand_base=args.on_demand_base,
        on_demand_percent=args.on_demand_percent,
        interruption_rate=args.interruption_rate,
        rebalance=args.rebalance,
        scale_in_protection=args.scale_in_protection,
        spot_price=args.spot_price,
        on_demand_price=args.on_demand_price,
        ebs_gb=args.ebs_gb,
        ebs_price=args.ebs_price,
        monitoring_price=args.monitoring_price,
        seed=args.seed,
    )


def run_simulate(args: argparse.Namespace) -> int:
    try:
        if args.plot is not None:
            require_matplotlib()  # before the work, not after it
        base = settings_from_args(args)
        runs = expand(base, [parse_axis(text) for text in args.compare])
        labelled = []
        for label, settings in runs:
            result = simulate(settings)
            labelled.append(Labelled(label, result, summarize(result)))
    except (SettingsError, PlotUnavailable) as exc:
        print(f"filefleet simulate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        print(json.dumps(as_json(labelled), indent=2))
    else:
        print(_header(base, labelled))
        print()
        print(render_table(labelled))
        lines = verdict(labelled, p95_goal=args.p95_goal)
        if lines:
            print()
            print("\n".join(lines))
    if args.plot is not None:
        try:
            write_plot(labelled, args.plot, days=args.plot_days)
        except OSError as exc:
            print(f"filefleet simulate: cannot write {args.plot}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_FAILURE
        if not args.json:
            print(f"\nplot: {args.plot}")
    return 0


def _header(base: Settings, runs: list[Labelled]) -> str:
    first = runs[0].result
    files = first.arrivals.size
    horizon = format_duration(first.horizon_minutes * 60.0)
    s = base
    lines = [
        f"filefleet simulate: {files:,} files ({first.source}) over {horizon}, seed {s.seed}",
        f"  work      {format_duration(s.mean_seconds)} per file on average (lognormal, sigma {s.sigma:g}), "
        f"{s.concurrency} at once per instance, first message {s.boot_seconds:g} s after launch",
        f"  group     policy {s.policy}, target {s.target:g}, warm-up {s.warmup_seconds:g} s, "
        f"{s.min_size}..{s.max_size} instances, On-Demand {s.on_demand_base} + {s.on_demand_percent:g} %",
        f"  spot      {s.interruption_rate:g} interruptions per instance-hour, capacity rebalancing "
        f"{'on' if s.rebalance else 'off'}, {s.worker} worker (drain {s.drain_seconds:g} s), "
        f"scale-in protection {'on' if s.scale_in_protection else 'off'}",
        f"  prices    Spot ${s.spot_price:g}/h, On-Demand ${s.on_demand_price:g}/h, EBS {s.ebs_gb:g} GB at "
        f"${s.ebs_price:g}/GB-month, monitoring ${s.monitoring_price:g}/instance-month",
    ]
    return "\n".join(lines)


# -- argument types ------------------------------------------------------------------------------------------


def _boot(text: str) -> float:
    try:
        return boot_seconds(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _time_of_day(text: str) -> int:
    hours, sep, minutes = text.partition(":")
    try:
        value = int(hours) * 60 + (int(minutes) if sep else 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HH:MM") from None
    if not (0 <= int(hours) < 24 and 0 <= value < 24 * 60 and (not sep or 0 <= int(minutes) < 60)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day")
    return value
