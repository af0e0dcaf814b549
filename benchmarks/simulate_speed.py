"""Simulation speed: a month of traffic through ``filefleet simulate``'s engine, against a per-message loop.

Claims measured (both engines run in this process, on the same inputs):

- ``month_sim_seconds``: wall time of :func:`app.simulate.engine.simulate` for 30 days at one-minute steps
  with 100,000 files (the guide's "100K files/month"; daily batches by default), median of ``--rounds``.
  Target < 2.
- ``speedup_vs_naive``: the wall time of a straightforward discrete-event loop written below, which follows
  every message as an object through arrival, visibility, start and finish events on one event heap (and an
  event for every minute tick), divided by the engine's. Same model, same seed: it reuses the model's inputs
  (arrivals, processing times, Spot interruption draws) and the policy module (the scaling rules are not
  what is compared), and re-implements the queue, the slots, drains, the group's reconciliation and billing
  inputs independently.
- ``results_equal``: the two runs agree on every file's start, end and number of attempts (to 1e-6 s), on
  the per-minute series (visible, desired, in service, alive), the scaling actions, and every summary figure.
  A disagreement makes the exit status 1: the speed of a wrong answer means nothing.

Run: ``.venv/bin/python benchmarks/simulate_speed.py [--files N] [--days D] [--arrivals daily]``. The last
line printed is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # from anywhere, like the other benchmarks

from app.simulate.arrivals import Arrivals, make_arrivals
from app.simulate.engine import (
    RunResult,
    ScalingAction,
    drain_deadline,
    draw_durations,
    initial_launch_time,
    interruption_delay,
    simulate,
)
from app.simulate.fleet import INF, Instance, on_demand_target
from app.simulate.policies import GroupView, make_policy
from app.simulate.report import summarize
from app.simulate.settings import PENDING_SECONDS, SPOT_NOTICE_SECONDS, Settings

TARGET_MONTH_SECONDS = 2.0
TOLERANCE_SECONDS = 1e-6

# Event phases at one instant: messages and slots become available first, then the minute tick (the control
# plane samples what the minute ended with), then Spot notices and terminations; files start after them all.
AVAILABLE, TICK, CONTROL = 0, 1, 2
ARRIVAL, RELEASED, SLOT_FREE, FINISH, MINUTE, NOTICE, KILL, SHUTDOWN = range(8)


class Message:
    __slots__ = ("arrival", "attempts", "done", "duration", "end", "idx", "start")

    def __init__(self, idx: int, arrival: float, duration: float) -> None:
        self.idx = idx
        self.arrival = arrival
        self.duration = duration
        self.start = math.nan
        self.end = math.nan
        self.attempts = 0
        self.done = False


class NaiveSimulation:
    """One event heap, one object per message, one event per arrival, start, finish and minute."""

    def __init__(self, settings: Settings, arrivals: Arrivals) -> None:
        streams = np.random.SeedSequence(settings.seed).spawn(3)
        durations = draw_durations(settings, arrivals.times.size, np.random.default_rng(streams[1]))
        self.rng = np.random.default_rng(streams[2])
        self.s = settings
        self.arrivals = arrivals
        self.durations = durations
        self.messages = [
            Message(i, float(a), float(d))
            for i, (a, d) in enumerate(zip(arrivals.times, durations, strict=True))
        ]
        self.events: list[tuple[float, int, int, int, int, int]] = []
        self.seq = 0
        self.visible: list[tuple[float, int]] = []  # (visible since, message)
        self.idle_slots: list[tuple[float, int, int]] = []  # (idle since, instance, slot)
        self.instances: list[Instance] = []
        self.policy = make_policy(settings)
        self.desired = settings.min_size
        self.actions: list[ScalingAction] = []
        self.replacements = 0
        self.interruptions = 0
        self.redone = 0.0
        self.not_yet_visible = len(self.messages)  # arrivals and releases still to come
        self.series: dict[str, list[int]] = {"visible": [], "desired": [], "in_service": [], "alive": []}

    def push(self, t: float, phase: int, kind: int, a: int = 0, b: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, phase, self.seq, kind, a, b))

    # -- the group

    def launch(self, t: float, spot: bool) -> None:
        notice = t + PENDING_SECONDS + interruption_delay(self.s, self.rng) if spot else INF
        inst = Instance(len(self.instances), spot=spot, launch=t, settings=self.s, notice_at=notice)
        self.instances.append(inst)
        for slot in range(self.s.concurrency):
            self.push(inst.ready_at, AVAILABLE, SLOT_FREE, inst.id, slot)
        if notice < INF:
            self.push(notice, CONTROL, NOTICE, inst.id)

    def counted_instances(self) -> list[Instance]:
        return [i for i in self.instances if i.kill_at == INF and not i.stopping]

    def reconcile(self, t: float, replacing: bool = False) -> None:
        while True:
            active = self.counted_instances()
            on_demand = len([i for i in active if not i.spot])
            want = on_demand_target(self.desired, self.s.on_demand_base, self.s.on_demand_percent)
            if len(active) < self.desired:
                self.launch(t, spot=on_demand >= want)
                if replacing:
                    self.replacements += 1
            elif len(active) > self.desired:
                candidates = [i for i in active if not self.protected(i, t)]
                if not candidates:
                    return
                spot = on_demand <= want
                same = [i for i in candidates if i.spot == spot]
                self.stop(same[0] if same else candidates[0], t)
            else:
                return

    def protected(self, inst: Instance, t: float) -> bool:
        if not self.s.scale_in_protection:
            return False
        for idx in inst.running:
            if idx >= 0 and self.messages[idx].end > t - self.s.protection_idle_seconds:
                return True
        return False

    def stop(self, inst: Instance, t: float) -> None:
        inst.stopping = True
        kill = self.drain(inst, t, t + drain_deadline(self.s))
        self.push(kill, CONTROL, KILL, inst.id)

    def drain(self, inst: Instance, at: float, deadline: float) -> float:
        inst.stop_at = min(inst.stop_at, at)
        last = at
        released = False
        for slot in range(self.s.concurrency):
            idx = inst.running[slot]
            if idx < 0:
                continue
            msg = self.messages[idx]
            if not (msg.end > at):
                continue
            if msg.end <= deadline:
                last = max(last, msg.end)
                continue
            self.redone += deadline - msg.start
            visible_at = deadline
            if self.s.worker == "guide":
                visible_at = max(deadline, msg.start + self.s.visibility_timeout)
            msg.start = math.nan
            msg.end = math.nan
            inst.running[slot] = -1
            self.not_yet_visible += 1
            self.push(visible_at, AVAILABLE, RELEASED, idx)
            released = True
        return deadline if released else last

    # -- events

    def handle(self, t: float, kind: int, a: int, b: int) -> None:
        if kind in (ARRIVAL, RELEASED):
            self.not_yet_visible -= 1
            heapq.heappush(self.visible, (t, a))
        elif kind == SLOT_FREE:
            heapq.heappush(self.idle_slots, (t, a, b))
        elif kind == FINISH:
            msg = self.messages[a]
            if msg.end == t:  # not released meanwhile
                msg.done = True
            heapq.heappush(self.idle_slots, (t, b >> 16, b & 0xFFFF))
        elif kind == MINUTE:
            self.tick(t)
        else:
            self.control(t, kind, self.instances[a])

    def control(self, t: float, kind: int, inst: Instance) -> None:
        if inst.kill_at != INF:
            return
        if kind == KILL:
            inst.kill_at = t
            if not inst.stopping:
                inst.stopping = True
                self.reconcile(t, replacing=True)
        elif kind == SHUTDOWN:
            self.drain(inst, t, t)
            self.control(t, KILL, inst)
        elif not inst.stopping:  # NOTICE
            inst.interrupted = True
            self.interruptions += 1
            if self.s.rebalance:
                self.stop(inst, t)
                self.reconcile(t, replacing=True)
            elif self.s.worker == "filefleet":
                self.drain(inst, t, t + self.s.drain_seconds)
                self.push(t + SPOT_NOTICE_SECONDS, CONTROL, KILL, inst.id)
            else:
                self.push(t + SPOT_NOTICE_SECONDS, CONTROL, SHUTDOWN, inst.id)

    def dispatch(self, t: float) -> None:
        while self.visible and self.idle_slots:
            _, ident, slot = heapq.heappop(self.idle_slots)
            inst = self.instances[ident]
            if t >= inst.stop_at:
                continue
            _, idx = heapq.heappop(self.visible)
            msg = self.messages[idx]
            msg.start = t
            msg.end = t + msg.duration
            msg.attempts += 1
            inst.running[slot] = idx
            self.push(msg.end, AVAILABLE, FINISH, idx, (ident << 16) | slot)

    # -- the minute

    def tick(self, t: float) -> None:
        in_service = counted = warming = pending = 0
        alive = 0
        for inst in self.instances:
            if inst.kill_at != INF:
                continue
            alive += 1
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
        view = GroupView(len(self.visible), in_service, counted, warming, pending, self.desired)
        proposal = self.policy.decide(view)
        if proposal is not None:
            new = min(max(proposal, self.s.min_size), self.s.max_size)
            if new != self.desired:
                self.actions.append(ScalingAction(t, self.desired, new, self.policy.reason))
                self.desired = new
        if len(self.counted_instances()) != self.desired:
            self.reconcile(t)
        self.series["visible"].append(view.visible)
        self.series["desired"].append(self.desired)
        self.series["in_service"].append(in_service)
        self.series["alive"].append(alive)
        minute = len(self.series["visible"])
        if minute >= self.limit or (minute >= self.arrivals.horizon_minutes and self.idle(t)):
            self.finished_at = t
            return
        self.push(t + 60.0, TICK, MINUTE)

    def idle(self, t: float) -> bool:
        if self.not_yet_visible or self.visible or self.desired != self.s.min_size:
            return False
        if len(self.counted_instances()) != self.desired:
            return False
        for inst in self.instances:
            if inst.kill_at != INF and inst.kill_at <= t:
                continue
            if inst.kill_at == INF and inst.stopping:
                return False
            for idx in inst.running:
                if idx >= 0 and self.messages[idx].end > t:
                    return False
        return True

    def run(self) -> RunResult:
        s = self.s
        self.limit = self.arrivals.horizon_minutes + math.ceil(s.tail_days * 1440)
        self.finished_at = -1.0
        want = on_demand_target(s.min_size, s.on_demand_base, s.on_demand_percent)
        t0 = initial_launch_time(s)
        for number in range(s.min_size):
            self.launch(t0, spot=number >= want)
        for msg in self.messages:
            self.push(msg.arrival, AVAILABLE, ARRIVAL, msg.idx)
        self.push(60.0, TICK, MINUTE)
        while self.events and self.finished_at < 0:
            now = self.events[0][0]
            while self.events and self.events[0][0] == now and self.finished_at < 0:
                t, _, _, kind, a, b = heapq.heappop(self.events)
                self.handle(t, kind, a, b)
            if self.finished_at < 0:
                self.dispatch(now)
        end_time = self.finished_at
        for inst in self.instances:  # instances terminated after the end are billed to the end
            if inst.kill_at > end_time:
                inst.kill_at = INF
        return RunResult(
            settings=s,
            source=self.arrivals.source,
            horizon_minutes=self.arrivals.horizon_minutes,
            end_time=end_time,
            arrivals=self.arrivals.times,
            durations=self.durations,
            start=np.array([m.start for m in self.messages]),
            end=np.array([m.end for m in self.messages]),
            attempts=np.array([m.attempts for m in self.messages], dtype=np.int64),
            instances=self.instances,
            visible=np.array(self.series["visible"], dtype=np.int32),
            desired=np.array(self.series["desired"], dtype=np.int32),
            in_service=np.array(self.series["in_service"], dtype=np.int32),
            alive=np.array(self.series["alive"], dtype=np.int32),
            actions=self.actions,
            replacements=self.replacements,
            interruptions=self.interruptions,
            redone_seconds=self.redone,
        )


def naive_simulate(settings: Settings, arrivals: Arrivals | None = None) -> RunResult:
    if arrivals is None:
        streams = np.random.SeedSequence(settings.seed).spawn(3)
        arrivals = make_arrivals(settings, np.random.default_rng(streams[0]))
    return NaiveSimulation(settings, arrivals).run()


def differences(fast: RunResult, naive: RunResult) -> list[str]:
    """What differs between the two runs (empty: the same result)."""
    out = []
    if fast.start.shape != naive.start.shape:
        return [f"file counts differ: {fast.start.shape} vs {naive.start.shape}"]
    for name in ("start", "end"):
        a, b = getattr(fast, name), getattr(naive, name)
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        if not np.array_equal(nan_a, nan_b):
            out.append(f"{name}: {int((nan_a != nan_b).sum())} files finished in one run and not the other")
            continue
        gap = float(np.max(np.abs(a[~nan_a] - b[~nan_b]), initial=0.0))
        if gap > TOLERANCE_SECONDS:
            out.append(f"{name}: up to {gap:.6f} s apart")
    if not np.array_equal(fast.attempts, naive.attempts):
        out.append(f"attempts differ for {int((fast.attempts != naive.attempts).sum())} files")
    for name in ("visible", "desired", "in_service", "alive"):
        if not np.array_equal(getattr(fast, name), getattr(naive, name)):
            out.append(f"per-minute {name} series differ")
    if [(a.time, a.before, a.after) for a in fast.actions] != [
        (a.time, a.before, a.after) for a in naive.actions
    ]:
        out.append("scaling actions differ")
    a_sum, b_sum = summarize(fast), summarize(naive)
    for key in a_sum:
        if a_sum[key] != b_sum[key]:
            out.append(f"summary {key}: {a_sum[key]} vs {b_sum[key]}")
    return out


def timed(function: Any, *args: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - began, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--files", type=int, default=100_000, help="files over the horizon (default 100000)")
    parser.add_argument("--days", type=float, default=30.0, help="horizon in days (default 30)")
    parser.add_argument("--arrivals", default="daily", help="traffic profile (default daily)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="engine runs; the median is reported (default 5)"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    settings = Settings(arrivals=args.arrivals, files=args.files, days=args.days, seed=args.seed)
    print(
        f"{args.files:,} files, {args.days:g} days of one-minute steps, {args.arrivals} arrivals, "
        f"seed {args.seed}; engine x{args.rounds}, naive x1",
        flush=True,
    )
    engine_times = []
    fast: RunResult | None = None
    for _ in range(args.rounds):
        seconds, fast = timed(simulate, settings)
        engine_times.append(seconds)
    assert fast is not None
    naive_seconds, naive = timed(naive_simulate, settings)
    engine_seconds = statistics.median(engine_times)
    problems = differences(fast, naive)
    summary = summarize(fast)
    print()
    print(f"{'engine':<28} {'seconds':>8}  notes")
    print("-" * 72)
    print(
        f"{'filefleet simulate engine':<28} {engine_seconds:>8.3f}  median of "
        + ", ".join(f"{t:.3f}" for t in engine_times)
    )
    print(f"{'naive per-message loop':<28} {naive_seconds:>8.3f}  one run")
    print()
    print(
        f"simulated {summary['simulated_days']} days ({fast.visible.size:,} minutes), "
        f"{summary['files_done']:,} files done, {summary['launches']} launches, "
        f"{summary['interruptions']} Spot interruptions, "
        f"{summary['scale_out_actions'] + summary['scale_in_actions']} scaling actions, "
        f"${summary['cost_total']:,.2f}"
    )
    if problems:
        print("FAIL the two engines disagree:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
    else:
        print("the two engines agree on every file, every minute and every figure")
    result: dict[str, Any] = {
        "month_sim_seconds": round(engine_seconds, 3),
        "naive_seconds": round(naive_seconds, 3),
        "speedup_vs_naive": round(naive_seconds / engine_seconds, 2),
        "results_equal": not problems,
        "engine_rounds_seconds": [round(t, 3) for t in engine_times],
        "files": args.files,
        "days": args.days,
        "arrivals": args.arrivals,
        "minutes_simulated": int(fast.visible.size),
        "seed": args.seed,
        "targets_met": {"month_sim_seconds": engine_seconds < TARGET_MONTH_SECONDS},
    }
    if engine_seconds >= TARGET_MONTH_SECONDS:
        print(f"target missed: month_sim_seconds = {engine_seconds:.3f} (target < {TARGET_MONTH_SECONDS})")
    sys.stdout.flush()
    print(f"RESULT {json.dumps(result)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
