"""The fleet's monthly bill, exact: the guide's cost arithmetic plus what it leaves out.

Rounding is explicit and happens in two places only. Quantities (hours, requests, shares) are exact
:class:`~fractions.Fraction` values until they are displayed: 100,000 one-minute files are 5000/3
instance-hours, not 1666.67, so no later line inherits a rounded hour. Money is rounded half-up to cents
once per line, as an invoice and the guide do, and a total is the sum of its lines as shown, so every table
adds up (the guide's own 8.78 + 4.41 + 0.50 = 13.69 is such a sum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction

MINUTES_PER_HOUR = 60
PER_MILLION = 1_000_000

# The SQS calls one message costs, measured by benchmarks/sqs_throughput.py (README, "Benchmarks") while
# draining a queue: the guide's loop does ReceiveMessage(1) + DeleteMessage per message; filefleet does
# ReceiveMessage(10) + one DeleteMessageBatch per ten.
SEED_CALLS_PER_MESSAGE = Decimal("2.00")
FILEFLEET_CALLS_PER_MESSAGE = Decimal("0.20")


def rounded(value: Fraction, places: int) -> Decimal:
    """``value`` to ``places`` decimals, half away from zero: the guide's $8.78 for 8.7848, an invoice's way.

    Exact for any size: the rounding is done on integers, and a Decimal built from a string ignores the
    context precision (quantize and scaleb would round again at 28 digits).
    """
    scaled = abs(value) * 10**places
    whole = math.floor(scaled + Fraction(1, 2))
    return Decimal(f"{'-' if value < 0 and whole else ''}{whole}E-{places}")


def cents(value: Fraction) -> Decimal:
    """A line's amount in USD as billed: exact up to here, rounded half-up to cents once."""
    return rounded(value, 2)


def exact(value: Decimal | int) -> Fraction:
    """A decimal typed by a person, as the exact number it spells (Fraction(Decimal) loses nothing)."""
    return Fraction(value)


@dataclass(frozen=True, kw_only=True)
class CostInputs:
    """What the bill depends on. Prices in USD; defaults (:data:`GUIDE_INPUTS`) are the guide's."""

    files_per_month: int
    minutes_per_file: Decimal
    instances: int  # in parallel while there is work (the guide: 3, its group's maximum)
    spot_price: Decimal  # per instance-hour
    on_demand_price: Decimal  # per instance-hour
    ebs_gb: Decimal  # root volume per instance, deleted with it (DeleteOnTermination)
    ebs_price: Decimal  # per GB-month
    detailed_monitoring: bool
    monitoring_price: Decimal  # per instance-month, prorated by the hour like any CloudWatch metric
    data_transfer: Decimal  # per month, a flat figure as the guide gives it
    hours_per_month: Decimal
    on_demand_base: int  # OnDemandBaseCapacity
    on_demand_percent: int  # OnDemandPercentageAboveBaseCapacity
    sqs_price_per_million: Decimal
    sqs_free_requests: int  # per account and month; 0 when other queues already use the free tier
    calls_per_message: Decimal  # the fleet's worker (filefleet)
    seed_calls_per_message: Decimal  # the guide's loop, for comparison


GUIDE_INPUTS = CostInputs(
    files_per_month=100_000,  # "Scenario: Processing 100K files/month"
    minutes_per_file=Decimal(1),  # "Average processing: 1 minute/file"
    instances=3,  # "3 instances running in parallel"
    spot_price=Decimal("0.0158"),  # t3.medium, Tokyo, the guide's On-Demand vs Spot table
    on_demand_price=Decimal("0.0528"),
    ebs_gb=Decimal(20),  # the launch template's 20 GB gp3 root volume
    ebs_price=Decimal("0.096"),  # the cost table's $0.096/GB
    detailed_monitoring=True,  # the launch template enables it: "$2.10/month per instance"
    monitoring_price=Decimal("2.10"),
    data_transfer=Decimal("0.50"),  # "Negligible (VPC endpoints)", priced at $0.50
    hours_per_month=Decimal(730),
    on_demand_base=0,  # the mixed instances policy: base 0, 30 % On-Demand above it
    on_demand_percent=30,
    sqs_price_per_million=Decimal("0.40"),  # standard queue, AWS's published US East rate; check your region
    sqs_free_requests=1_000_000,  # the SQS free tier, every month, per account
    calls_per_message=FILEFLEET_CALLS_PER_MESSAGE,
    seed_calls_per_message=SEED_CALLS_PER_MESSAGE,
)


@dataclass(frozen=True)
class PurchaseMix:
    """How many of the instances running in parallel are On-Demand, the way Auto Scaling counts them."""

    instances: int
    on_demand: int

    @property
    def spot(self) -> int:
        return self.instances - self.on_demand

    @property
    def on_demand_share(self) -> Fraction:
        return Fraction(self.on_demand, self.instances) if self.instances else Fraction(0)


def purchase_mix(instances: int, *, base: int, percent: int) -> PurchaseMix:
    """The base first, then ``percent`` of the rest, rounded up.

    The EC2 Auto Scaling user guide (mixed instances groups, "Scaling behavior"): "If the result creates a
    fractional number, it rounds up to the next integer in favor of On-Demand Instances." So 30 % of 3 is
    1 On-Demand (33 %), and a group of 1 or 2 instances runs one On-Demand instance (100 %, 50 %).
    """
    from_base = min(instances, base)
    above = math.ceil(Fraction((instances - from_base) * percent, 100))
    return PurchaseMix(instances=instances, on_demand=from_base + above)


