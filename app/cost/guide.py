"""The guide's printed cost figures, recomputed from the inputs it states, and its throughput claims.

Each printed figure is a :class:`Figure`: the guide's expression for it (``guide``), the right expression
when the guide's is wrong (``correct``), and the earlier figures it builds on (``uses``). Checking a figure
evaluates the guide's expression twice: once with the operands the guide prints next to it (does its
arithmetic hold?) and once with correct operands (is the expression the right one?), which tells a slip of
arithmetic, a wrong formula and an error carried from an earlier line apart. How the flags are decided is
in :func:`check_figures`.
"""

# The figures print arithmetic the way the guide does, with a multiplication sign: in output text it is
# what a reader expects, not a confusable.
# ruff: noqa: RUF001

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from app.cost.model import (
    GUIDE_INPUTS,
    MINUTES_PER_HOUR,
    CostInputs,
    Estimate,
    cents,
    estimate,
    exact,
    rounded,
)

Unit = Literal["usd", "hours", "percent"]
Flag = Literal["arithmetic", "formula", "upstream", "unsupported", "rounding"]
Values = Mapping[str, Fraction]
Formula = Callable[[Values], Fraction]

# Figures the guide states outside its cost table, used by the checks below.
FIXED_UTILIZATION = Fraction(10, 100)  # "Utilization: 10% (mostly idle)" of the fixed 24/7 instance
ASG_COST_RANGE = (Decimal(5), Decimal(15))  # "Cost: $5-$15/month"
ASG_SAVINGS_RANGE = (Decimal(70), Decimal(90))  # "Savings: 70-90%"
CLAIMED_FILES_PER_MINUTE = 50  # "Each instance processes ~50 files/min"
CLAIMED_BATCH_HOURS = 11  # "Can process daily batch in ~11 hours"
# Not the guide's: where its $2.10 comes from. Detailed monitoring bills each one-minute EC2 metric like a
# custom metric, $0.30 per metric-month in the first tier; CloudWatch's pricing example assumes 7 metrics
# per instance (the count depends on the instance type) and prorates by the hour.
MONITORING_METRICS_PER_INSTANCE = 7
MONITORING_PRICE_PER_METRIC = Decimal("0.30")


def _inputs(inputs: CostInputs) -> dict[str, Fraction]:
    """The raw operands every figure may use, by name."""
    return {
        "files": Fraction(inputs.files_per_month),
        "minutes": exact(inputs.minutes_per_file),
        "instances": Fraction(inputs.instances),
        "spot": exact(inputs.spot_price),
        "on_demand": exact(inputs.on_demand_price),
        "month": exact(inputs.hours_per_month),
        "ebs_gb": exact(inputs.ebs_gb),
        "ebs_price": exact(inputs.ebs_price),
        "transfer": exact(inputs.data_transfer),
        "utilization": FIXED_UTILIZATION,
        "metrics": Fraction(MONITORING_METRICS_PER_INSTANCE),
        "metric_price": exact(MONITORING_PRICE_PER_METRIC),
    }


@dataclass(frozen=True, kw_only=True)
class Figure:
    key: str
    section: str
    label: str
    expression: str  # the guide's, as printed (or what its figure is compared with, when it gives none)
    unit: Unit
    places: int  # decimals the guide printed it with: the precision it is compared at
    printed: Decimal
    guide: Formula | None  # None: the guide derives it from nothing
    correct: Formula | None = None  # None: the guide's expression is the right one
    uses: tuple[str, ...] = ()
    note: str = ""

    @property
    def right(self) -> Formula:
        formula = self.correct or self.guide
        assert formula is not None, f"{self.key} has neither the guide's formula nor a correct one"
        return formula


def _pct(part: Fraction, whole: Fraction) -> Fraction:
    return 100 * part / whole


