"""The simulation: files through an SQS queue and an Auto Scaling group of workers, seeded and repeatable.

Two planes, as in AWS:

* **Control, once a minute.** At each minute boundary the engine samples what CloudWatch would publish for
  the minute just ended (visible messages, in-service instances, desired capacity), lets the policy's alarms
  evaluate it, clamps the answer to ``[min, max]`` and reconciles the group (launches or scale-in
  terminations, keeping the On-Demand/Spot split). Datapoints are taken at the end of the minute they
  describe and acted on at once: about one minute of metric delay, an optimistic one.
* **Data, exact to the second.** Between boundaries every file is followed individually: each instance has
  ``concurrency`` slots; a free slot of a ready instance takes the next visible message the moment both
  exist; a file holds its slot for its own processing time (lognormal, drawn per file); Spot notices, drains
  and terminations happen at their own times in between. Queue waits are therefore per file, not per
  cohort: the percentiles are exact for this model, not binned.

Why this is fast enough (``benchmarks/simulate_speed.py``: a month, 100,000 files): all randomness is drawn up
front with numpy (arrivals, processing times) or once per launch (Spot interruptions); the only per-file work
is two heap operations on the slot heap (a handful of instances x ``concurrency`` entries), with no message
objects and no per-file events; per-minute work is O(instances); the end-of-run statistics are vectorised.

Scale-in protection (``scale_in_protection``, our worker's SCALE_IN_PROTECTION): an instance is protected
while it runs a file and for ``protection_idle_seconds`` after; a scale-in lowers the desired capacity anyway,
terminates only unprotected instances, and the group terminates the excess as protection lapses ("If all
instances in an Auto Scaling group are protected from scale in, and a scale-in event occurs, its desired
capacity is decremented": EC2 Auto Scaling user guide, instance scale-in protection).

Message order: visible messages are received in the order they became visible (arrival, or the release of a
drained one), a simplification of a standard queue's best-effort order. Nothing is dead-lettered: every file
succeeds when it runs to completion. A drained file's message is released and its work is redone from the
start by whichever slot takes it next.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from app.simulate.arrivals import Arrivals, make_arrivals
from app.simulate.fleet import INF, Instance, on_demand_target
from app.simulate.policies import GroupView, Policy, make_policy
from app.simulate.settings import GUIDE_STOP_SECONDS, PENDING_SECONDS, SPOT_NOTICE_SECONDS, Settings

NAN = math.nan
# Control-plane events between minute boundaries (the heap orders ties by sequence number).
NOTICE = 0  # a Spot interruption notice reaches an instance
KILL = 1  # EC2 terminates an instance
SHUTDOWN = 2  # the guide's worker, which ignores notices, is shut down with its instance


@dataclass(frozen=True)
class ScalingAction:
    """A change of desired capacity decided by a policy."""

    time: float
    before: int
    after: int
    reason: str


@dataclass
class RunResult:
    """Everything one run produced; :mod:`app.simulate.report` turns it into figures."""

    settings: Settings
    source: str
    horizon_minutes: int
    end_time: float  # seconds; the run continues past the horizon until the fleet is idle (or the tail cap)
    arrivals: NDArray[np.float64]
    durations: NDArray[np.float64]
    start: NDArray[np.float64]  # start of the last attempt (NaN: never started, or released and waiting)
    end: NDArray[np.float64]  # end of the last attempt (NaN unless it ran to completion or is running)
    attempts: NDArray[np.int64]
    instances: list[Instance]
    visible: NDArray[np.int32]  # per minute boundary: AWS/SQS ApproximateNumberOfMessagesVisible
    desired: NDArray[np.int32]
    in_service: NDArray[np.int32]
    alive: NDArray[np.int32]  # instances existing (billed) at each boundary, draining ones included
    actions: list[ScalingAction] = field(default_factory=list)
    replacements: int = 0  # launches that replaced an interrupted instance (no change of desired)
    interruptions: int = 0  # Spot notices received by instances still in the group
    redone_seconds: float = 0.0  # processing thrown away by drains (released files start over)


def simulate(settings: Settings, arrivals: Arrivals | None = None) -> RunResult:
    """Run one simulation. ``arrivals`` defaults to what ``settings`` describe, drawn from its seed."""
    streams = np.random.SeedSequence(settings.seed).spawn(3)
    if arrivals is None:
        arrivals = make_arrivals(settings, np.random.default_rng(streams[0]))
    durations = draw_durations(settings, arrivals.times.size, np.random.default_rng(streams[1]))
    return _Engine(settings, arrivals, durations, np.random.default_rng(streams[2])).run()


def draw_durations(settings: Settings, n: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Processing time of each file: lognormal with the given mean (``sigma`` 0: all equal to the mean)."""
    if settings.sigma == 0:
        return np.full(n, settings.mean_seconds)
    mu = math.log(settings.mean_seconds) - settings.sigma**2 / 2  # so that the mean is mean_seconds
    return rng.lognormal(mu, settings.sigma, n)


