"""`fleet rollout`: the AmiId update against moto's CloudFormation, the instance refresh against Stubber.

moto answers the instance refresh APIs with HTTP 500, so the Auto Scaling client is a real boto3 client
wrapped in botocore's Stubber: every call's parameters are pinned and validated against the API model, and
so is every canned response. CloudFormation and EC2 (launch template versions, AMIs) stay on moto.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from tests.fleet.conftest import TEST_TEMPLATE, Cloud, Run, stubbed

pytestmark = pytest.mark.integration
REFRESH_ID = "08b91cf7-8fa6-48af-b6a6-d227f40f1b9b"
ROLLBACK_ID = "2f5d0f4a-1c1e-4b43-9d0e-6a41c8c7a5de"
OVERRIDES = [{"InstanceType": "t3.medium"}, {"InstanceType": "t3a.medium"}, {"InstanceType": "t2.medium"}]


@pytest.fixture
def autoscaling() -> Iterator[tuple[Any, Stubber]]:
    with stubbed("autoscaling") as pair:
        yield pair


def _group(name: str, template_id: str, version: str, instance_versions: list[str]) -> dict[str, Any]:
    """DescribeAutoScalingGroups' answer for the fleet's group, shaped as AWS sends it (id and name)."""
    spec = {"LaunchTemplateId": template_id, "LaunchTemplateName": "fleet-workers", "Version": version}
    return {
        "AutoScalingGroups": [
            {
                "AutoScalingGroupName": name,
                "MinSize": 0,
                "MaxSize": 3,
                "DesiredCapacity": len(instance_versions),
                "DefaultCooldown": 300,
                "AvailabilityZones": ["us-east-1a"],
                "HealthCheckType": "EC2",
                "CreatedTime": datetime(2026, 11, 1, tzinfo=UTC),
                "MixedInstancesPolicy": {
                    "LaunchTemplate": {"LaunchTemplateSpecification": spec, "Overrides": OVERRIDES},
                    "InstancesDistribution": {
                        "OnDemandAllocationStrategy": "prioritized",
                        "OnDemandBaseCapacity": 0,
                        "OnDemandPercentageAboveBaseCapacity": 30,
                        "SpotAllocationStrategy": "capacity-optimized",
                        "SpotInstancePools": 2,  # AWS reports it even where it does not apply
                    },
                },
                "Instances": [
                    {
                        "InstanceId": f"i-0{n}aaaaaaaaaaaaaaa",
                        "InstanceType": "t3.medium",
                        "AvailabilityZone": "us-east-1a",
                        "LifecycleState": "InService",
                        "HealthStatus": "Healthy",
                        "LaunchTemplate": {**spec, "Version": v},
                        "ProtectedFromScaleIn": False,
                    }
                    for n, v in enumerate(instance_versions)
                ],
            }
        ]
    }


def _policy(template_id: str, version: str) -> dict[str, Any]:
    """The MixedInstancesPolicy a request must carry: one launch template reference, no pool count."""
    return {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": template_id, "Version": version},
            "Overrides": OVERRIDES,
        },
        "InstancesDistribution": {
            "OnDemandAllocationStrategy": "prioritized",
            "OnDemandBaseCapacity": 0,
            "OnDemandPercentageAboveBaseCapacity": 30,
            "SpotAllocationStrategy": "capacity-optimized",
        },
    }


def _refresh(
    refresh_id: str, group: str, status: str, percent: int, remaining: int, **extra: Any
) -> dict[str, Any]:
    return {
        "InstanceRefreshes": [
            {
                "InstanceRefreshId": refresh_id,
                "AutoScalingGroupName": group,
                "Status": status,
                "PercentageComplete": percent,
                "InstancesToUpdate": remaining,
                **extra,
            }
        ]
    }


def _expect_group(
    stubber: Stubber, group: str, template_id: str, version: str, instance_versions: list[str]
) -> None:
    """The next DescribeAutoScalingGroups of the fleet's group answers with :func:`_group`."""
    stubber.add_response(
        "describe_auto_scaling_groups",
        _group(group, template_id, version, instance_versions),
        {"AutoScalingGroupNames": [group]},
    )


def _expect_no_refresh_running(stubber: Stubber, group: str) -> None:
    """The rollout's first question: is a refresh already running on the group? None is."""
    stubber.add_response(
        "describe_instance_refreshes",
        {"InstanceRefreshes": []},
        {"AutoScalingGroupName": group, "MaxRecords": 10},
    )