FIGURES: tuple[Figure, ...] = (
    Figure(
        key="fixed_monthly",
        section="Why this matters",
        label="Fixed instance 24/7",
        expression="(stated)",
        unit="usd",
        places=0,
        printed=Decimal(50),
        guide=None,
        # The nearest derivation from the guide's own figures: one t3.medium On-Demand all month with the
        # cost table's other components (its 20 GB volume, data transfer).
        correct=lambda v: v["on_demand"] * v["month"] + v["ebs_gb"] * v["ebs_price"] + v["transfer"],
        note="follows from no stated input: one t3.medium On-Demand all month with its 20 GB volume and "
        "$0.50 of transfer is $40.96 ($38.54 compute alone, $43.06 with detailed monitoring)",
    ),
    Figure(
        key="fixed_waste",
        section="Why this matters",
        label="Waste at 10% utilization",
        expression="$50 × (100% - 10%)",
        unit="usd",
        places=0,
        printed=Decimal(45),
        guide=lambda v: v["fixed_monthly"] * (1 - v["utilization"]),
        uses=("fixed_monthly",),
        note="right arithmetic on the unsupported $50",
    ),
    Figure(
        key="on_demand_month",
        section="On-Demand vs Spot",
        label="On-Demand per month",
        expression="$0.0528 × 730h",
        unit="usd",
        places=2,
        printed=Decimal("38.54"),
        guide=lambda v: v["on_demand"] * v["month"],
    ),
    Figure(
        key="spot_month",
        section="On-Demand vs Spot",
        label="Spot per month",
        expression="$0.0158 × 730h",
        unit="usd",
        places=2,
        printed=Decimal("11.53"),
        guide=lambda v: v["spot"] * v["month"],
        note="also the launch template's 'Cost-effective ($11.53/month Spot)'",
    ),
    Figure(
        key="spot_discount",
        section="On-Demand vs Spot",
        label="Spot savings",
        expression="1 - $0.0158 ÷ $0.0528",
        unit="percent",
        places=0,
        printed=Decimal(70),
        guide=lambda v: _pct(v["on_demand"] - v["spot"], v["on_demand"]),
    ),
    Figure(
        key="monitoring_price",
        section="Launch template",
        label="Detailed monitoring/instance",
        expression="(stated) vs 7 metrics × $0.30",
        unit="usd",
        places=2,
        printed=Decimal("2.10"),
        guide=None,
        correct=lambda v: v["metrics"] * v["metric_price"],
        note="7 one-minute EC2 metrics at $0.30 per metric-month, CloudWatch pricing's own example; billed "
        "by the hour an instance runs, and left out of the cost table",
    ),
    Figure(
        key="processing_hours",
        section="Monthly Cost Estimate",
        label="Total processing time",
        expression="100K minutes ÷ 60",
        unit="hours",
        places=0,
        printed=Decimal(1667),
        guide=lambda v: v["files"] * v["minutes"] / MINUTES_PER_HOUR,
        note="1,666.67 h: instance-hours, whatever the parallelism",
    ),
    Figure(
        key="runtime_hours",
        section="Monthly Cost Estimate",
        label="Actual runtime",
        expression="1667 ÷ 3",
        unit="hours",
        places=0,
        printed=Decimal(556),
        guide=lambda v: v["processing_hours"] / v["instances"],
        uses=("processing_hours",),
        note="wall-clock hours of each of the 3 instances, not instance-hours",
    ),
    Figure(
        key="spot_cost",
        section="Monthly Cost Estimate",
        label="Spot instances",
        expression="556h × $0.0158/h",
        unit="usd",
        places=2,
        printed=Decimal("8.78"),
        guide=lambda v: v["runtime_hours"] * v["spot"],
        correct=lambda v: v["runtime_hours"] * v["instances"] * v["spot"],
        uses=("runtime_hours",),
        note="prices 556 h, the wall clock of one instance: 3 instances in parallel bill 3 × 556 h, the "
        "1,667 instance-hours of the line above (the EBS line below does count all 3)",
    ),
    Figure(
        key="ebs_cost",
        section="Monthly Cost Estimate",
        label="EBS storage",
        expression="20GB × 3 × $0.096 × (556/730)",
        unit="usd",
        places=2,
        printed=Decimal("4.41"),
        guide=lambda v: v["ebs_gb"] * v["instances"] * v["ebs_price"] * v["runtime_hours"] / v["month"],
        uses=("runtime_hours",),
        note="its own expression gives $4.39 (4.3871); $4.41 would need 559 h; unrounded runtime gives $4.38",
    ),
    Figure(
        key="data_transfer",
        section="Monthly Cost Estimate",
        label="Data transfer",
        expression="Negligible (VPC endpoints)",
        unit="usd",
        places=2,
        printed=Decimal("0.50"),
        guide=lambda v: v["transfer"],
        note="an input, not derived; interface endpoints themselves bill per hour and AZ, which it omits",
    ),
    Figure(
        key="total",
        section="Monthly Cost Estimate",
        label="Total",
        expression="8.78 + 4.41 + 0.50",
        unit="usd",
        places=2,
        printed=Decimal("13.69"),
        guide=lambda v: v["spot_cost"] + v["ebs_cost"] + v["data_transfer"],
        uses=("spot_cost", "ebs_cost", "data_transfer"),
        note="adds its printed lines correctly; carries both errors above",
    ),
    Figure(
        key="always_on",
        section="Compare to On-Demand 24/7",
        label="On-Demand 24/7",
        expression="730h × 3 × $0.0528/h",
        unit="usd",
        places=2,
        printed=Decimal("115.58"),
        guide=lambda v: v["month"] * v["instances"] * v["on_demand"],
        note="730 × 3 × 0.0528 = 115.632; $115.58 would need 729.7 h (or $0.05278/h)",
    ),
    Figure(
        key="savings",
        section="Compare to On-Demand 24/7",
        label="Savings",
        expression="$115.58 - $13.69",
        unit="usd",
        places=2,
        printed=Decimal("101.89"),
        guide=lambda v: v["always_on"] - v["total"],
        uses=("always_on", "total"),
    ),
    Figure(
        key="savings_percent",
        section="Compare to On-Demand 24/7",
        label="Savings %",
        expression="$101.89 ÷ $115.58",
        unit="percent",
        places=0,
        printed=Decimal(88),
        guide=lambda v: _pct(v["savings"], v["always_on"]),
        uses=("savings", "always_on"),
        note="its 24/7 side counts compute only, while its fleet side also counts volumes and transfer",
    ),
)


