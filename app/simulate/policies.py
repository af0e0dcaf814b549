"""The scaling rules, as CloudWatch alarms over one-minute datapoints and the policies they invoke.

Once a minute the engine hands each policy a :class:`GroupView` (what CloudWatch and the group report at the
end of that minute) and gets back a proposed desired capacity, or ``None``. The engine clamps it to
``[min, max]`` ("A scaling adjustment can't change the capacity of your group above the maximum group size or
below the minimum group size": EC2 Auto Scaling user guide, step and simple scaling).

What is encoded, and where it comes from (the README's "Simulating" section has the full list with links):

* Target tracking creates two alarms: scale out after ``scale_out_periods`` (3) consecutive one-minute
  datapoints above the target, scale in after ``scale_in_periods`` (15) below a threshold "usually more than
  10 % lower" than the target (Application Auto Scaling user guide, how target tracking works; the 3 and 15
  are the long-standing alarm settings reported by users, e.g. aws/containers-roadmap#1208 and
  aws-samples/amazon-aurora-labs-for-mysql#3; AWS has tuned them automatically since late 2024).
* While an alarm stays in ALARM it invokes its policy again every period ("Except for Auto Scaling actions,
  the actions happen only on state transitions": CloudWatch user guide, alarm actions).
* Scale-out is proportional: new capacity = ceil(current capacity x metric / target). For backlog per instance
  whose denominator is the capacity, that is ceil(backlog / target): 90 messages -> 3 at 30, 15 -> 1.
* Current capacity excludes instances in warm-up; the desired capacity only ever grows from a scale-out, so
  repeated breaches while instances warm up make one activity, and a larger breach adds only the difference
  (EC2 Auto Scaling user guide, default instance warmup; step scaling).
* Scale-in is blocked while a scale-out is in progress, until the instances finish warming up (EC2 Auto
  Scaling user guide, scaling cooldowns: considerations), and removes capacity gradually: one instance per
  invocation, and only if removing it keeps the metric under the target (a modelling choice for "scales in
  more gradually"; AWS publishes no formula).
* Cooldowns apply to simple scaling only; target tracking and step scaling use warm-up instead (EC2 Auto
  Scaling user guide, scaling cooldowns). The guide's ``ScaleInCooldown``/``ScaleOutCooldown`` are
  Application Auto Scaling fields, not part of EC2 Auto Scaling's ``TargetTrackingConfiguration`` (API
  reference): nothing here uses them.
* At zero capacity a target tracking policy that sees demand adds "the minimum possible amount" (one) and
  then resumes proportional scaling (documented for Application Auto Scaling/ECS; assumed here).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

from app.simulate.settings import Settings

# The guide's step policy: steps relative to its (unnamed) alarm's threshold of 0 visible messages.
GUIDE_STEPS: tuple[tuple[float, float, int], ...] = ((0.0, 50.0, 1), (50.0, 100.0, 2), (100.0, math.inf, 3))
GUIDE_STEP_OUT_PERIODS = 1  # the guide names no alarm; "0-50 messages: +1 instance" read as 1 of 1 minute
GUIDE_STEP_IN_PERIODS = 5  # "Queue empty for 5 minutes: -1 instance"
_EPSILON = 1e-9  # 90 / 30 must be 3, not 3.0000000000000004 rounded up to 4


@dataclass(frozen=True, slots=True)
class GroupView:
    """What the policies can see at the end of a minute."""

    visible: int  # AWS/SQS ApproximateNumberOfMessagesVisible: not in flight, not delayed
    in_service: int  # AWS/AutoScaling GroupInServiceInstances: InService, warm or not
    counted: int  # current capacity for a policy: in service and past warm-up
    warming: int  # in service, still in warm-up
    pending: int  # launched, not yet InService
    desired: int  # the group's desired capacity


class Alarm:
    """A CloudWatch alarm over one-minute datapoints: ALARM after ``periods`` consecutive breaching ones.

    A missing datapoint (no data, e.g. ``m1 / m2`` with no instance in service) is not breaching.
    """

    __slots__ = ("periods", "streak")

    def __init__(self, periods: int) -> None:
        self.periods = periods
        self.streak = 0

    def observe(self, breaching: bool, count: int = 1) -> bool:
        """Take ``count`` identical datapoints; True while in ALARM."""
        self.streak = self.streak + count if breaching else 0
        return self.streak >= self.periods


def proportional_capacity(capacity: int, metric: float, target: float) -> int:
    """Target tracking's answer: ceil(capacity x metric / target); one instance to start from zero."""
    if capacity <= 0:
        return 1
    return math.ceil(capacity * metric / target - _EPSILON)


def capacity_for_backlog(visible: int, target: float) -> int:
    """The capacity target tracking settles on for a backlog: the guide's table (90 -> 3, 15 -> 1, 0 -> 0)."""
    return math.ceil(visible / target - _EPSILON) if visible > 0 else 0


def step_adjustment(metric: float, threshold: float, steps: tuple[tuple[float, float, int], ...]) -> int:
    """The step whose [lower, upper) interval, relative to the alarm threshold, holds the metric."""
    breach = metric - threshold
    for lower, upper, adjustment in steps:
        if lower <= breach < upper:
            return adjustment
    return 0


