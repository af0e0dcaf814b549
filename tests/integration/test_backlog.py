"""The backlog publisher against moto server over real HTTP: SQS depth, Auto Scaling group, CloudWatch."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from app import backlog
from app.backlog import BacklogReading, BacklogSourceMissing, run
from app.config import BacklogSettings
from tests.support.cli import run_filefleet

pytestmark = pytest.mark.integration

REGION = "us-east-1"
NAMESPACE = "CISFileProcessor"


@dataclass(frozen=True)
class Cloud:
    """Clients a test arranges with, and the session the code under test builds its own clients from."""

    sqs: Any
    ec2: Any
    autoscaling: Any
    cloudwatch: Any
    session: boto3.session.Session


@pytest.fixture
def cloud(aws: str, sqs: Any) -> Cloud:
    return Cloud(
        sqs=sqs,
        ec2=boto3.client("ec2", region_name=REGION),
        autoscaling=boto3.client("autoscaling", region_name=REGION),
        cloudwatch=boto3.client("cloudwatch", region_name=REGION),
        session=boto3.session.Session(region_name=REGION),
    )


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The Lambda handler configures the root logger: give it back as it was."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], root.level = saved
    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def _queue(cloud: Cloud, *, visible: int, in_flight: int = 0) -> str:
    """A queue holding ``visible`` receivable messages and ``in_flight`` received, not yet deleted ones."""
    sqs = cloud.sqs
    url: str = sqs.create_queue(QueueName=f"backlog-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    bodies = [f"file-{i}" for i in range(visible + in_flight)]
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")
    taken = 0
    while taken < in_flight:  # a worker holding these: they must not count as waiting work
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=min(10, in_flight - taken), VisibilityTimeout=600
        ).get("Messages", [])
        assert batch
        taken += len(batch)
    return url


def _group(cloud: Cloud, *, desired: int) -> str:
    name = f"cis-file-processor-asg-{uuid.uuid4().hex[:10]}"
    template = f"lt-{name}"
    cloud.ec2.create_launch_template(
        LaunchTemplateName=template,
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.medium"},
    )
    cloud.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": template},
        MinSize=0,
        MaxSize=10,
        DesiredCapacity=desired,
        AvailabilityZones=[f"{REGION}a"],
    )
    return name


def _instances(cloud: Cloud, group: str) -> list[dict[str, Any]]:
    groups = cloud.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ]
    instances: list[dict[str, Any]] = groups[0]["Instances"]
    return instances


def _settings(queue_url: str, group: str) -> BacklogSettings:
    return BacklogSettings.from_env({"SQS_QUEUE_URL": queue_url, "AUTOSCALING_GROUP_NAME": group})


def _published(cloud: Cloud, group: str, metric: str, reading: BacklogReading) -> list[float]:
    """Every value CloudWatch holds for ``metric`` of ``group`` around the reading."""
    datapoints = cloud.cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=metric,
        Dimensions=[{"Name": "AutoScalingGroupName", "Value": group}],
        StartTime=reading.measured_at - timedelta(minutes=5),
        EndTime=reading.measured_at + timedelta(minutes=5),
        Period=60,
        Statistics=["Average", "SampleCount"],
        Unit="Count",
    )["Datapoints"]
    return [point["Average"] for point in datapoints]


@pytest.mark.parametrize(
    ("desired", "expected_backlog"),
    [
        (0, 12.0),  # no instance: the backlog one first instance would face
        (1, 12.0),
        (3, 4.0),
    ],
)
def test_reading_divides_visible_messages_by_in_service_instances_and_reaches_cloudwatch(
    cloud: Cloud,
    desired: int,
    expected_backlog: float,
) -> None:
    queue_url = _queue(cloud, visible=12, in_flight=5)
    group = _group(cloud, desired=desired)

    reading = run(_settings(queue_url, group), cloud.session, dry_run=False)

    assert (reading.visible_messages, reading.in_service_instances) == (12, desired)
    assert reading.backlog_per_instance == expected_backlog
    assert reading.needs_scale_from_zero is (desired == 0)
    assert _published(cloud, group, "BacklogPerInstance", reading) == [expected_backlog]
    assert _published(cloud, group, "VisibleMessages", reading) == [12.0]
    assert _published(cloud, group, "InServiceInstances", reading) == [float(desired)]


def test_empty_queue_and_empty_group_publish_zero(cloud: Cloud) -> None:
    group = _group(cloud, desired=0)

    reading = run(_settings(_queue(cloud, visible=0), group), cloud.session, dry_run=False)

    assert reading.backlog_per_instance == 0.0
    assert not reading.needs_scale_from_zero
    assert _published(cloud, group, "BacklogPerInstance", reading) == [0.0]


def test_an_instance_in_standby_does_not_count(cloud: Cloud) -> None:
    group = _group(cloud, desired=3)
    cloud.autoscaling.enter_standby(
        AutoScalingGroupName=group,
        InstanceIds=[_instances(cloud, group)[0]["InstanceId"]],
        ShouldDecrementDesiredCapacity=True,
    )
    assert sorted(i["LifecycleState"] for i in _instances(cloud, group)) == [
        "InService",
        "InService",
        "Standby",
    ]

    reading = run(_settings(_queue(cloud, visible=10), group), cloud.session, dry_run=False)

    assert reading.in_service_instances == 2
    assert reading.backlog_per_instance == 5.0
    assert _published(cloud, group, "BacklogPerInstance", reading) == [5.0]


def test_dry_run_reads_but_publishes_nothing(cloud: Cloud) -> None:
    group = _group(cloud, desired=1)

    reading = run(_settings(_queue(cloud, visible=3), group), cloud.session, dry_run=True)

    assert (reading.visible_messages, reading.in_service_instances) == (3, 1)
    metrics = cloud.cloudwatch.list_metrics(
        Namespace=NAMESPACE, Dimensions=[{"Name": "AutoScalingGroupName", "Value": group}]
    )["Metrics"]
    assert metrics == []


def test_a_missing_group_is_a_clear_configuration_error(cloud: Cloud) -> None:
    group = f"no-such-group-{uuid.uuid4().hex[:6]}"

    with pytest.raises(
        BacklogSourceMissing, match=f"AUTOSCALING_GROUP_NAME='{group}': no such Auto Scaling group"
    ):
        run(_settings(_queue(cloud, visible=1), group), cloud.session, dry_run=False)

    dimensions = [{"Name": "AutoScalingGroupName", "Value": group}]
    assert cloud.cloudwatch.list_metrics(Dimensions=dimensions)["Metrics"] == []


def test_a_missing_queue_is_a_clear_configuration_error(cloud: Cloud) -> None:
    queue_url = _queue(cloud, visible=0)
    cloud.sqs.delete_queue(QueueUrl=queue_url)

    with pytest.raises(BacklogSourceMissing, match=r"SQS_QUEUE_URL=.*: no such queue"):
        run(_settings(queue_url, _group(cloud, desired=1)), cloud.session, dry_run=False)


def test_lambda_handler_reads_its_settings_from_the_environment(
    cloud: Cloud,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    root_logging: None,
) -> None:
    group = _group(cloud, desired=3)
    monkeypatch.setenv("SQS_QUEUE_URL", _queue(cloud, visible=90, in_flight=2))
    monkeypatch.setenv("AUTOSCALING_GROUP_NAME", group)
    monkeypatch.setattr(backlog, "_lambda_clients", {})

    result = backlog.lambda_handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)
    first_clients = backlog._lambda_clients[REGION]
    again = backlog.lambda_handler({}, None)

    assert json.loads(json.dumps(result)) == result, "the Lambda must return a JSON-able value"
    assert result["backlog_per_instance"] == 30.0
    assert (result["visible_messages"], result["in_service_instances"]) == (90, 3)
    assert (result["namespace"], result["metric_name"], result["published"]) == (
        NAMESPACE,
        "BacklogPerInstance",
        True,
    )
    assert again["backlog_per_instance"] == 30.0
    assert backlog._lambda_clients[REGION] is first_clients, (
        "clients are built at the first call, then reused"
    )
    reading = BacklogReading(
        visible_messages=90,
        in_service_instances=3,
        desired_capacity=3,
        measured_at=datetime.fromisoformat(result["measured_at"]),
    )
    assert _published(cloud, group, "BacklogPerInstance", reading) == [30.0]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in lines] == ["backlog.published", "backlog.published"]
    assert lines[0]["backlog_per_instance"] == 30.0
    assert lines[0]["auto_scaling_group_name"] == group


def test_lambda_handler_dry_run_event_publishes_nothing(
    cloud: Cloud,
    monkeypatch: pytest.MonkeyPatch,
    root_logging: None,
) -> None:
    group = _group(cloud, desired=1)
    monkeypatch.setenv("SQS_QUEUE_URL", _queue(cloud, visible=4))
    monkeypatch.setenv("AUTOSCALING_GROUP_NAME", group)
    monkeypatch.setattr(backlog, "_lambda_clients", {})

    result = backlog.lambda_handler({"dry_run": True}, None)

    assert (result["backlog_per_instance"], result["published"]) == (4.0, False)
    dimensions = [{"Name": "AutoScalingGroupName", "Value": group}]
    assert cloud.cloudwatch.list_metrics(Namespace=NAMESPACE, Dimensions=dimensions)["Metrics"] == []


def test_lambda_handler_logs_one_json_line_and_raises_on_a_missing_group(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    monkeypatch.setenv("SQS_QUEUE_URL", _queue(cloud, visible=1))
    monkeypatch.setenv("AUTOSCALING_GROUP_NAME", "no-such-group")
    monkeypatch.setattr(backlog, "_lambda_clients", {})

    with pytest.raises(BacklogSourceMissing):
        backlog.lambda_handler({}, None)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1
    assert lines[0]["event"] == "backlog.failed"
    assert lines[0]["level"] == "error"
    assert lines[0]["error_class"] == "BacklogSourceMissing"
    assert "no-such-group" in lines[0]["error"]


def test_the_cli_prints_the_reading_and_a_missing_group_exits_2(cloud: Cloud) -> None:
    group = _group(cloud, desired=0)
    env = {**os.environ, "SQS_QUEUE_URL": _queue(cloud, visible=7), "AUTOSCALING_GROUP_NAME": group}
    command = ("backlog", "publish", "--dry-run")
    result = run_filefleet(*command, env=env)
    assert result.returncode == 0, result.stderr
    assert "backlog per instance 7: 7 visible message(s), 0 in-service instance(s)" in result.stdout
    assert "scale-from-zero" in result.stdout and "nothing published" in result.stdout
    env["AUTOSCALING_GROUP_NAME"] = "no-such-group"
    missing = run_filefleet(*command, env=env)
    assert missing.returncode == 2 and "no such Auto Scaling group" in missing.stderr
