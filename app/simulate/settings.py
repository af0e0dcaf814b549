"""Every input of a simulation, its default and where the default comes from.

Defaults are the operations guide's (shared/seed/000_0191613e2d289538.txt) and this repository's stack
(provisioning/fleet.yaml), so that a bare ``filefleet simulate`` runs the fleet as deployed. A value that is a
modelling assumption rather than a documented fact says so here and in the README's "Simulating" section.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

# Launch to first message (packer/README.md, "Boot budget"): EC2 pending→running 5-17 s plus boot and the
# preloaded container start, "about 15 to 40 s" in all; we take the middle. The guide's user data adds its
# install step, measured here at 63.8 s (benchmarks/container_start.py) on top of the same launch, and its
# `yum update` and agent download are not even counted: 95 s is a lower bound.
BOOT_PRESETS: dict[str, float] = {"ami": 30.0, "userdata": 95.0}

# EC2 pending→running, after which the instance is billed and (no launch lifecycle hook in our stack) the
# group puts it InService: 5 to 17 s sourced in packer/README.md; 15 s here.
PENDING_SECONDS = 15.0

# "A Spot Instance interruption notice is a warning that is issued two minutes before Amazon EC2 stops or
# terminates your Spot Instance." (EC2 user guide, Spot Instance interruption notices)
SPOT_NOTICE_SECONDS = 120.0

# systemd's default TimeoutStopSec: how long the guide's worker gets between SIGTERM and SIGKILL when its
# instance shuts down (the guide has no lifecycle hook and no drain deadline of its own).
GUIDE_STOP_SECONDS = 90.0

# CloudWatch bills a metric prorated by the hour, and the guide prices detailed monitoring of one instance at
# $2.10 a month (7 metrics x $0.30); 730 hours is the month the guide (and AWS pricing pages) use.
HOURS_PER_MONTH = 730.0

POLICIES = ("target", "step", "guide-lambda")
WORKERS = ("filefleet", "guide")
PROFILES = ("steady", "daily", "bursts")


class SettingsError(ValueError):
    """An input that cannot be simulated, said in one line naming the option."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """One simulation's inputs. Times are seconds unless the name says otherwise."""

    # -- traffic (app.simulate.arrivals)
    arrivals: str = "steady"  # a profile name, or the path of a CSV of timestamps
    files: int = 100_000  # files over the whole horizon (profiles only; a CSV brings its own)
    days: float = 30.0  # horizon of a profile
    batch_at_minute: int = 9 * 60  # daily: when each day's batch starts (minutes after midnight)
    batch_minutes: float = 60.0  # daily: over how long each batch lands
    bursts_per_day: float = 4.0  # bursts: mean number of bursts a day
    burst_minutes: float = 10.0  # bursts: over how long each burst lands

    # -- work per file
    mean_seconds: float = 60.0  # the guide's "Average processing: 1 minute/file"
    sigma: float = 0.5  # lognormal shape (log-space standard deviation); 0 = every file takes the mean
    concurrency: int = 2  # WORKER_CONCURRENCY (the guide's user data and our default)

    # -- instances
    boot_seconds: float = BOOT_PRESETS["ami"]  # launch to first message
    worker: str = (
        "filefleet"  # filefleet drains and releases; "guide" lets messages reappear after the timeout
    )
    drain_seconds: float = 90.0  # DRAIN_SECONDS (our default, inside the 120 s notice)
    visibility_timeout: float = 300.0  # the guide's and our queue's VisibilityTimeout

    # -- the group
    policy: str = "target"  # target (our stack) | step (the guide's) | guide-lambda (the guide's metric)
    target: float = 30.0  # backlog per instance (the guide's TargetValue)
    warmup_seconds: float = 180.0  # the guide's "Instance warmup: 180 seconds" (our InstanceWarmup)
    min_size: int = 0
    max_size: int = 3
    scale_out_periods: int = 3  # target tracking's high alarm: 3 of 3 one-minute datapoints
    scale_in_periods: int = 15  # target tracking's low alarm: 15 of 15
    scale_in_margin: float = (
        0.10  # low alarm threshold = target x (1 - margin): "usually more than 10 % lower"
    )
    on_demand_base: int = 0  # OnDemandBaseCapacity (the guide's 0)
    on_demand_percent: float = 30.0  # OnDemandPercentageAboveBaseCapacity (the guide's 30)
    interruption_rate: float = 0.01  # Spot interruption notices per Spot instance-hour (an assumption)
    rebalance: bool = True  # CapacityRebalance (our stack turns it on; the guide does not)
    scale_in_protection: bool = False  # SCALE_IN_PROTECTION (our stack's default: off)
    protection_idle_seconds: float = 120.0  # SCALE_IN_PROTECTION_IDLE_SECONDS

    # -- prices (the guide's, t3.medium in Tokyo)
    spot_price: float = 0.0158  # $/hour
    on_demand_price: float = 0.0528  # $/hour
    ebs_gb: float = 20.0  # root volume per instance
    ebs_price: float = 0.096  # $/GB-month (the guide's figure)
    monitoring_price: float = 2.10  # $/instance-month, detailed monitoring (the guide's figure)

    # -- the run
    seed: int = 1
    tail_days: float = 7.0  # after the horizon, keep simulating (no new files) until the fleet is idle

    def __post_init__(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise SettingsError("; ".join(problems))

    def changed(self, **changes: Any) -> Settings:
        """A copy with some inputs changed (validated again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def names() -> tuple[str, ...]:
        return tuple(field.name for field in fields(Settings))


def boot_seconds(text: str) -> float:
    """``ami``, ``userdata`` or a number of seconds."""
    preset = BOOT_PRESETS.get(text.strip().lower())
    if preset is not None:
        return preset
    try:
        value = float(text)
    except ValueError:
        names = ", ".join(BOOT_PRESETS)
        raise SettingsError(f"--boot {text!r}: expected {names} or a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise SettingsError(f"--boot {text!r}: must be 0 seconds or more")
    return value


def _problems(s: Settings) -> list[str]:
    out: list[str] = []

    def need(condition: bool, message: str) -> None:
        if not condition:
            out.append(message)

    finite = all(
        math.isfinite(float(getattr(s, name)))
        for name in Settings.names()
        if isinstance(getattr(s, name), float)
    )
    need(finite, "every number must be finite")
    need(s.files >= 0, "--files must be 0 or more")
    need(s.days > 0, "--days must be more than 0")
    need(0 <= s.batch_at_minute < 24 * 60, "--batch-at must be a time of day (00:00 to 23:59)")
    need(s.batch_minutes > 0, "--batch-minutes must be more than 0")
    need(s.bursts_per_day > 0, "--bursts-per-day must be more than 0")
    need(s.burst_minutes > 0, "--burst-minutes must be more than 0")
    need(s.mean_seconds > 0, "--mean-seconds must be more than 0")
    need(s.sigma >= 0, "--sigma must be 0 or more")
    need(1 <= s.concurrency <= 256, "--concurrency must be 1 to 256 (WORKER_CONCURRENCY's range)")
    need(s.boot_seconds >= PENDING_SECONDS, f"--boot must be at least {PENDING_SECONDS:g} s (EC2 pending)")
    need(s.worker in WORKERS, f"--worker must be one of {', '.join(WORKERS)}")
    need(
        0 <= s.drain_seconds <= 110,
        "--drain-seconds must be 0 to 110 (DRAIN_SECONDS: inside the 120 s Spot notice)",
    )
    need(s.visibility_timeout > 0, "--visibility-timeout must be more than 0")
    need(s.policy in POLICIES, f"--policy must be one of {', '.join(POLICIES)}")
    need(s.target > 0, "--target must be more than 0")
    need(s.warmup_seconds >= 0, "--warmup must be 0 or more")
    need(0 <= s.min_size <= s.max_size, "need 0 <= --min <= --max")
    need(s.max_size <= 1000, "--max must be 1000 or less")
    need(s.scale_out_periods >= 1 and s.scale_in_periods >= 1, "alarm periods must be 1 or more")
    need(0 <= s.scale_in_margin < 1, "--scale-in-margin must be 0 to less than 1")
    need(s.on_demand_base >= 0, "--on-demand-base must be 0 or more")
    need(0 <= s.on_demand_percent <= 100, "--on-demand-percent must be 0 to 100")
    need(s.interruption_rate >= 0, "--interruption-rate must be 0 or more")
    need(s.protection_idle_seconds >= 0, "the protection idle time must be 0 or more")
    prices = (s.spot_price, s.on_demand_price, s.ebs_gb, s.ebs_price, s.monitoring_price)
    need(min(prices) >= 0, "prices and sizes must be 0 or more")
    need(s.tail_days >= 0, "--tail-days must be 0 or more")
    return out