@dataclass(frozen=True)
class Check:
    """One printed figure beside its recomputation, and why they differ, if they do."""

    figure: Figure
    as_printed: Fraction | None  # the guide's expression on the operands it prints; None: it has none
    recomputed: Fraction  # the right expression on correct operands
    flags: tuple[Flag, ...]
    upstream: tuple[str, ...]  # earlier figures whose printed value does not follow

    @property
    def recomputed_shown(self) -> Decimal:
        return rounded(self.recomputed, self.figure.places)

    @property
    def as_printed_shown(self) -> Decimal | None:
        return None if self.as_printed is None else rounded(self.as_printed, self.figure.places)

    @property
    def follows(self) -> bool:
        return self.recomputed_shown == self.figure.printed


def _carried(figure: Figure, value: Fraction) -> Fraction:
    # Later figures build on earlier ones as printed: money in cents (as a bill and the guide carry it),
    # quantities exact (the guide's 556 h for 555.56 is a rounding the right arithmetic does not repeat).
    return exact(cents(value)) if figure.unit == "usd" else value


def check_figures(
    inputs: CostInputs = GUIDE_INPUTS, figures: Sequence[Figure] = FIGURES
) -> tuple[Check, ...]:
    """Recompute every printed figure of the guide, in order, each from the figures before it.

    A figure *follows* when its recomputation, rounded half-up to the places the guide printed it with,
    equals the printed value exactly (no tolerance). When it does not, the flags say why:

    - ``arithmetic``: the guide's own expression on the operands it prints does not give the printed value;
    - ``formula``: on correct operands the guide's expression and the right one disagree (a wrong formula,
      even where the arithmetic holds);
    - ``upstream``: an operand is an earlier printed figure that does not follow;
    - ``unsupported``: the guide gives no expression, and nothing it states yields the figure;
    - ``rounding``: none of these; the guide's rounding of an intermediate moved the printed digit.
    """
    stated: dict[str, Fraction] = _inputs(inputs)  # the operands as the guide prints them
    right: dict[str, Fraction] = dict(stated)  # the operands as they should be
    checks: dict[str, Check] = {}
    for figure in figures:
        as_printed = figure.guide(stated) if figure.guide else None
        recomputed = figure.right(right)
        upstream = tuple(key for key in figure.uses if not checks[key].follows)
        flags: list[Flag] = []
        if as_printed is not None and rounded(as_printed, figure.places) != figure.printed:
            flags.append("arithmetic")
        if (
            figure.guide is not None
            and figure.correct is not None
            and rounded(figure.guide(right), figure.places) != rounded(recomputed, figure.places)
        ):
            flags.append("formula")
        if figure.guide is None and rounded(recomputed, figure.places) != figure.printed:
            flags.append("unsupported")
        follows = rounded(recomputed, figure.places) == figure.printed
        if upstream and not follows:
            flags.append("upstream")
        if not follows and not flags:
            flags.append("rounding")
        check = Check(figure, as_printed, recomputed, tuple(flags), upstream if not follows else ())
        checks[figure.key] = check
        stated[figure.key] = exact(figure.printed)
        right[figure.key] = _carried(figure, recomputed)
    return tuple(checks.values())


