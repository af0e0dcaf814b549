"""argparse for `filefleet cost`, and the one place its input becomes an exit code.

Options are read as text and validated here rather than by argparse ``type=`` functions, so a bad value is
refused on one line (``filefleet: --spot-price ...``, exit 2) like every other configuration error of
filefleet, instead of argparse's usage block.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Literal

from app.cost.guide import guide_report
from app.cost.model import GUIDE_INPUTS, CostInputs, estimate
from app.cost.report import guide_json, plain_json, render_guide, render_plain

EXIT_CONFIG = 2

Kind = Literal["count", "instances", "amount", "positive", "percent"]


class CostInputError(ValueError):
    """An option's value is unusable; the message names the option, on one line."""


@dataclass(frozen=True)
class _Option:
    flag: str
    field: str  # CostInputs field it sets
    kind: Kind
    metavar: str
    help: str

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


_OPTIONS = (
    _Option("--files-per-month", "files_per_month", "count", "N", "files processed in a month"),
    _Option("--minutes-per-file", "minutes_per_file", "amount", "MIN", "processing time of one file"),
    _Option(
        "--instances", "instances", "instances", "N", "instances working in parallel while there is work"
    ),
    _Option("--spot-price", "spot_price", "amount", "USD", "Spot price per instance-hour"),
    _Option("--on-demand-price", "on_demand_price", "amount", "USD", "On-Demand price per instance-hour"),
    _Option("--ebs-gb", "ebs_gb", "amount", "GB", "root volume size per instance"),
    _Option("--ebs-price", "ebs_price", "amount", "USD", "EBS price per GB-month"),
    _Option(
        "--monitoring-price", "monitoring_price", "amount", "USD", "detailed monitoring per instance-month"
    ),
    _Option("--data-transfer", "data_transfer", "amount", "USD", "data transfer per month, flat"),
    _Option("--hours-per-month", "hours_per_month", "positive", "H", "hours in a billing month"),
    _Option("--on-demand-base", "on_demand_base", "count", "N", "OnDemandBaseCapacity"),
    _Option(
        "--on-demand-percent",
        "on_demand_percent",
        "percent",
        "PCT",
        "OnDemandPercentageAboveBaseCapacity; 0 prices the guide's all-Spot table",
    ),
    _Option(
        "--sqs-price-per-million",
        "sqs_price_per_million",
        "amount",
        "USD",
        "SQS standard-queue price per million requests",
    ),
    _Option(
        "--sqs-free-requests",
        "sqs_free_requests",
        "count",
        "N",
        "SQS free requests per month (per account: 0 if other queues use them)",
    ),
    _Option(
        "--calls-per-message",
        "calls_per_message",
        "amount",
        "X",
        "SQS calls per message of the fleet's worker (filefleet, measured)",
    ),
    _Option(
        "--seed-calls-per-message",
        "seed_calls_per_message",
        "amount",
        "X",
        "SQS calls per message of the guide's loop, for comparison (measured)",
    ),
)


def add_cost_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `cost` to filefleet's subcommands; it sets ``command`` to :func:`run_cost`."""
    cost = commands.add_parser(
        "cost",
        help="the fleet's monthly bill from the guide's cost arithmetic; --preset guide checks the guide",
        description="Estimate a month of the fleet: Spot and On-Demand compute (with the Auto Scaling "
        "70/30 mix), EBS, detailed monitoring, data transfer and SQS requests. Defaults are the guide's "
        "inputs. `--preset guide` recomputes every cost figure the guide prints and flags those that do not "
        "follow. Exit status 2: a bad value, named on one line.",
    )
    cost.add_argument(
        "--preset",
        choices=("guide",),
        help="recompute the guide's own tables from its stated inputs (takes no input options)",
    )
    for option in _OPTIONS:
        default = getattr(GUIDE_INPUTS, option.field)
        cost.add_argument(
            option.flag,
            dest=option.dest,
            metavar=option.metavar,
            help=f"{option.help} (default {default})",
        )
    cost.add_argument(
        "--detailed-monitoring",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="count CloudWatch detailed monitoring, as the guide's launch template enables it (default on)",
    )
    cost.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    cost.set_defaults(command=run_cost)


def run_cost(args: argparse.Namespace) -> int:
    try:
        inputs = inputs_from_args(args)
    except CostInputError as exc:
        print(f"filefleet: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.preset == "guide":
        report = guide_report()
        text = json.dumps(guide_json(report), indent=2) if args.json else render_guide(report)
    else:
        est = estimate(inputs)
        text = json.dumps(plain_json(est), indent=2) if args.json else render_plain(est)
    print(text)
    return 0


def inputs_from_args(args: argparse.Namespace) -> CostInputs:
    given = {option.field: value for option in _OPTIONS if (value := getattr(args, option.dest)) is not None}
    if args.preset == "guide":
        # The preset's point is the guide's own inputs: a changed one would make every mismatch meaningless.
        named = [option.flag for option in _OPTIONS if option.field in given]
        if args.detailed_monitoring is not None:
            named.append("--[no-]detailed-monitoring")
        if named:
            raise CostInputError(
                f"--preset guide recomputes the guide's own inputs and takes no {', '.join(named)} "
                "(drop --preset to price your own)"
            )
        return GUIDE_INPUTS
    values: dict[str, object] = {
        option.field: _parse(option, given[option.field]) for option in _OPTIONS if option.field in given
    }
    if args.detailed_monitoring is not None:
        values["detailed_monitoring"] = args.detailed_monitoring
    return replace(GUIDE_INPUTS, **values)  # type: ignore[arg-type]  # fields checked by _parse's kind


def _parse(option: _Option, text: str) -> Decimal | int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise CostInputError(f"{option.flag}={text!r} is not a number") from None
    if not value.is_finite():
        raise CostInputError(f"{option.flag}={text!r} is not a finite number")
    if option.kind == "amount":
        if value < 0:
            raise CostInputError(f"{option.flag}={text} is negative: it must be 0 or more")
        return value
    if option.kind == "positive":
        if value <= 0:
            raise CostInputError(f"{option.flag}={text} must be more than 0")
        return value
    if value != value.to_integral_value():
        raise CostInputError(f"{option.flag}={text} is not a whole number")
    whole = int(value)
    if whole < 0:
        raise CostInputError(f"{option.flag}={text} is negative: it must be 0 or more")
    low, high = {"count": (0, None), "instances": (1, None), "percent": (0, 100)}[option.kind]
    if whole < low or (high is not None and whole > high):
        bounds = f"between {low} and {high}" if high is not None else f"{low} or more"
        raise CostInputError(f"{option.flag}={text} is out of range: it must be {bounds}")
    return whole