def test_rollout_updates_only_amiid_then_refreshes_so_that_a_rollback_would_return_to_the_old_version(
    cloud: Cloud, run_fleet: Run, deployed_stack: str, autoscaling: tuple[Any, Stubber]
) -> None:
    client, stubber = autoscaling
    outputs, before = cloud.outputs(deployed_stack), cloud.parameters(deployed_stack)
    group, template_id = outputs["AutoScalingGroupName"], outputs["LaunchTemplateId"]
    new_ami = cloud.register_ami()
    _expect_no_refresh_running(stubber, group)
    _expect_group(stubber, group, template_id, "1", ["1", "1"])
    # After the stack update: real CloudFormation has moved the group to version 2; the instances are on 1.
    _expect_group(stubber, group, template_id, "2", ["1", "1"])
    stubber.add_response(
        "update_auto_scaling_group",
        {},
        {"AutoScalingGroupName": group, "MixedInstancesPolicy": _policy(template_id, "1")},
    )
    stubber.add_response(
        "start_instance_refresh",
        {"InstanceRefreshId": REFRESH_ID},
        {
            "AutoScalingGroupName": group,
            "Strategy": "Rolling",
            "DesiredConfiguration": {"MixedInstancesPolicy": _policy(template_id, "2")},
            "Preferences": {
                "MinHealthyPercentage": 50,
                "SkipMatching": True,
                "ScaleInProtectedInstances": "Wait",
                "InstanceWarmup": 300,
            },
        },
    )
    follow = {"AutoScalingGroupName": group, "InstanceRefreshIds": [REFRESH_ID]}
    stubber.add_response("describe_instance_refreshes", _refresh(REFRESH_ID, group, "Pending", 0, 2), follow)
    stubber.add_response(
        "describe_instance_refreshes", _refresh(REFRESH_ID, group, "InProgress", 50, 1), follow
    )
    stubber.add_response(
        "describe_instance_refreshes", _refresh(REFRESH_ID, group, "InProgress", 50, 1), follow
    )
    stubber.add_response(
        "describe_instance_refreshes", _refresh(REFRESH_ID, group, "Successful", 100, 0), follow
    )

    result = run_fleet(
        "rollout",
        "--stack-name",
        deployed_stack,
        "--ami",
        new_ami,
        "--min-healthy-percentage",
        "50",
        "--yes",
        clients={"autoscaling": client},
    )

    assert result.code == 0, result.err
    assert f"  ~ AmiId: {before['AmiId']} -> {new_ami}" in result.out
    assert "UPDATE_COMPLETE" in result.out
    assert f"Group {group} back on version 1" in result.out
    assert result.out.count("50% complete, 1 instance(s) to update") == 1  # printed when it changes only
    assert "Successful" in result.out and f"Rollout of {new_ami} to {group} complete." in result.out
    assert cloud.parameters(deployed_stack) == {**before, "AmiId": new_ami}
    versions = cloud.ec2.describe_launch_template_versions(LaunchTemplateId=template_id)[
        "LaunchTemplateVersions"
    ]
    assert {v["VersionNumber"]: v["LaunchTemplateData"]["ImageId"] for v in versions} == {
        1: before["AmiId"],
        2: new_ami,
    }


def test_a_failed_refresh_is_a_failure_with_its_reason(
    cloud: Cloud, run_fleet: Run, deployed_stack: str, autoscaling: tuple[Any, Stubber]
) -> None:
    client, stubber = autoscaling
    outputs = cloud.outputs(deployed_stack)
    group, template_id = outputs["AutoScalingGroupName"], outputs["LaunchTemplateId"]
    _expect_no_refresh_running(stubber, group)
    _expect_group(stubber, group, template_id, "1", ["1"])
    _expect_group(stubber, group, template_id, "1", ["1"])
    stubber.add_response("start_instance_refresh", {"InstanceRefreshId": REFRESH_ID})
    reason = "Instance i-01aaaaaaaaaaaaaaa failed its health check during warm-up."
    stubber.add_response(
        "describe_instance_refreshes",
        _refresh(REFRESH_ID, group, "Failed", 0, 1, StatusReason=reason),
        {"AutoScalingGroupName": group, "InstanceRefreshIds": [REFRESH_ID]},
    )

    result = run_fleet(
        "rollout",
        "--stack-name",
        deployed_stack,
        "--ami",
        cloud.register_ami(),
        "--yes",
        clients={"autoscaling": client},
    )

    assert result.code == 1
    assert result.err.count("\n") == 1
    assert f"instance refresh {REFRESH_ID} ended Failed: {reason}" in result.err