def mismatches(checks: tuple[Check, ...]) -> tuple[str, ...]:
    return tuple(check.figure.key for check in checks if not check.follows)


# -- claims that are not a single figure ------------------------------------------------------------------

Verdict = Literal["holds", "contradicted", "unsupported", "inconsistent"]


@dataclass(frozen=True)
class Claim:
    key: str
    quote: str  # the guide's words
    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class Throughput:
    """What one assumed speed implies for the guide's scenario, computed, not quoted."""

    label: str
    files_per_minute: Fraction  # per instance

    def fleet_per_hour(self, instances: int) -> Fraction:
        return self.files_per_minute * instances * MINUTES_PER_HOUR

    def hours_for(self, files: Fraction, instances: int) -> Fraction:
        return files / self.fleet_per_hour(instances)

    def instance_hours_for(self, files: Fraction) -> Fraction:
        return files / (self.files_per_minute * MINUTES_PER_HOUR)

    def monthly_capacity(self, instances: int, month: Fraction) -> Fraction:
        return self.fleet_per_hour(instances) * month


@dataclass(frozen=True)
class ThroughputRow:
    key: str
    label: str
    guide_says: str
    unit: str
    places: int
    at_cost_table: Fraction  # 1 minute per file
    at_sizing: Fraction  # ~50 files per minute per instance


def throughput_rows(inputs: CostInputs = GUIDE_INPUTS) -> tuple[ThroughputRow, ...]:
    """The guide's two speeds side by side: the cost table's 1 min/file and "Why max 3?"'s ~50 files/min."""
    table = Throughput("1 minute/file", 1 / exact(inputs.minutes_per_file))
    sizing = Throughput("~50 files/min", Fraction(CLAIMED_FILES_PER_MINUTE))
    files, n, month = Fraction(inputs.files_per_month), inputs.instances, exact(inputs.hours_per_month)
    daily = files * 24 / month  # a day's share of the month's files, in a month of `month` hours
    files_label = f"{inputs.files_per_month:,} files"
    specs: tuple[tuple[str, str, str, str, int, Callable[[Throughput], Fraction]], ...] = (
        ("per_instance", "files/min, one instance", "1 minute/file; ~50 files/min", "files/min", 0,
         lambda t: t.files_per_minute),
        ("fleet_per_hour", f"files/hour, {n} instances", "150 files/min = 9000 files/hour", "files/h", 0,
         lambda t: t.fleet_per_hour(n)),
        ("month_hours", f"hours for {files_label}, {n} instances", "556 h (table); ~11 h (batch)", "h", 2,
         lambda t: t.hours_for(files, n)),
        ("daily_hours", f"hours for a day's {cents(daily):,.0f} files", "daily batch in ~11 hours", "h", 2,
         lambda t: t.hours_for(daily, n)),
        ("capacity", f"files/month at most, {n} instances", "Sufficient for 100K files/month", "files", 0,
         lambda t: t.monthly_capacity(n, month)),
        ("instance_hours", f"instance-hours for {files_label}", "1667 h", "h", 2,
         lambda t: t.instance_hours_for(files)),
        ("spot_compute", "Spot compute, USD", "$8.78", "usd", 2,
         lambda t: t.instance_hours_for(files) * exact(inputs.spot_price)),
        ("fixed_utilization", "one fixed instance's utilization, %", "10% (mostly idle)", "%", 1,
         lambda t: 100 * t.instance_hours_for(files) / month),
    )  # fmt: skip
    return tuple(
        ThroughputRow(key, label, says, unit, places, at(table), at(sizing))
        for key, label, says, unit, places, at in specs
    )