def interruption_delay(settings: Settings, rng: np.random.Generator) -> float:
    """Seconds from InService to a Spot notice: exponential, ``interruption_rate`` per instance-hour."""
    if settings.interruption_rate <= 0:
        return INF
    return float(rng.exponential(3600.0 / settings.interruption_rate))


def initial_launch_time(settings: Settings) -> float:
    """When the ``min_size`` instances are launched so that they are in service, ready and warm at 0."""
    return -max(settings.boot_seconds, PENDING_SECONDS + settings.warmup_seconds)


def drain_deadline(settings: Settings) -> float:
    """Seconds a stopping worker gets to finish what runs: DRAIN_SECONDS, or systemd's 90 s for the guide."""
    return settings.drain_seconds if settings.worker == "filefleet" else GUIDE_STOP_SECONDS


class _Engine:
    def __init__(
        self,
        settings: Settings,
        arrivals: Arrivals,
        durations: NDArray[np.float64],
        interruption_rng: np.random.Generator,
    ) -> None:
        self.s = settings
        self.source = arrivals.source
        self.horizon_minutes = arrivals.horizon_minutes
        self.arrival_array = arrivals.times
        self.duration_array = durations
        # Python lists: per-element access to numpy arrays costs ~10x a list's in the per-file loop.
        self.arr: list[float] = arrivals.times.tolist()
        self.dur: list[float] = durations.tolist()
        n = len(self.arr)
        self.n = n
        self.start: list[float] = [NAN] * n
        self.end: list[float] = [NAN] * n
        self.attempts: list[int] = [0] * n
        self.ptr = 0  # next arrival never received
        self.released: list[tuple[float, int]] = []  # (visible again at, file)
        self.slots: list[tuple[float, int, int]] = []  # (free at, instance, slot)
        self.events: list[tuple[float, int, int, int]] = []  # (time, seq, kind, instance)
        self.seq = 0
        self.instances: list[Instance] = []
        self.alive: list[Instance] = []
        self.policy: Policy = make_policy(settings)
        self.rng = interruption_rng
        self.desired = settings.min_size
        self.actions: list[ScalingAction] = []
        self.replacements = 0
        self.interruptions = 0
        self.redone = 0.0
        self.deadline_after = drain_deadline(settings)
        self.excess = False  # the group must reconcile (set on a change; stays while protection blocks it)

    # -- the group ----------------------------------------------------------------------------------------

    def launch(self, t: float, *, spot: bool) -> None:
        ident = len(self.instances)
        notice = INF
        if spot:
            notice = t + PENDING_SECONDS + interruption_delay(self.s, self.rng)
        inst = Instance(ident, spot=spot, launch=t, settings=self.s, notice_at=notice)
        self.instances.append(inst)
        self.alive.append(inst)
        for slot in range(self.s.concurrency):
            heapq.heappush(self.slots, (inst.ready_at, ident, slot))
        if notice < INF:
            self.push_event(notice, NOTICE, ident)

    def push_event(self, t: float, kind: int, ident: int) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, ident))

    def reconcile(self, t: float, *, replacing: bool = False) -> None:
        """Launch or terminate until the active instances match the desired capacity and the split."""
        active = [inst for inst in self.alive if inst.active()]
        on_demand = sum(1 for inst in active if not inst.spot)
        want_on_demand = on_demand_target(self.desired, self.s.on_demand_base, self.s.on_demand_percent)
        count = len(active)
        while count < self.desired:
            spot = on_demand >= want_on_demand
            self.launch(t, spot=spot)
            on_demand += not spot
            count += 1
            self.replacements += replacing
        self.excess = False
        while count > self.desired:
            # Terminate from the purchase option above its share (the default termination policy first
            # keeps the allocation), then the oldest: a deterministic stand-in for its random last step.
            # Instances protected from scale-in are not candidates.
            candidates = [inst for inst in active if not inst.stopping and not self.protected(inst, t)]
            spot = on_demand <= want_on_demand
            victim = next((inst for inst in candidates if inst.spot == spot), None)
            if victim is None and candidates:
                victim = candidates[0]
            if victim is None:
                # All protected: the desired capacity is lower, the group waits for protection to go.
                self.excess = True
                return
            on_demand -= not victim.spot
            count -= 1
            self.stop(victim, t)

    def protected(self, inst: Instance, t: float) -> bool:
        """SCALE_IN_PROTECTION: the worker protects its instance while it holds work, and a while after."""
        if not self.s.scale_in_protection:
            return False
        since = t - self.s.protection_idle_seconds
        end = self.end
        return any(idx >= 0 and end[idx] > since for idx in inst.running)

    def stop(self, inst: Instance, t: float) -> None:
        """The group terminates ``inst`` (scale-in, or rebalancing): it drains, then EC2 terminates it."""
        inst.stopping = True
        kill = self.drain(inst, t, t + self.deadline_after)
        self.push_event(kill, KILL, inst.id)

    def drain(self, inst: Instance, at: float, deadline: float) -> float:
        """Stop receiving at ``at``; what runs ends by ``deadline`` or is released. Returns the kill time."""
        inst.stop_at = min(inst.stop_at, at)
        last = at
        released_any = False
        end, start = self.end, self.start
        for slot, idx in enumerate(inst.running):
            if idx < 0:
                continue
            finish = end[idx]
            if not finish > at:  # done before (or released already: NaN)
                continue
            if finish <= deadline:
                last = max(last, finish)
                continue
            began = start[idx]
            self.redone += deadline - began
            end[idx] = NAN
            start[idx] = NAN
            inst.running[slot] = -1
            # filefleet releases at once (visibility 0); the guide's message waits out its visibility timeout.
            visible_at = deadline
            if self.s.worker == "guide":
                visible_at = max(deadline, began + self.s.visibility_timeout)
            heapq.heappush(self.released, (visible_at, idx))
            released_any = True
        return deadline if released_any else last

    def handle(self, t: float, kind: int, ident: int) -> None:
        inst = self.instances[ident]
        if not inst.alive:
            return
        if kind == KILL:
            inst.kill_at = t
            self.alive.remove(inst)
            if not inst.stopping:  # interrupted without rebalancing: replaced only now
                inst.stopping = True
                self.reconcile(t, replacing=True)
            return
        if kind == SHUTDOWN:
            self.drain(inst, t, t)
            self.handle(t, KILL, ident)
            return
        # NOTICE
        if inst.stopping:
            return
        inst.interrupted = True
        self.interruptions += 1
        if self.s.rebalance:
            # Capacity rebalancing: the group launches a replacement and terminates this one (the lifecycle
            # hook drains it). The rebalance recommendation may come earlier; we take it with the notice.
            self.stop(inst, t)
            self.reconcile(t, replacing=True)
        elif self.s.worker == "filefleet":
            self.drain(inst, t, t + self.s.drain_seconds)  # the worker polls IMDS and drains on the notice
            self.push_event(t + SPOT_NOTICE_SECONDS, KILL, ident)
        else:
            self.push_event(t + SPOT_NOTICE_SECONDS, SHUTDOWN, ident)

    # -- the data plane -----------------------------------------------------------------------------------

    def advance(self, t1: float) -> None:
        """Start every file that can start before ``t1``, and handle the events before it, in time order."""
        slots, released, events = self.slots, self.released, self.events
        arr, dur, start, end, attempts = self.arr, self.dur, self.start, self.end, self.attempts
        instances = self.instances
        n = self.n
        ptr = self.ptr
        heappop, heappush = heapq.heappop, heapq.heappush
        while True:
            free = slots[0][0] if slots else INF
            head = arr[ptr] if ptr < n else INF
            rel = released[0][0] if released else INF
            ready = head if head <= rel else rel
            when = free if free > ready else ready
            if events and events[0][0] <= when:
                if events[0][0] >= t1:
                    break
                t, _, kind, ident = heappop(events)
                self.ptr = ptr
                self.handle(t, kind, ident)
                continue
            if when >= t1:
                break
            _, ident, slot = heappop(slots)
            inst = instances[ident]
            if when >= inst.stop_at:
                continue  # this slot's instance stopped receiving: the slot is gone
            if head < rel or (head == rel and ptr < released[0][1]):
                idx = ptr
                ptr += 1
            else:
                idx = heappop(released)[1]
            finish = when + dur[idx]
            start[idx] = when
            end[idx] = finish
            attempts[idx] += 1
            inst.running[slot] = idx
            heappush(slots, (finish, ident, slot))
        self.ptr = ptr

    # -- the control plane --------------------------------------------------------------------------------

    def view(self, t: float, arrived: int) -> tuple[GroupView, int]:
        in_service = counted = warming = pending = 0
        for inst in self.alive:
            if inst.stopping:
                continue
            if inst.in_service_at <= t:
                in_service += 1
                if inst.warm_at <= t:
                    counted += 1
                else:
                    warming += 1
            else:
                pending += 1
        visible = arrived - self.ptr
        if self.released:
            visible += sum(1 for at, _ in self.released if at <= t)
        view = GroupView(visible, in_service, counted, warming, pending, self.desired)
        return view, len(self.alive)

    def idle(self, t: float) -> bool:
        """Nothing waits, nothing runs, nothing drains, and the group rests at its minimum."""
        if self.ptr < self.n or self.released or self.desired != self.s.min_size or self.excess:
            return False
        for inst in self.alive:
            if inst.stopping:
                return False
            for idx in inst.running:
                if idx >= 0 and self.end[idx] > t:
                    return False
        return True

    def resting_until(self, minute: int, t1: float, view: GroupView, horizon: int, limit: int) -> int:
        """The last minute up to which the group would sit unchanged (``minute`` itself: none).

        Resting means: nothing visible or to be released, the group at its minimum, every instance in
        service, warm and without work. Then every following minute that ends before the next arrival and
        before the next control event samples the very same view, and its data plane does nothing.
        """
        if view.visible or self.released or self.desired != self.s.min_size or view.pending or view.warming:
            return minute
        if self.excess:
            return minute
        for inst in self.alive:
            if inst.stopping:
                return minute
            for idx in inst.running:
                if idx >= 0 and self.end[idx] > t1:
                    return minute
        last = limit - 2
        if self.ptr < self.n:
            last = min(last, math.ceil(self.arr[self.ptr] / 60.0) - 2)  # its boundary must come first
        else:
            last = min(last, horizon - 2)  # the run ends at the first idle minute after the horizon
        if self.events:
            last = min(last, math.floor(self.events[0][0] / 60.0) - 1)
        return max(last, minute)

    def run(self) -> RunResult:
        s = self.s
        # The min_size instances are there from the start, split like the group would split them.
        t0 = initial_launch_time(s)
        want_on_demand = on_demand_target(s.min_size, s.on_demand_base, s.on_demand_percent)
        for number in range(s.min_size):
            self.launch(t0, spot=number >= want_on_demand)
        horizon = self.horizon_minutes
        limit = horizon + math.ceil(s.tail_days * 1440)
        boundaries = np.arange(1, limit + 1, dtype=np.float64) * 60.0
        arrived = np.searchsorted(self.arrival_array, boundaries, side="right").tolist()
        visible_series = np.zeros(limit, dtype=np.int32)
        desired_series = np.zeros(limit, dtype=np.int32)
        in_service_series = np.zeros(limit, dtype=np.int32)
        alive_series = np.zeros(limit, dtype=np.int32)
        minutes = limit
        minute = 0
        while minute < limit:
            t1 = (minute + 1) * 60.0
            self.advance(t1)
            view, alive = self.view(t1, arrived[minute])
            proposal = self.policy.decide(view)
            if proposal is not None:
                new = min(max(proposal, s.min_size), s.max_size)
                if new != self.desired:
                    self.actions.append(ScalingAction(t1, self.desired, new, self.policy.reason))
                    self.desired = new
                    self.excess = True  # reconcile below
            if self.excess:
                self.reconcile(t1)
            visible_series[minute] = view.visible
            desired_series[minute] = self.desired
            in_service_series[minute] = view.in_service
            alive_series[minute] = alive
            if minute + 1 >= horizon and self.idle(t1):
                minutes = minute + 1
                break
            last = self.resting_until(minute, t1, view, horizon, limit)
            if last > minute:
                # Nothing can happen before the next arrival or event: the same view every minute.
                self.policy.rest(view, last - minute)
                visible_series[minute + 1 : last + 1] = 0
                desired_series[minute + 1 : last + 1] = self.desired
                in_service_series[minute + 1 : last + 1] = view.in_service
                alive_series[minute + 1 : last + 1] = alive
                minute = last
            minute += 1
        end_time = minutes * 60.0
        return RunResult(
            settings=s,
            source=self.source,
            horizon_minutes=horizon,
            end_time=end_time,
            arrivals=self.arrival_array,
            durations=self.duration_array,
            start=np.asarray(self.start, dtype=np.float64),
            end=np.asarray(self.end, dtype=np.float64),
            attempts=np.asarray(self.attempts, dtype=np.int64),
            instances=self.instances,
            visible=visible_series[:minutes],
            desired=desired_series[:minutes],
            in_service=in_service_series[:minutes],
            alive=alive_series[:minutes],
            actions=self.actions,
            replacements=self.replacements,
            interruptions=self.interruptions,
            redone_seconds=self.redone,
        )