class Policy(ABC):
    """A scaling policy with the alarms it owns. ``reason`` names what acted last, for the report."""

    name: str

    def __init__(self) -> None:
        self.reason = ""

    @abstractmethod
    def decide(self, view: GroupView) -> int | None:
        """The desired capacity this minute's datapoints ask for, or None to leave it."""

    @abstractmethod
    def rest(self, view: GroupView, minutes: int) -> None:
        """Take ``minutes`` datapoints of an idle, unchanging group at its minimum (the engine skips them).

        Such a view never makes a policy propose a change that survives clamping (nothing is visible, and
        the group cannot shrink below its minimum), so only the alarms' streaks move: this is ``minutes``
        calls of :meth:`decide` in O(1).
        """


class _TargetTracking(Policy):
    """Target tracking on a backlog-per-instance metric; subclasses say how the metric is computed."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.target = settings.target
        self.low_threshold = settings.target * (1.0 - settings.scale_in_margin)
        self.high = Alarm(settings.scale_out_periods)
        self.low = Alarm(settings.scale_in_periods)

    @abstractmethod
    def metric(self, view: GroupView) -> float | None:
        """The datapoint this minute (None: no data)."""

    def track(self, view: GroupView) -> int | None:
        value = self.metric(view)
        high = self.high.observe(value is not None and value > self.target)
        low = self.low.observe(value is not None and value < self.low_threshold)
        return self.act(view, value, high=high, low=low)

    def rest_tracking(self, view: GroupView, minutes: int) -> None:
        value = self.metric(view)
        self.high.observe(value is not None and value > self.target, minutes)
        self.low.observe(value is not None and value < self.low_threshold, minutes)

    def act(self, view: GroupView, value: float | None, *, high: bool, low: bool) -> int | None:
        if value is None:
            return None
        if high:
            wanted = proportional_capacity(view.counted, value, self.target)
            if wanted > view.desired:
                self.reason = "target tracking: scale out"
                return wanted
            return None
        if low and view.warming == 0 and view.pending == 0 and view.desired > 0:
            wanted = proportional_capacity(view.counted, value, self.target) if view.counted else 0
            if wanted < view.desired:
                self.reason = "target tracking: scale in"
                return view.desired - 1
        return None


class TargetTrackingPolicy(_TargetTracking):
    """Our stack: metric math m1 / m2 (visible ÷ in-service) and the scale-from-zero step policy.

    ``m1 / m2`` has no datapoint at zero in-service instances, so target tracking cannot start the first one;
    the alarm ``IF(m1 > 0 AND m2 == 0, 1, 0) >= 1`` (1 of 1 minute) invokes a step policy adding one instance,
    with the same warm-up rule (provisioning/fleet.yaml). When both act, the larger capacity wins ("Amazon EC2
    Auto Scaling chooses the policy that provides the largest capacity": multiple dynamic scaling policies).
    """

    name = "target"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.zero = Alarm(1)

    def metric(self, view: GroupView) -> float | None:
        return view.visible / view.in_service if view.in_service > 0 else None

    def rest(self, view: GroupView, minutes: int) -> None:
        self.rest_tracking(view, minutes)
        self.zero.observe(view.visible > 0 and view.in_service == 0, minutes)

    def decide(self, view: GroupView) -> int | None:
        wanted = self.track(view)
        if self.zero.observe(view.visible > 0 and view.in_service == 0):
            from_zero = view.counted + 1
            if from_zero > max(view.desired, wanted or 0):
                self.reason = "scale-from-zero alarm: +1"
                return from_zero
        return wanted


class GuideLambdaPolicy(_TargetTracking):
    """The guide's Lambda: visible ÷ *desired* capacity (the whole backlog at 0), target tracking on it.

    Dividing by desired counts instances still booting as if they worked, so the metric drops as soon as
    the group *decides* to grow. At 0 desired the Lambda publishes the whole backlog, which the high alarm
    only sees above the target: 30 or fewer waiting files never start the first instance.
    """

    name = "guide-lambda"

    def metric(self, view: GroupView) -> float | None:
        return view.visible / view.desired if view.desired > 0 else float(view.visible)

    def decide(self, view: GroupView) -> int | None:
        return self.track(view)

    def rest(self, view: GroupView, minutes: int) -> None:
        self.rest_tracking(view, minutes)


class GuideStepPolicy(Policy):
    """The guide's step policy on queue depth: +1/+2/+3 above 0/50/100 messages, -1 after 5 empty minutes.

    The guide creates the two policies but no alarms; we give them the alarms its prose describes: visible
    messages > 0 for 1 minute (out) and <= 0 for 5 minutes (in). Step adjustments apply to current capacity
    (warming instances excluded), so breaches during warm-up in the same step make one activity.
    """

    name = "step"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.out = Alarm(GUIDE_STEP_OUT_PERIODS)
        self.into = Alarm(GUIDE_STEP_IN_PERIODS)

    def rest(self, view: GroupView, minutes: int) -> None:
        self.out.observe(view.visible > 0, minutes)
        self.into.observe(view.visible <= 0, minutes)

    def decide(self, view: GroupView) -> int | None:
        out = self.out.observe(view.visible > 0)
        empty = self.into.observe(view.visible <= 0)
        if out:
            wanted = view.counted + step_adjustment(float(view.visible), 0.0, GUIDE_STEPS)
            if wanted > view.desired:
                self.reason = "step: scale out"
                return wanted
            return None
        if empty and view.warming == 0 and view.pending == 0 and view.desired > 0:
            self.reason = "step: scale in"
            return view.desired - 1
        return None


def make_policy(settings: Settings) -> Policy:
    if settings.policy == "target":
        return TargetTrackingPolicy(settings)
    if settings.policy == "guide-lambda":
        return GuideLambdaPolicy(settings)
    return GuideStepPolicy(settings)
