"""The scaling rules of `filefleet simulate`, one minute at a time (no engine involved)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.simulate.fleet import on_demand_target
from app.simulate.policies import (
    GUIDE_STEPS,
    Alarm,
    GroupView,
    GuideLambdaPolicy,
    GuideStepPolicy,
    TargetTrackingPolicy,
    capacity_for_backlog,
    make_policy,
    proportional_capacity,
    step_adjustment,
)
from app.simulate.settings import POLICIES, Settings

GUIDE = Settings()  # the guide's target 30, warm-up 180, 0..3


def view(
    visible: int,
    in_service: int = 0,
    *,
    counted: int | None = None,
    warming: int = 0,
    pending: int = 0,
    desired: int | None = None,
) -> GroupView:
    counted = in_service - warming if counted is None else counted
    desired = in_service + pending if desired is None else desired
    return GroupView(visible, in_service, counted, warming, pending, desired)


@pytest.mark.parametrize(("visible", "expected"), [(90, 3), (60, 2), (15, 1), (0, 0), (30, 1), (31, 2)])
def test_the_guides_scaling_examples(visible: int, expected: int) -> None:
    # "90 messages -> 3 instances, 60 -> 2, 15 -> 1 (15/1 = 15, rounds up), 0 -> 0" at target 30.
    assert capacity_for_backlog(visible, 30.0) == expected


@pytest.mark.parametrize(
    ("capacity", "metric", "expected"),
    [(1, 90.0, 3), (3, 30.0, 3), (2, 45.0, 3), (1, 15.0, 1), (4, 7.5, 1), (0, 500.0, 1)],
)
def test_proportional_scale_out(capacity: int, metric: float, expected: int) -> None:
    assert proportional_capacity(capacity, metric, 30.0) == expected


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=1, max_value=50))
def test_proportional_capacity_is_the_backlog_rule_when_the_metric_divides_by_capacity(
    visible: int, capacity: int
) -> None:
    assert proportional_capacity(capacity, visible / capacity, 30.0) == capacity_for_backlog(visible, 30.0)


@pytest.mark.parametrize(("visible", "expected"), [(1, 1), (49, 1), (50, 2), (99, 2), (100, 3), (5000, 3)])
def test_the_guides_step_adjustments(visible: int, expected: int) -> None:
    assert step_adjustment(float(visible), 0.0, GUIDE_STEPS) == expected


@pytest.mark.parametrize(
    ("desired", "base", "percent", "expected"),
    [(0, 0, 30, 0), (1, 0, 30, 1), (2, 0, 30, 1), (3, 0, 30, 1), (4, 0, 30, 2), (10, 0, 30, 3), (3, 2, 0, 2)],
)
def test_on_demand_share_rounds_up(desired: int, base: int, percent: float, expected: int) -> None:
    # The guide: "3 instances = 2 Spot + 1 On-Demand"; our reading makes a lone instance On-Demand.
    assert on_demand_target(desired, base, percent) == expected


def test_an_alarm_needs_consecutive_breaches() -> None:
    alarm = Alarm(3)
    assert [alarm.observe(b) for b in (True, True, False, True, True, True, True)] == [
        False,
        False,
        False,
        False,
        False,
        True,
        True,
    ]


def test_target_tracking_scales_out_after_three_minutes_proportionally() -> None:
    policy = TargetTrackingPolicy(GUIDE)
    busy = view(90, 1, desired=1)
    assert [policy.decide(busy) for _ in range(3)] == [None, None, 3]
    assert policy.reason == "target tracking: scale out"


def test_scale_from_zero_adds_one_instance_at_once_and_only_one_while_it_boots() -> None:
    policy = TargetTrackingPolicy(GUIDE)
    assert policy.decide(view(500, 0, desired=0)) == 1  # 1 of 1 minute; m1/m2 itself has no datapoint
    assert policy.reason == "scale-from-zero alarm: +1"
    for _ in range(5):  # pending: the alarm keeps firing, current capacity 0 + 1 = desired: no new activity
        assert policy.decide(view(500, 0, pending=1, desired=1)) is None


def test_breaches_while_instances_warm_up_make_one_activity() -> None:
    policy = TargetTrackingPolicy(GUIDE)
    for _ in range(2):
        policy.decide(view(60, 1, desired=1))
    assert policy.decide(view(60, 1, desired=1)) == 2
    # One instance warming: current capacity 1, metric 60/2 = 30: nothing; the backlog grows to 120 (metric
    # 60): 1 x 60 / 30 = 2 = desired, still nothing until the new instance counts.
    assert policy.decide(view(60, 2, warming=1, desired=2)) is None
    for _ in range(3):
        assert policy.decide(view(120, 2, warming=1, desired=2)) is None
    assert policy.decide(view(120, 2, desired=2)) == 4  # warm now: 2 x 60 / 30


def test_scale_in_waits_for_fifteen_low_minutes_and_removes_one_at_a_time() -> None:
    policy = TargetTrackingPolicy(GUIDE)
    idle = view(0, 3, desired=3)
    decisions = [policy.decide(idle) for _ in range(17)]
    assert decisions[:14] == [None] * 14
    assert decisions[14:] == [2, 2, 2]  # each minute in ALARM asks for one less than the current desired


def test_scale_in_is_blocked_while_instances_warm_up() -> None:
    policy = TargetTrackingPolicy(GUIDE)
    for _ in range(20):
        assert policy.decide(view(0, 3, warming=1, desired=3)) is None
    assert policy.decide(view(0, 3, desired=3)) == 2


def test_scale_in_keeps_capacity_that_the_backlog_still_needs() -> None:
    policy = TargetTrackingPolicy(GUIDE)
    # 26 per instance is under the low threshold (27) but removing one would make 39 > 30: no scale-in.
    for _ in range(30):
        assert policy.decide(view(52, 2, desired=2)) is None


def test_the_guides_lambda_cannot_start_the_first_instance_for_thirty_files_or_fewer() -> None:
    policy = GuideLambdaPolicy(GUIDE)
    for _ in range(60):
        assert policy.decide(view(30, 0, desired=0)) is None  # metric 30 is not above the target 30
    policy = GuideLambdaPolicy(GUIDE)
    assert [policy.decide(view(31, 0, desired=0)) for _ in range(3)] == [None, None, 1]


def test_the_guides_lambda_divides_by_desired_capacity() -> None:
    policy = GuideLambdaPolicy(GUIDE)
    # 90 visible, desired 3 of which only 1 is in service: the Lambda reports 30, "on target".
    for _ in range(5):
        assert policy.decide(view(90, 1, pending=2, desired=3)) is None
    assert policy.metric(view(90, 1, pending=2, desired=3)) == 30.0


def test_the_guides_step_policy() -> None:
    policy = GuideStepPolicy(GUIDE)
    assert policy.decide(view(120, 0, desired=0)) == 3  # 100+ messages: +3, one minute above 0
    assert policy.decide(view(120, 0, pending=3, desired=3)) is None  # still 0 + 3 = desired
    empty = view(0, 3, desired=3)
    assert [policy.decide(empty) for _ in range(6)] == [None, None, None, None, 2, 2]


idle_views = st.builds(
    lambda size: view(0, size, desired=size),
    st.integers(min_value=0, max_value=3),
)
busy_views = st.builds(
    lambda visible, in_service, warming: view(visible, in_service, warming=min(warming, in_service)),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=4),
    st.integers(min_value=0, max_value=4),
)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(POLICIES),
    st.lists(busy_views, max_size=20),
    idle_views,
    st.integers(min_value=1, max_value=400),
    st.lists(busy_views, min_size=1, max_size=20),
)
def test_resting_is_the_same_as_deciding_every_idle_minute(
    name: str, before: list[GroupView], idle: GroupView, minutes: int, after: list[GroupView]
) -> None:
    config = Settings(policy=name, min_size=idle.desired, max_size=max(3, idle.desired))
    skipping, stepping = make_policy(config), make_policy(config)
    for each in before:
        skipping.decide(each)
        stepping.decide(each)
    skipping.rest(idle, minutes)
    for _ in range(minutes):
        proposal = stepping.decide(idle)
        # At its minimum with nothing visible, no policy asks for a change that survives the clamping.
        assert proposal is None or min(max(proposal, config.min_size), config.max_size) == idle.desired
    assert [skipping.decide(each) for each in after] == [stepping.decide(each) for each in after]