def claims(inputs: CostInputs = GUIDE_INPUTS) -> tuple[Claim, ...]:
    """The guide's statements that are ranges or throughput, each with a verdict computed from its inputs."""
    rows = {row.key: row for row in throughput_rows(inputs)}
    full = estimate(inputs)
    low, high = ASG_COST_RANGE
    table_total = next(c for c in check_figures(inputs) if c.figure.key == "total")
    in_range = low <= table_total.recomputed_shown <= high
    fixed = next(f.printed for f in FIGURES if f.key == "fixed_monthly")
    implied_savings = (
        rounded(100 * (1 - exact(high) / exact(fixed)), 0),
        rounded(100 * (1 - exact(low) / exact(fixed)), 0),
    )

    def hours(value: Fraction) -> str:
        return f"{rounded(value, 2):,} h"

    def count(value: Fraction) -> str:
        return f"{rounded(value, 0):,}"

    ratio = rows["per_instance"].at_sizing / rows["per_instance"].at_cost_table
    batch_files = rows["fleet_per_hour"].at_sizing * CLAIMED_BATCH_HOURS
    return (
        Claim(
            "asg_cost_range",
            "With Auto Scaling + Spot: Cost: $5-$15/month",
            "holds" if in_range else "contradicted",
            f"its own table total (${table_total.figure.printed}) is inside; correct arithmetic on the same "
            f"lines gives ${table_total.recomputed_shown}, and ${full.total} with the 70/30 mix and the "
            "detailed monitoring the guide configures",
        ),
        Claim(
            "asg_savings_range",
            "Savings: 70-90%",
            # Its arithmetic can hold, but on the $50 and the $5-$15 that follow from nothing.
            "unsupported" if implied_savings == ASG_SAVINGS_RANGE else "contradicted",
            f"1 - ${high}/${fixed} = {implied_savings[0]}% and 1 - ${low}/${fixed} = {implied_savings[1]}% "
            "(its arithmetic), on figures that follow from nothing; against "
            f"{inputs.instances} On-Demand instances 24/7 with the same volumes and "
            f"extras, the complete bill saves {rounded(100 * (full.savings_share or Fraction(0)), 1)}%",
        ),
        Claim(
            "speed_per_instance",
            "Average processing: 1 minute/file | Each instance processes ~50 files/min",
            "contradicted",
            f"1 file/min against 50 files/min per instance ({count(ratio)}×); the cost table prices the "
            f"first ({rounded(rows['instance_hours'].at_cost_table, 2):,} instance-hours), the group's "
            f"sizing assumes the second ({rounded(rows['instance_hours'].at_sizing, 2):,})",
        ),
        Claim(
            "speed_fleet",
            "3 instances = 150 files/min = 9000 files/hour",
            "inconsistent",
            "right arithmetic at ~50 files/min; at the cost table's 1 minute/file 3 instances do "
            f"3 files/min, {count(rows['fleet_per_hour'].at_cost_table)} files/hour",
        ),
        Claim(
            "daily_batch",
            "Can process daily batch in ~11 hours",
            "contradicted",
            f"11 h × 9,000 files/h = {count(batch_files)} files: the whole month's "
            f"{inputs.files_per_month:,} ({hours(rows['month_hours'].at_sizing)} at 150 files/min), not a "
            "day's; a day's share takes "
            f"{hours(rows['daily_hours'].at_sizing)} at ~50 files/min, "
            f"{hours(rows['daily_hours'].at_cost_table)} at 1 minute/file",
        ),
        Claim(
            "sufficient",
            "Sufficient for 100K files/month",
            "holds",
            f"at most {count(rows['capacity'].at_cost_table)} files/month at 1 minute/file (busy "
            f"{rounded(100 * rows['month_hours'].at_cost_table / exact(inputs.hours_per_month), 0)}% of the "
            f"month, little headroom for a burst), {count(rows['capacity'].at_sizing)} at ~50 files/min",
        ),
        Claim(
            "fixed_utilization",
            "Fixed EC2 instance running 24/7 ... Utilization: 10% (mostly idle)",
            "inconsistent",
            f"{inputs.files_per_month:,} files/month need "
            f"{rounded(rows['fixed_utilization'].at_cost_table, 1)}% of one instance at 1 minute/file (it "
            f"cannot keep up) and {rounded(rows['fixed_utilization'].at_sizing, 1)}% at ~50 files/min",
        ),
    )


@dataclass(frozen=True)
class GuideReport:
    checks: tuple[Check, ...]
    throughput: tuple[ThroughputRow, ...]
    claims: tuple[Claim, ...]
    estimate: Estimate  # the complete bill on the guide's inputs: what its table leaves out

    @property
    def mismatches(self) -> tuple[str, ...]:
        return mismatches(self.checks)


def guide_report() -> GuideReport:
    return GuideReport(
        checks=check_figures(GUIDE_INPUTS),
        throughput=throughput_rows(GUIDE_INPUTS),
        claims=claims(GUIDE_INPUTS),
        estimate=estimate(GUIDE_INPUTS),
    )
