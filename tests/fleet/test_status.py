"""`fleet status` against moto server: group and instances, Spot/On-Demand, queues, age, backlog."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fleet.conftest import Cloud, Run

pytestmark = pytest.mark.integration


def _attach(cloud: Cloud, group: str, ami: str, instance_type: str, *, spot: bool) -> str:
    market: dict[str, Any] = {"InstanceMarketOptions": {"MarketType": "spot"}} if spot else {}
    instance = cloud.ec2.run_instances(
        ImageId=ami,
        MinCount=1,
        MaxCount=1,
        InstanceType=instance_type,
        Placement={"AvailabilityZone": "us-east-1a"},
        **market,
    )["Instances"][0]
    cloud.autoscaling.attach_instances(InstanceIds=[instance["InstanceId"]], AutoScalingGroupName=group)
    return str(instance["InstanceId"])


@pytest.fixture
def busy_fleet(cloud: Cloud, deployed_stack: str) -> dict[str, Any]:
    """Two in-service instances (one Spot t3a, one On-Demand t3), six waiting messages, an age data point."""
    outputs = cloud.outputs(deployed_stack)
    group = outputs["AutoScalingGroupName"]
    ami = cloud.parameters(deployed_stack)["AmiId"]
    spot = _attach(cloud, group, ami, "t3a.medium", spot=True)
    on_demand = _attach(cloud, group, ami, "t3.medium", spot=False)
    for n in range(6):
        cloud.sqs.send_message(QueueUrl=outputs["QueueUrl"], MessageBody=f"file-{n}")
    queue_name = outputs["QueueUrl"].rsplit("/", 1)[-1]
    # moto publishes no SQS metrics of its own; this is the point CloudWatch would hold.
    cloud.cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
                "Timestamp": datetime.now(UTC),
                "Value": 312.0,
                "Unit": "Seconds",
            }
        ],
    )
    return {"stack": deployed_stack, "group": group, "spot": spot, "on_demand": on_demand}


def test_status_shows_the_group_its_instances_the_queues_and_the_backlog(
    run_fleet: Run, busy_fleet: dict[str, Any]
) -> None:
    result = run_fleet("status", "--stack-name", busy_fleet["stack"])

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith(f"Stack {busy_fleet['stack']}: CREATE_COMPLETE (AmiId ami-")
    assert f"Group {busy_fleet['group']}: desired 2 (min 0, max 3), 2 in service" in lines
    spot_line = next(line for line in lines if busy_fleet["spot"] in line)
    assert spot_line.split()[1:6] == ["InService", "Healthy", "t3a.medium", "us-east-1a", "Spot"]
    on_demand_line = next(line for line in lines if busy_fleet["on_demand"] in line)
    assert on_demand_line.split()[1:6] == ["InService", "Healthy", "t3.medium", "us-east-1a", "On-Demand"]
    assert "  1 Spot, 1 On-Demand; t3.medium x1, t3a.medium x1" in lines
    assert "Queue: 6 visible, 0 in flight, 0 delayed" in lines
    assert "Dead-letter queue: 0 visible, 0 in flight, 0 delayed" in lines
    assert any(line.startswith("Oldest message: 5m 12s old (CloudWatch AWS/SQS") for line in lines)
    assert "Backlog per instance: 3 (target 30): 6 visible message(s) over 2 in-service instance(s)" in lines
    assert "Spot interruptions and capacity rebalancing (last 50 activities): none" in lines


def test_status_json_is_one_document_for_scripts(run_fleet: Run, busy_fleet: dict[str, Any]) -> None:
    result = run_fleet("status", "--stack-name", busy_fleet["stack"], "--json")

    assert result.code == 0, result.err
    status = json.loads(result.out)
    assert status["group"] == {"name": busy_fleet["group"], "desired": 2, "min": 0, "max": 3, "in_service": 2}
    assert status["purchase"] == {"Spot": 1, "On-Demand": 1}
    assert status["instance_types"] == {"t3a.medium": 1, "t3.medium": 1}
    assert (status["queue"]["visible"], status["dead_letter_queue"]["visible"]) == (6, 0)
    assert status["backlog"]["backlog_per_instance"] == 3.0 and status["backlog"]["target"] == "30"
    assert status["oldest_message_age"]["seconds"] == 312.0
    assert status["activities"] == [] and status["interruptions"] == []


def test_an_empty_fleet_is_the_scale_from_zero_case_when_work_waits(
    cloud: Cloud, run_fleet: Run, deployed_stack: str
) -> None:
    cloud.sqs.send_message(QueueUrl=cloud.outputs(deployed_stack)["QueueUrl"], MessageBody="file")

    result = run_fleet("status", "--stack-name", deployed_stack)

    assert result.code == 0, result.err
    assert "  no instances" in result.out
    assert "Oldest message: no data in the last 15 minutes" in result.out
    assert (
        "Backlog per instance: 1 (target 30): 1 visible message(s) over 0 in-service instance(s); work waits"
        in result.out
    )


def test_status_of_a_stack_that_does_not_exist_names_it(run_fleet: Run, stack_name: str, aws: str) -> None:
    result = run_fleet("status", "--stack-name", stack_name)

    assert result.code == 2
    assert f"no stack {stack_name} in us-east-1" in result.err