@dataclass(frozen=True)
class SqsBill:
    """SQS requests for one month's messages, before and after the free tier."""

    calls_per_message: Fraction
    requests: Fraction
    price_per_million: Fraction
    free_requests: int

    @property
    def gross(self) -> Fraction:
        return self.requests * self.price_per_million / PER_MILLION

    @property
    def billable_requests(self) -> Fraction:
        return max(Fraction(0), self.requests - self.free_requests)

    @property
    def net(self) -> Fraction:
        return self.billable_requests * self.price_per_million / PER_MILLION


def sqs_bill(files: int, calls_per_message: Decimal, inputs: CostInputs) -> SqsBill:
    # A request is billed per 64 KiB of payload; a batch of 10 messages of 6.4 KiB or less is one request,
    # so calls are billed requests for S3 notifications (see the README). The send side (S3's SendMessage,
    # one per event) is the same for both workers and is not in the measured figure.
    return SqsBill(
        calls_per_message=exact(calls_per_message),
        requests=files * exact(calls_per_message),
        price_per_million=exact(inputs.sqs_price_per_million),
        free_requests=inputs.sqs_free_requests,
    )


@dataclass(frozen=True)
class Line:
    key: str
    label: str
    amount: Fraction  # USD per month, exact

    @property
    def billed(self) -> Decimal:
        return cents(self.amount)


def total(amounts: tuple[Fraction, ...] | list[Fraction]) -> Decimal:
    """The sum of lines as billed (each in cents), so a total always equals the lines it shows."""
    return sum((cents(amount) for amount in amounts), Decimal("0.00"))


@dataclass(frozen=True)
class Estimate:
    """One month of the fleet: the bill by component, and the comparisons that put it in context."""

    inputs: CostInputs
    instance_hours: Fraction  # the work: files * minutes, however many instances share it
    wall_clock_hours: Fraction  # how long the parallel instances run: instance-hours ÷ instances
    mix: PurchaseMix
    spot_hours: Fraction
    on_demand_hours: Fraction
    lines: tuple[Line, ...]
    sqs: SqsBill
    seed_sqs: SqsBill
    all_spot_total: Decimal  # the same bill with no On-Demand share: the guide's table's assumption
    always_on_total: Decimal  # `instances` On-Demand instances 24/7 with the same volumes and extras

    @property
    def total(self) -> Decimal:
        return total([line.amount for line in self.lines])

    def line(self, key: str) -> Line:
        return next(line for line in self.lines if line.key == key)

    @property
    def on_demand_extra(self) -> Decimal:
        return self.total - self.all_spot_total

    @property
    def savings(self) -> Decimal:
        return self.always_on_total - self.total

    @property
    def savings_share(self) -> Fraction | None:
        return exact(self.savings) / exact(self.always_on_total) if self.always_on_total else None

    @property
    def wall_clock_share(self) -> Fraction:
        return self.wall_clock_hours / exact(self.inputs.hours_per_month)

    @property
    def finishes_within_month(self) -> bool:
        return self.wall_clock_hours <= exact(self.inputs.hours_per_month)


def estimate(inputs: CostInputs) -> Estimate:
    month = exact(inputs.hours_per_month)
    instance_hours = inputs.files_per_month * exact(inputs.minutes_per_file) / MINUTES_PER_HOUR
    mix = purchase_mix(inputs.instances, base=inputs.on_demand_base, percent=inputs.on_demand_percent)
    # Every instance runs for the whole wall-clock time, so each purchase option's hours follow its count.
    on_demand_hours = instance_hours * mix.on_demand_share
    spot_hours = instance_hours - on_demand_hours
    # A volume lives and is billed exactly as long as its instance: GB-months = GB * instance-hours / month.
    ebs = exact(inputs.ebs_gb) * exact(inputs.ebs_price) * instance_hours / month
    monitoring = (
        exact(inputs.monitoring_price) * instance_hours / month if inputs.detailed_monitoring else Fraction(0)
    )
    sqs = sqs_bill(inputs.files_per_month, inputs.calls_per_message, inputs)
    lines = (
        Line("spot_compute", "Spot compute", spot_hours * exact(inputs.spot_price)),
        Line("on_demand_compute", "On-Demand compute", on_demand_hours * exact(inputs.on_demand_price)),
        Line("ebs", "EBS volumes", ebs),
        Line("monitoring", "Detailed monitoring", monitoring),
        Line("data_transfer", "Data transfer", exact(inputs.data_transfer)),
        Line("sqs", "SQS requests", sqs.net),
    )
    extras = [line.amount for line in lines if line.key not in ("spot_compute", "on_demand_compute")]
    always_on = [
        inputs.instances * month * exact(inputs.on_demand_price),
        inputs.instances * exact(inputs.ebs_gb) * exact(inputs.ebs_price),
        inputs.instances * exact(inputs.monitoring_price) if inputs.detailed_monitoring else Fraction(0),
        exact(inputs.data_transfer),
        sqs.net,
    ]
    return Estimate(
        inputs=inputs,
        instance_hours=instance_hours,
        wall_clock_hours=instance_hours / inputs.instances,
        mix=mix,
        spot_hours=spot_hours,
        on_demand_hours=on_demand_hours,
        lines=lines,
        sqs=sqs,
        seed_sqs=sqs_bill(inputs.files_per_month, inputs.seed_calls_per_message, inputs),
        all_spot_total=total([instance_hours * exact(inputs.spot_price), *extras]),
        always_on_total=total(always_on),
    )


def all_spot(inputs: CostInputs) -> CostInputs:
    """The same inputs with no On-Demand share, as the guide's cost table assumes."""
    return replace(inputs, on_demand_base=0, on_demand_percent=0)
