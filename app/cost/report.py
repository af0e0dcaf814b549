"""`filefleet cost` output: readable tables, or one JSON document (``--json``).

JSON carries every number as a decimal string rounded as shown ("8.78", "1666.67"), the way the AWS Price
List API carries prices, so no reader meets a binary float's 8.779999.
"""

# Output shows arithmetic with a multiplication sign, as the guide prints it: not a confusable in text.
# ruff: noqa: RUF001

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from app.cost.guide import Check, Claim, GuideReport, ThroughputRow
from app.cost.model import Estimate, rounded

_HOURS = 2  # hours are shown to the hundredth: 1,666.67 instance-hours
_SHARE = 1  # percentages of our own, to a tenth: 33.3 %
_WIDTH = 110  # prose wraps here; tables are as wide as their cells

FLAG_LEGEND = (
    "ok           the printed figure follows from the guide's inputs",
    "ARITHMETIC   the guide's own expression, on the operands it prints, does not give it",
    "FORMULA      the expression is the wrong one for the quantity (its arithmetic may hold)",
    "UPSTREAM     right expression, built on an earlier figure that does not follow",
    "UNSUPPORTED  the guide derives it from nothing, and nothing it states gives it",
    "ROUNDING     only the guide's rounding of an intermediate moves the printed digit",
)
SQS_NOTE = (
    "SQS: calls per message are measured by benchmarks/sqs_throughput.py (README, Benchmarks): 2.00 for "
    "the guide's loop (ReceiveMessage of 1, DeleteMessage of 1), 0.20 for filefleet (ReceiveMessage of 10, "
    "one DeleteMessageBatch). AWS bills every 64 KiB of a request's payload as one request, so a receive of "
    "10 stays one request while messages average 6.4 KiB or less (S3 event notifications stay well under). "
    "Not counted, the same for both: S3's SendMessage (one per file) and the empty receives of an idle "
    "poller (one per 20 s long poll). The free requests are per account and month: pass "
    "--sqs-free-requests 0 when other queues use them."
)


# -- formatting --------------------------------------------------------------------------------------------


def usd(value: Decimal) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,}"


def hours(value: Fraction) -> str:
    return f"{rounded(value, _HOURS):,} h"


def share(value: Fraction | None) -> str:
    return "n/a" if value is None else f"{rounded(100 * value, _SHARE)}%"


def number(value: Fraction | Decimal, places: int = 0) -> str:
    return f"{rounded(Fraction(value), places):,}"