def test_rollback_uses_the_api_rollback_then_sets_amiid_back_to_what_the_group_runs(
    cloud: Cloud, run_fleet: Run, deployed_stack: str, autoscaling: tuple[Any, Stubber]
) -> None:
    client, stubber = autoscaling
    outputs, original = cloud.outputs(deployed_stack), cloud.parameters(deployed_stack)
    group, template_id = outputs["AutoScalingGroupName"], outputs["LaunchTemplateId"]
    undone_ami = cloud.register_ami()  # a rollout that went wrong: the stack says this AMI, v2 holds it
    cloud.cloudformation.update_stack(
        StackName=deployed_stack,
        UsePreviousTemplate=True,
        Parameters=[{"ParameterKey": "AmiId", "ParameterValue": undone_ami}],
        Capabilities=["CAPABILITY_IAM"],
    )
    stubber.add_response(
        "rollback_instance_refresh", {"InstanceRefreshId": ROLLBACK_ID}, {"AutoScalingGroupName": group}
    )
    follow = {"AutoScalingGroupName": group, "InstanceRefreshIds": [ROLLBACK_ID]}
    rolling_back = {
        "PercentageCompleteOnRollback": 50,
        "InstancesToUpdateOnRollback": 1,
        "RollbackReason": "Manual",
    }
    stubber.add_response(
        "describe_instance_refreshes",
        _refresh(ROLLBACK_ID, group, "RollbackInProgress", 50, 1, RollbackDetails=rolling_back),
        follow,
    )
    stubber.add_response(
        "describe_instance_refreshes",
        _refresh(
            ROLLBACK_ID,
            group,
            "RollbackSuccessful",
            50,
            1,
            RollbackDetails={
                **rolling_back,
                "PercentageCompleteOnRollback": 100,
                "InstancesToUpdateOnRollback": 0,
            },
        ),
        follow,
    )
    # The rollback returned the group to the configuration it had before the refresh: version 1.
    _expect_group(stubber, group, template_id, "1", ["1", "1"])

    result = run_fleet(
        "rollout", "--stack-name", deployed_stack, "--rollback", "--yes", clients={"autoscaling": client}
    )

    assert result.code == 0, result.err
    assert (
        "RollbackInProgress" in result.out and "50% complete, 1 instance(s) to update  Manual" in result.out
    )
    assert f"Group {group} is back on launch template version 1 ({original['AmiId']})." in result.out
    assert f"  ~ AmiId: {undone_ami} -> {original['AmiId']}" in result.out
    assert cloud.parameters(deployed_stack)["AmiId"] == original["AmiId"]


def test_rollback_with_no_refresh_running_says_there_is_nothing_to_undo(
    run_fleet: Run, deployed_stack: str, autoscaling: tuple[Any, Stubber], cloud: Cloud
) -> None:
    client, stubber = autoscaling
    group = cloud.outputs(deployed_stack)["AutoScalingGroupName"]
    stubber.add_client_error(
        "rollback_instance_refresh",
        service_error_code="ActiveInstanceRefreshNotFound",
        service_message="No in progress or pending Instance Refresh found",
        http_status_code=400,
        expected_params={"AutoScalingGroupName": group},
    )

    result = run_fleet(
        "rollout", "--stack-name", deployed_stack, "--rollback", "--yes", clients={"autoscaling": client}
    )

    assert result.code == 2
    assert "nothing to roll back" in result.err and "rollout --ami" in result.err


def test_rollout_refuses_a_missing_ami_before_touching_the_stack_or_the_group(
    cloud: Cloud, run_fleet: Run, deployed_stack: str, autoscaling: tuple[Any, Stubber]
) -> None:
    client, _ = autoscaling  # no responses queued: any Auto Scaling call would fail the test
    before = cloud.parameters(deployed_stack)

    result = run_fleet(
        "rollout",
        "--stack-name",
        deployed_stack,
        "--ami",
        "ami-0fedcba9876543210",
        "--yes",
        clients={"autoscaling": client},
    )

    assert result.code == 2
    assert "AMI ami-0fedcba9876543210 does not exist in us-east-1" in result.err
    assert cloud.parameters(deployed_stack) == before


