"""BacklogPerInstance arithmetic and the PutMetricData entries built from it (no AWS involved)."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from app.backlog import BacklogReading, backlog_per_instance, metric_data
from app.config import BacklogSettings

GUIDE_TARGET = 30.0  # the guide's target tracking TargetValue
WHEN = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SETTINGS = BacklogSettings.from_env(
    {
        "SQS_QUEUE_URL": "https://sqs.ap-northeast-1.amazonaws.com/123456789012/files",
        "AUTOSCALING_GROUP_NAME": "cis-file-processor-asg-dev",
    }
)


def _reading(visible: int, in_service: int, desired: int | None = None) -> BacklogReading:
    return BacklogReading(
        visible_messages=visible,
        in_service_instances=in_service,
        desired_capacity=in_service if desired is None else desired,
        measured_at=WHEN,
    )


@pytest.mark.parametrize(
    ("visible", "in_service", "expected"),
    [
        (90, 3, 30.0),  # exactly the guide's target: the fleet is the right size
        (90, 1, 90.0),
        (1500, 10, 150.0),  # the AWS guide's example: 1500 messages, running capacity 10
        (0, 1, 0.0),
        (0, 3, 0.0),
        (1, 3, 1 / 3),  # not rounded: a fraction of a message per instance is still information
        (100, 3, 100 / 3),
    ],
)
def test_visible_messages_divided_by_in_service_instances(
    visible: int, in_service: int, expected: float
) -> None:
    assert backlog_per_instance(visible, in_service) == pytest.approx(expected)


def test_zero_instances_and_no_messages_publishes_zero_not_nothing() -> None:
    assert backlog_per_instance(0, 0) == 0.0


@pytest.mark.parametrize("visible", [1, 29, 30, 31, 90, 1000])
def test_zero_instances_publishes_the_backlog_one_first_instance_would_face(visible: int) -> None:
    value = backlog_per_instance(visible, 0)
    assert value == float(visible)
    assert value == backlog_per_instance(visible, 1)  # what the metric becomes once one instance serves
    # Proportional arithmetic from "one instance" asks for the fleet the backlog needs, never more.
    assert math.ceil(value / GUIDE_TARGET) == math.ceil(visible / GUIDE_TARGET)


def test_a_small_backlog_at_zero_instances_never_breaches_the_target() -> None:
    """Why the fleet template needs a scale-from-zero alarm: target tracking alone would wait forever."""
    reading = _reading(visible=30, in_service=0)
    assert reading.backlog_per_instance <= GUIDE_TARGET
    assert reading.needs_scale_from_zero


@pytest.mark.parametrize(
    ("visible", "in_service", "needed"),
    [(0, 0, False), (1, 0, True), (5, 1, False), (0, 3, False)],
)
def test_scale_from_zero_is_needed_only_with_work_and_no_instance(
    visible: int, in_service: int, needed: bool
) -> None:
    assert _reading(visible, in_service).needs_scale_from_zero is needed


def test_booting_instances_do_not_divide_the_backlog() -> None:
    # The guide divided by DesiredCapacity: 3 desired but 0 in service would have published 30, not 90.
    reading = _reading(visible=90, in_service=0, desired=3)
    assert reading.backlog_per_instance == 90.0
    assert reading.as_dict()["desired_capacity"] == 3


@pytest.mark.parametrize(("visible", "in_service"), [(-1, 1), (1, -1)])
def test_negative_counts_are_refused(visible: int, in_service: int) -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        backlog_per_instance(visible, in_service)


def test_metric_data_matches_the_guides_policy_and_carries_both_inputs() -> None:
    data = metric_data(SETTINGS, _reading(visible=90, in_service=3))

    by_name = {datum["MetricName"]: datum for datum in data}
    assert set(by_name) == {"BacklogPerInstance", "VisibleMessages", "InServiceInstances"}
    assert by_name["BacklogPerInstance"]["Value"] == 30.0
    assert by_name["VisibleMessages"]["Value"] == 90.0
    assert by_name["InServiceInstances"]["Value"] == 3.0
    for datum in data:
        assert datum["Dimensions"] == [
            {"Name": "AutoScalingGroupName", "Value": "cis-file-processor-asg-dev"}
        ]
        assert datum["Unit"] == "Count"
        assert datum["StorageResolution"] == 60
        assert datum["Timestamp"] == WHEN


def test_settings_default_to_the_guides_namespace_and_metric() -> None:
    assert (SETTINGS.namespace, SETTINGS.metric_name) == ("CISFileProcessor", "BacklogPerInstance")


def test_summary_says_when_only_the_scale_from_zero_alarm_can_help() -> None:
    assert "scale-from-zero" in _reading(visible=3, in_service=0).summary()
    assert "scale-from-zero" not in _reading(visible=3, in_service=1).summary()
    assert _reading(0, 0).summary(dry_run=True).endswith("dry run, nothing published")


def test_importing_the_module_builds_no_client() -> None:
    """The guide built its clients at import; a Lambda cold start must not, nor may the CLI's --help."""
    code = (
        "import boto3, boto3.session\n"
        "def refuse(*args, **kwargs):\n"
        "    raise SystemExit('a boto3 client was built at import')\n"
        "boto3.client = boto3.session.Session.client = refuse\n"
        "import app.backlog\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
