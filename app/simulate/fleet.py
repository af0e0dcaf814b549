"""One instance's life in the group, the group's On-Demand/Spot split, and what an instance costs.

An instance is launched at ``launch``; EC2 takes it from pending to running in ``PENDING_SECONDS``, when
billing starts and the group (our stack has no launch lifecycle hook) counts it InService; the worker takes
its first message at ``launch + boot_seconds``; its metrics count towards the group's aggregate, and it counts
as "current capacity" for a scaling policy, once ``warmup_seconds`` have passed after InService (EC2 Auto
Scaling user guide, "Set the default instance warmup for an Auto Scaling group").

It stops receiving at ``stop_at`` (a scale-in or a Spot notice), and ``kill_at`` is when EC2 terminates it
(billing ends). ``stopping`` means the group no longer counts it towards its desired capacity: a scale-in, or
a Spot instance that capacity rebalancing replaces; a Spot instance interrupted *without* rebalancing stays
counted (and InService) until EC2 terminates it, and only then is it replaced.
"""

from __future__ import annotations

import math

from app.simulate.settings import HOURS_PER_MONTH, PENDING_SECONDS, Settings

INF = math.inf
MINIMUM_BILLED_SECONDS = 60.0  # per-second billing "with a minimum of 60 seconds" (AWS, 2017-10-02)


class Instance:
    """An instance of the group. Mutable: the engine advances it."""

    __slots__ = (
        "id",
        "in_service_at",
        "interrupted",
        "kill_at",
        "launch",
        "notice_at",
        "ready_at",
        "running",
        "spot",
        "stop_at",
        "stopping",
        "warm_at",
    )

    def __init__(
        self, ident: int, *, spot: bool, launch: float, settings: Settings, notice_at: float
    ) -> None:
        self.id = ident
        self.spot = spot
        self.launch = launch
        self.in_service_at = launch + PENDING_SECONDS
        self.ready_at = launch + settings.boot_seconds
        self.warm_at = self.in_service_at + settings.warmup_seconds
        self.notice_at = notice_at  # INF for On-Demand, or when interruptions are off
        self.stop_at = INF  # receives while a slot frees before this
        self.kill_at = INF
        self.stopping = False
        self.interrupted = False
        # The file each slot ran last (-1: none yet); running if its end is after the moment asked about.
        self.running = [-1] * settings.concurrency

    @property
    def alive(self) -> bool:
        return self.kill_at == INF

    def active(self) -> bool:
        """Counted towards the desired capacity: pending or InService, not on its way out."""
        return not self.stopping and self.kill_at == INF


def on_demand_target(desired: int, base: int, percent: float) -> int:
    """How many of ``desired`` instances are On-Demand: the base, then ``percent`` of the rest, rounded up.

    Rounding up (in favour of On-Demand) is our reading of the mixed instances policy, not a documented rule;
    it matches the guide's own example ("3 instances = 2 Spot + 1 On-Demand" at 30 %) and means that a
    one-instance fleet at 30 % is On-Demand, not Spot.
    """
    if desired <= base:
        return desired
    return base + math.ceil((desired - base) * percent / 100.0 - 1e-9)


def billed_seconds(instance: Instance, *, until: float) -> float:
    """Per-second billing from running (after pending) to termination, with the 60-second minimum.

    An instance terminated while still pending is not billed; one still alive is billed ``until`` then.
    Instances started before 0 (the pre-warmed ``min_size``) are billed from 0.
    """
    start = max(instance.in_service_at, 0.0)
    end = min(instance.kill_at, until)
    if end <= start:
        return 0.0
    return max(MINIMUM_BILLED_SECONDS, end - start)


def monitoring_hours(instance: Instance, *, until: float) -> int:
    """Hours of detailed monitoring billed: CloudWatch prorates metrics by the hour, a started hour counts."""
    seconds = billed_seconds(instance, until=until)
    return math.ceil(seconds / 3600.0) if seconds > 0 else 0


def monthly_to_hourly(price_per_month: float) -> float:
    return price_per_month / HOURS_PER_MONTH