def test_rollout_and_rollback_are_one_or_the_other(
    run_fleet: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as neither:
        run_fleet("rollout")
    with pytest.raises(SystemExit) as both:
        run_fleet("rollout", "--ami", "ami-0123456789abcdef0", "--rollback")
    with pytest.raises(SystemExit) as malformed:
        run_fleet("rollout", "--ami", "my-ami")

    assert neither.value.code == both.value.code == malformed.value.code == 2
    assert "is not an AMI id" in capsys.readouterr().err


def test_the_test_template_declares_the_contract_names() -> None:
    text = TEST_TEMPLATE.read_text()
    for name in (
        "AmiId",
        "InstanceWarmup",
        "QueueUrl",
        "DeadLetterQueueUrl",
        "AutoScalingGroupName",
        "LaunchTemplateId",
    ):
        assert f"  {name}:" in text


def _move_stack_to(cloud: Cloud, stack_name: str, ami: str) -> None:
    """An earlier rollout's stack update: AmiId changed, the launch template has version 2."""
    cloud.cloudformation.update_stack(
        StackName=stack_name,
        UsePreviousTemplate=True,
        Parameters=[{"ParameterKey": "AmiId", "ParameterValue": ami}],
        Capabilities=["CAPABILITY_IAM"],
    )


def test_an_interrupted_rollout_resumes_with_the_refresh_when_the_stack_is_already_updated(
    cloud: Cloud, run_fleet: Run, deployed_stack: str, autoscaling: tuple[Any, Stubber]
) -> None:
    client, stubber = autoscaling
    outputs = cloud.outputs(deployed_stack)
    group, template_id = outputs["AutoScalingGroupName"], outputs["LaunchTemplateId"]
    new_ami = cloud.register_ami()
    _move_stack_to(cloud, deployed_stack, new_ami)
    _expect_no_refresh_running(stubber, group)
    # The group still on version 1 (the earlier run put it back, then stopped): nothing to put back now.
    _expect_group(stubber, group, template_id, "1", ["1"])
    _expect_group(stubber, group, template_id, "1", ["1"])
    stubber.add_response(
        "start_instance_refresh",
        {"InstanceRefreshId": REFRESH_ID},
        {
            "AutoScalingGroupName": group,
            "Strategy": "Rolling",
            "DesiredConfiguration": {"MixedInstancesPolicy": _policy(template_id, "2")},
            "Preferences": {
                "MinHealthyPercentage": 90,
                "SkipMatching": False,
                "ScaleInProtectedInstances": "Wait",
                "InstanceWarmup": 300,
            },
        },
    )
    stubber.add_response(
        "describe_instance_refreshes",
        _refresh(REFRESH_ID, group, "Successful", 100, 0),
        {"AutoScalingGroupName": group, "InstanceRefreshIds": [REFRESH_ID]},
    )

    result = run_fleet(
        "rollout",
        "--stack-name",
        deployed_stack,
        "--ami",
        new_ami,
        "--no-skip-matching",
        "--yes",
        clients={"autoscaling": client},
    )

    assert result.code == 0, result.err
    assert f"Nothing to do: stack {deployed_stack} already matches" in result.out
    assert "back on version" not in result.out
    assert f"Rollout of {new_ami} to {group} complete." in result.out


def test_a_rollout_whose_instances_all_run_the_new_version_is_done_without_a_refresh(
    cloud: Cloud, run_fleet: Run, deployed_stack: str, autoscaling: tuple[Any, Stubber]
) -> None:
    client, stubber = autoscaling
    outputs = cloud.outputs(deployed_stack)
    group, template_id = outputs["AutoScalingGroupName"], outputs["LaunchTemplateId"]
    new_ami = cloud.register_ami()
    _move_stack_to(cloud, deployed_stack, new_ami)
    _expect_no_refresh_running(stubber, group)
    _expect_group(stubber, group, template_id, "2", ["2", "2"])
    _expect_group(stubber, group, template_id, "2", ["2", "2"])

    result = run_fleet(
        "rollout", "--stack-name", deployed_stack, "--ami", new_ami, "--yes", clients={"autoscaling": client}
    )

    assert result.code == 0, result.err
    assert f"Every instance of {group} already runs launch template version 2: done." in result.out