def _figure_value(value: Decimal | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "usd":
        return usd(value)
    if unit == "hours":
        return f"{value:,} h"
    return f"{value}%"


def _flag(check: Check, labels: dict[str, str]) -> str:
    if not check.flags:
        return "ok"
    words = [flag.upper() for flag in check.flags if flag != "upstream"]
    if check.upstream:
        words.append("UPSTREAM (" + ", ".join(labels[key] for key in check.upstream) + ")")
    return " + ".join(words)


def _wrap(text: str, indent: str = "", hang: str = "    ") -> list[str]:
    return textwrap.wrap(
        text, _WIDTH, initial_indent=indent, subsequent_indent=indent + hang, break_on_hyphens=False
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# -- text ----------------------------------------------------------------------------------------------------


def _table(rows: Sequence[tuple[str, ...]], aligns: str, indent: str = "") -> list[str]:
    """Columns as wide as their widest cell; ``aligns`` is one of "<" or ">" per column."""
    widths = [max(len(row[col]) for row in rows) for col in range(len(aligns))]
    lines = []
    for row in rows:
        cells = [f"{cell:{align}{width}}" for cell, align, width in zip(row, aligns, widths, strict=True)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def render_estimate(est: Estimate) -> list[str]:
    i = est.inputs
    month = Fraction(i.hours_per_month)
    out = [
        f"Monthly bill: {i.files_per_month:,} files × {i.minutes_per_file} min = "
        f"{hours(est.instance_hours).removesuffix(' h')} instance-hours, "
        f"{'1 instance runs' if i.instances == 1 else f'{i.instances} instances in parallel run'} "
        f"{hours(est.wall_clock_hours)}{'' if i.instances == 1 else ' each'} ({share(est.wall_clock_share)} "
        f"of a {number(month)} h month)",
        "Purchase mix: " + _mix_text(est),
    ]
    out = [line for paragraph in out for line in _wrap(paragraph)]
    if not est.finishes_within_month:
        out += _wrap(
            f"WARNING: the work needs {hours(est.wall_clock_hours)} of wall clock on "
            f"{_plural(i.instances, 'instance')}, more than the {number(month)} h month: the backlog only "
            "grows; add instances or shorten the work per file"
        )
    sqs = est.sqs
    free = (
        f"within the {i.sqs_free_requests:,} free"
        if sqs.billable_requests == 0
        else f"{number(sqs.billable_requests)} past the {i.sqs_free_requests:,} free"
    )
    how = {
        "spot_compute": f"{hours(est.spot_hours)} × ${i.spot_price}/h",
        "on_demand_compute": f"{hours(est.on_demand_hours)} × ${i.on_demand_price}/h",
        "ebs": f"{i.ebs_gb} GB × ${i.ebs_price}/GB-month × {hours(est.instance_hours)} ÷ {number(month)} h",
        "monitoring": (
            f"${i.monitoring_price}/instance-month × {hours(est.instance_hours)} ÷ {number(month)} h"
            if i.detailed_monitoring
            else "off"
        ),
        "data_transfer": "as given",
        "sqs": f"{i.files_per_month:,} × {i.calls_per_message} = {number(sqs.requests)} requests, "
        f"{free} ({usd(rounded(sqs.gross, 2))} without)",
    }
    rows = [("component", "monthly", "how")]
    rows += [(line.label, usd(line.billed), how[line.key]) for line in est.lines]
    rows.append(("Total", usd(est.total), ""))
    out += ["", *_table(rows, "<><", indent="  ")]

    seed = est.seed_sqs
    times = (
        f": {number(seed.requests / sqs.requests, 1).removesuffix('.0')}× filefleet's" if sqs.requests else ""
    )
    compared = [
        ("compared with", "monthly", ""),
        (
            "the same, all Spot (the guide's table assumes it)",
            usd(est.all_spot_total),
            f"the On-Demand share adds {usd(est.on_demand_extra)}",
        ),
        (
            f"SQS requests with the guide's loop ({i.seed_calls_per_message} calls/message)",
            usd(rounded(seed.net, 2)),
            f"{number(seed.requests)} requests ({usd(rounded(seed.gross, 2))} without the free tier){times}",
        ),
        (
            f"{_plural(i.instances, 'On-Demand instance')} 24/7, same components",
            usd(est.always_on_total),
            f"this fleet saves {usd(est.savings)} ({share(est.savings_share)})",
        ),
    ]
    out += ["", *_table(compared, "<><", indent="  "), "", *_wrap(SQS_NOTE, hang="")]
    return out


def _mix_text(est: Estimate) -> str:
    i, mix = est.inputs, est.mix
    rule = (
        f"{i.on_demand_percent}% On-Demand above a base of {i.on_demand_base}, rounded up in favour of "
        "On-Demand as Auto Scaling does"
    )
    if mix.on_demand == 0:
        return f"all {mix.instances} Spot ({rule})"
    return (
        f"{mix.on_demand} On-Demand + {mix.spot} Spot of {mix.instances} ({rule}): "
        f"{share(mix.on_demand_share)} of instance-hours On-Demand"
    )


def render_checks(checks: tuple[Check, ...]) -> list[str]:
    rows: list[tuple[str, ...]] = [
        ("figure", "guide's expression", "printed", "as printed", "recomputed", "flag")
    ]
    notes: list[str] = []
    labels = {check.figure.key: check.figure.label for check in checks}
    section, numbered = "", 0
    for check in checks:
        figure = check.figure
        if figure.section != section:
            section = figure.section
            rows.append((section, "", "", "", "", ""))
        flag = _flag(check, labels)
        if figure.note:
            numbered += 1
            notes += _wrap(f"[{numbered}] {figure.label}: {figure.note}", hang="     ")
            flag += f" [{numbered}]"
        rows.append(
            (
                "  " + figure.label,
                figure.expression,
                _figure_value(figure.printed, figure.unit),
                _figure_value(check.as_printed_shown, figure.unit),
                _figure_value(check.recomputed_shown, figure.unit),
                flag,
            )
        )
    return [*_table(rows, "<<>>><"), "", *notes]


def render_throughput(rows: tuple[ThroughputRow, ...]) -> list[str]:
    def cell(row: ThroughputRow, value: Fraction) -> str:
        return usd(rounded(value, 2)) if row.unit == "usd" else number(value, row.places)

    table = [("implied for the guide's scenario", "the guide says", "at 1 minute/file", "at ~50 files/min")]
    table += [
        (row.label, row.guide_says, cell(row, row.at_cost_table), cell(row, row.at_sizing)) for row in rows
    ]
    return _table(table, "<<>>", indent="  ")


def render_claims(claims: tuple[Claim, ...]) -> list[str]:
    width = max(len(claim.verdict) for claim in claims)
    return [
        line
        for claim in claims
        for line in _wrap(
            f"{claim.verdict.upper():<{width}}  “{claim.quote}”: {claim.reason}", "  ", " " * (width + 2)
        )
    ]


def render_guide(report: GuideReport) -> str:
    est = report.estimate
    i = est.inputs
    labels = {check.figure.key: check.figure.label for check in report.checks}
    bad = [labels[key] for key in report.mismatches]
    head = [
        f"The guide's inputs: {i.files_per_month:,} files/month, {i.minutes_per_file} min/file, "
        f"{i.instances} instances in parallel; t3.medium (Tokyo) Spot ${i.spot_price}/h, "
        f"On-Demand ${i.on_demand_price}/h; "
        f"{i.hours_per_month} h/month; {i.ebs_gb} GB gp3 at ${i.ebs_price}/GB-month; data transfer "
        f"${i.data_transfer}/month.",
        "Rounding: exact arithmetic; a figure is rounded half-up to the places the guide printed it with "
        "and must equal the printed value exactly. Later figures use earlier money in cents, as the guide's "
        "total does, and hours unrounded.",
    ]
    out = [
        "filefleet cost --preset guide: the guide's cost figures beside correct arithmetic",
        "",
        *(line for paragraph in head for line in _wrap(paragraph)),
        "",
        *render_checks(report.checks),
        "",
        *_wrap(
            f"{len(bad)} of {len(report.checks)} printed figures do not follow from the guide's inputs: "
            + ", ".join(bad)
        ),
        *("  " + line for line in FLAG_LEGEND),
        "",
        "The guide's two speeds: its cost table assumes 1 minute/file, its group sizing ~50 files/min per "
        "instance",
        *render_throughput(report.throughput),
        "",
        "Claims",
        *render_claims(report.claims),
        "",
        *_wrap(
            "What the guide's table leaves out, on its own inputs: the On-Demand share of its 70/30 mix, the "
            "detailed monitoring its launch template enables, SQS requests"
        ),
        "",
        *render_estimate(est),
    ]
    return "\n".join(out)


def render_plain(est: Estimate) -> str:
    i = est.inputs
    head = (
        f"filefleet cost: {i.files_per_month:,} files/month at {i.minutes_per_file} min/file on "
        f"{_plural(i.instances, 'instance')}"
    )
    return "\n".join([head, "", *render_estimate(est)])


# -- JSON ----------------------------------------------------------------------------------------------------


def _s(value: Fraction | Decimal, places: int) -> str:
    return str(rounded(Fraction(value), places))


def estimate_json(est: Estimate) -> dict[str, Any]:
    i = est.inputs
    return {
        "inputs": {
            "files_per_month": i.files_per_month,
            "minutes_per_file": str(i.minutes_per_file),
            "instances": i.instances,
            "spot_price_per_hour": str(i.spot_price),
            "on_demand_price_per_hour": str(i.on_demand_price),
            "ebs_gb": str(i.ebs_gb),
            "ebs_price_per_gb_month": str(i.ebs_price),
            "detailed_monitoring": i.detailed_monitoring,
            "monitoring_price_per_instance_month": str(i.monitoring_price),
            "data_transfer_per_month": str(i.data_transfer),
            "hours_per_month": str(i.hours_per_month),
            "on_demand_base": i.on_demand_base,
            "on_demand_percent": i.on_demand_percent,
            "sqs_price_per_million": str(i.sqs_price_per_million),
            "sqs_free_requests": i.sqs_free_requests,
            "calls_per_message": str(i.calls_per_message),
            "seed_calls_per_message": str(i.seed_calls_per_message),
        },
        "instance_hours": _s(est.instance_hours, _HOURS),
        "wall_clock_hours": _s(est.wall_clock_hours, _HOURS),
        "finishes_within_month": est.finishes_within_month,
        "mix": {
            "instances": est.mix.instances,
            "on_demand": est.mix.on_demand,
            "spot": est.mix.spot,
            "on_demand_share_percent": _s(100 * est.mix.on_demand_share, _SHARE),
            "spot_hours": _s(est.spot_hours, _HOURS),
            "on_demand_hours": _s(est.on_demand_hours, _HOURS),
        },
        "lines": [{"key": line.key, "label": line.label, "usd": str(line.billed)} for line in est.lines],
        "total_usd": str(est.total),
        "all_spot_total_usd": str(est.all_spot_total),
        "on_demand_share_extra_usd": str(est.on_demand_extra),
        "always_on_total_usd": str(est.always_on_total),
        "savings_usd": str(est.savings),
        "savings_percent": None if est.savings_share is None else _s(100 * est.savings_share, _SHARE),
        "sqs": {
            name: {
                "calls_per_message": _s(bill.calls_per_message, 2),
                "requests": _s(bill.requests, 0),
                "billable_requests": _s(bill.billable_requests, 0),
                "gross_usd": _s(bill.gross, 2),
                "net_usd": _s(bill.net, 2),
            }
            for name, bill in (("filefleet", est.sqs), ("seed", est.seed_sqs))
        },
    }


def _check_json(check: Check) -> dict[str, Any]:
    figure = check.figure
    return {
        "key": figure.key,
        "section": figure.section,
        "label": figure.label,
        "expression": figure.expression,
        "unit": figure.unit,
        "places": figure.places,
        "printed": str(figure.printed),
        "as_printed": None if check.as_printed_shown is None else str(check.as_printed_shown),
        "recomputed": str(check.recomputed_shown),
        "follows": check.follows,
        "flags": list(check.flags),
        "upstream": list(check.upstream),
        "note": figure.note,
    }


def guide_json(report: GuideReport) -> dict[str, Any]:
    return {
        "preset": "guide",
        "rounding": "exact arithmetic; each figure rounded half-up to the places the guide printed it with, "
        "compared for equality; money carried forward in cents, hours unrounded",
        "checks": [_check_json(check) for check in report.checks],
        "mismatches": list(report.mismatches),
        "throughput": [
            {
                "key": row.key,
                "label": row.label,
                "guide_says": row.guide_says,
                "at_1_minute_per_file": _s(row.at_cost_table, max(row.places, 2)),
                "at_50_files_per_minute": _s(row.at_sizing, max(row.places, 2)),
            }
            for row in report.throughput
        ],
        "claims": [
            {"key": claim.key, "quote": claim.quote, "verdict": claim.verdict, "reason": claim.reason}
            for claim in report.claims
        ],
        "estimate": estimate_json(report.estimate),
    }


def plain_json(est: Estimate) -> dict[str, Any]:
    return {"preset": None, "estimate": estimate_json(est)}
