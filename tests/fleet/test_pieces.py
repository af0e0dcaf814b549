"""The fleet CLI's pieces on their own, no AWS: diff rendering, parameters, launch configs, status text."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.stub import Stubber

import provisioning
from provisioning.fleet.changeset import ChangeSet
from provisioning.fleet.confirm import confirm
from provisioning.fleet.diff import render_change_set
from provisioning.fleet.errors import FleetConfigError, FleetFailure, OperationTimedOut, explain_aws_error
from provisioning.fleet.parameters import parse_assignments, plan_parameters, read_parameters_file
from provisioning.fleet.polling import Polling
from provisioning.fleet.progress import follow_stack
from provisioning.fleet.refresh import LaunchConfig, progress_line
from provisioning.fleet.status import Activity, FleetStatus, QueueDepth
from provisioning.fleet.status_report import render_status
from provisioning.fleet.template import ParameterSpec, Template, read_template

# A change set as CloudFormation describes it (IncludePropertyValues) for a new AMI and a queue edit.
AMI_CHANGES: list[dict[str, Any]] = [
    {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": "LaunchTemplate",
            "PhysicalResourceId": "lt-0abc",
            "ResourceType": "AWS::EC2::LaunchTemplate",
            "Replacement": "False",
            "Scope": ["Properties"],
            "Details": [
                {
                    "Target": {
                        "Attribute": "Properties",
                        "Name": "LaunchTemplateData",
                        "RequiresRecreation": "Never",
                        "Path": "/Properties/LaunchTemplateData/ImageId",
                        "BeforeValue": "ami-0aaaaaaaaaaaaaaaa",
                        "AfterValue": "ami-0bbbbbbbbbbbbbbbb",
                        "AttributeChangeType": "Modify",
                    },
                    "Evaluation": "Static",
                    "ChangeSource": "ParameterReference",
                    "CausingEntity": "AmiId",
                }
            ],
        },
    },
    {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": "Group",
            "ResourceType": "AWS::AutoScaling::AutoScalingGroup",
            "Replacement": "Conditional",
            "Details": [
                {
                    "Target": {
                        "Attribute": "Properties",
                        "Name": "MixedInstancesPolicy",
                        "RequiresRecreation": "Conditionally",
                    },
                    "Evaluation": "Dynamic",
                    "ChangeSource": "ResourceAttribute",
                    "CausingEntity": "LaunchTemplate.LatestVersionNumber",
                },
                {
                    "Target": {
                        "Attribute": "Properties",
                        "Name": "MixedInstancesPolicy",
                        "RequiresRecreation": "Conditionally",
                    },
                    "Evaluation": "Static",
                    "ChangeSource": "DirectModification",
                },
            ],
        },
    },
    {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": "Queue",
            "ResourceType": "AWS::SQS::Queue",
            "Replacement": "True",
            "Details": [
                {
                    "Target": {
                        "Attribute": "Properties",
                        "Name": "FifoQueue",
                        "RequiresRecreation": "Always",
                    },
                    "Evaluation": "Static",
                    "ChangeSource": "DirectModification",
                }
            ],
        },
    },
    {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Remove",
            "LogicalResourceId": "OldBucket",
            "ResourceType": "AWS::S3::Bucket",
            "PolicyAction": "Retain",
        },
    },
    {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Add",
            "LogicalResourceId": "Alarm",
            "ResourceType": "AWS::CloudWatch::Alarm",
        },
    },
]


def _change_set(kind: str, changes: list[dict[str, Any]], parameters: dict[str, str]) -> ChangeSet:
    return ChangeSet(
        change_set_id="arn:aws:cloudformation:us-east-1:123456789012:changeSet/cs/1",
        name="filefleet-deploy-1",
        stack_id="arn:aws:cloudformation:us-east-1:123456789012:stack/filefleet/1",
        stack_name="filefleet",
        kind=kind,  # type: ignore[arg-type]
        changes=changes,
        parameters=parameters,
    )


def test_the_diff_names_each_resource_its_properties_their_values_and_causes() -> None:
    deployed = {"AmiId": "ami-0aaaaaaaaaaaaaaaa", "MaxSize": "3", "Environment": "prod"}
    change_set = _change_set("UPDATE", AMI_CHANGES, {**deployed, "AmiId": "ami-0bbbbbbbbbbbbbbbb"})

    lines = render_change_set(change_set, deployed)

    assert lines == [
        "Change set filefleet-deploy-1 (update stack filefleet):",
        "  ~ Modify   LaunchTemplate               AWS::EC2::LaunchTemplate",
        "      LaunchTemplateData.ImageId: ami-0aaaaaaaaaaaaaaaa -> ami-0bbbbbbbbbbbbbbbb  (parameter AmiId)",
        "  ! Modify (may replace) Group                        AWS::AutoScaling::AutoScalingGroup",
        "      MixedInstancesPolicy  (LaunchTemplate.LatestVersionNumber, known only while executing; "
        "template edit; recreation Conditionally)",
        "  ! Replace  Queue                        AWS::SQS::Queue",
        "      FifoQueue  (template edit; recreation Always)",
        "  - Remove   OldBucket                    AWS::S3::Bucket  (kept: DeletionPolicy Retain)",
        "  + Add      Alarm                        AWS::CloudWatch::Alarm",
        "Parameters:",
        "  ~ AmiId: ami-0aaaaaaaaaaaaaaaa -> ami-0bbbbbbbbbbbbbbbb",
        "1 to add, 3 to modify, 1 to remove (2 replaced or possibly replaced: the old resource is deleted)",
    ]


def test_a_create_lists_the_given_parameters_and_long_values_are_cut() -> None:
    change_set = _change_set("CREATE", [], {"SubnetIds": ",".join(f"subnet-{n:017x}" for n in range(4))})

    lines = render_change_set(change_set, {})

    assert lines[0] == "Change set filefleet-deploy-1 (create stack filefleet):"
    assert lines[1] == "  no resource changes"
    assert lines[3].startswith("  + SubnetIds = subnet-00000000000000000,") and lines[3].endswith("...")
    assert len(lines[3]) == len("  + SubnetIds = ") + 60


def _template(**defaults: str | None) -> Template:
    return Template(
        source="test",
        body="",
        parameters={
            name: ParameterSpec(name=name, default=value, no_echo=False) for name, value in defaults.items()
        },
    )


def test_an_update_keeps_every_deployed_parameter_not_given() -> None:
    template = _template(AmiId=None, MaxSize="3", Environment="dev", NewOne="x")
    deployed = {"AmiId": "ami-1", "MaxSize": "3", "Environment": "prod"}

    plan = plan_parameters(template, {"MaxSize": "5"}, deployed)

    assert plan.as_api() == [
        {"ParameterKey": "MaxSize", "ParameterValue": "5"},
        {"ParameterKey": "AmiId", "UsePreviousValue": True},
        {"ParameterKey": "Environment", "UsePreviousValue": True},
    ]  # NewOne is new to the stack: CloudFormation gives it the template's default


def test_a_create_needs_every_parameter_without_a_default_and_no_unknown_ones() -> None:
    template = _template(AmiId=None, VpcId=None, MaxSize="3")

    with pytest.raises(
        FleetConfigError, match=r"needs a value for AmiId, VpcId: pass --parameters AmiId=\.\.\. VpcId=\.\.\."
    ):
        plan_parameters(template, {}, None)
    with pytest.raises(
        FleetConfigError, match="declares no parameter Colour; it declares: AmiId, MaxSize, VpcId"
    ):
        plan_parameters(template, {"Colour": "red"}, None)


def test_assignments_split_on_the_first_equals_sign() -> None:
    assert parse_assignments(["SubnetIds=subnet-a,subnet-b", "OpenSearchUrl=https://h/?a=b"]) == {
        "SubnetIds": "subnet-a,subnet-b",
        "OpenSearchUrl": "https://h/?a=b",
    }
    with pytest.raises(FleetConfigError, match="is not KEY=VALUE"):
        parse_assignments(["AmiId"])


@pytest.mark.parametrize(
    "document",
    [
        {"AmiId": "ami-1", "MaxSize": 3, "SubnetIds": ["subnet-a", "subnet-b"], "ScaleInProtection": True},
        {
            "Parameters": {
                "AmiId": "ami-1",
                "MaxSize": "3",
                "SubnetIds": "subnet-a,subnet-b",
                "ScaleInProtection": "true",
            }
        },
        [
            {"ParameterKey": "AmiId", "ParameterValue": "ami-1"},
            {"ParameterKey": "MaxSize", "ParameterValue": "3"},
            {"ParameterKey": "SubnetIds", "ParameterValue": "subnet-a,subnet-b"},
            {"ParameterKey": "ScaleInProtection", "ParameterValue": "true"},
        ],
    ],
)
def test_a_parameters_file_may_take_any_of_the_usual_shapes(tmp_path: Path, document: Any) -> None:
    path = tmp_path / "parameters.json"
    path.write_text(json.dumps(document))

    assert read_parameters_file(path) == {
        "AmiId": "ami-1",
        "MaxSize": "3",
        "SubnetIds": "subnet-a,subnet-b",
        "ScaleInProtection": "true",
    }


def test_a_launch_config_request_names_the_template_once_and_drops_what_does_not_apply() -> None:
    group = {
        "AutoScalingGroupName": "g",
        "MixedInstancesPolicy": {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {
                    "LaunchTemplateId": "lt-1",
                    "LaunchTemplateName": "w",
                    "Version": "4",
                },
                "Overrides": [
                    {"InstanceType": "t3.medium"},
                    {
                        "InstanceType": "t3a.medium",
                        "LaunchTemplateSpecification": {
                            "LaunchTemplateId": "lt-2",
                            "LaunchTemplateName": "x",
                            "Version": "1",
                        },
                    },
                ],
            },
            "InstancesDistribution": {
                "SpotAllocationStrategy": "price-capacity-optimized",
                "SpotInstancePools": 2,
                "SpotMaxPrice": "",
            },
        },
    }
    plain = {
        "AutoScalingGroupName": "p",
        "LaunchTemplate": {"LaunchTemplateId": "lt-3", "LaunchTemplateName": "p", "Version": "$Latest"},
    }

    config = LaunchConfig.from_group(group).at_version(5)

    assert config.as_request() == {
        "MixedInstancesPolicy": {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateId": "lt-1", "Version": "5"},
                "Overrides": [
                    {"InstanceType": "t3.medium"},
                    {
                        "InstanceType": "t3a.medium",
                        "LaunchTemplateSpecification": {"LaunchTemplateId": "lt-2", "Version": "1"},
                    },
                ],
            },
            "InstancesDistribution": {"SpotAllocationStrategy": "price-capacity-optimized"},
        }
    }
    assert LaunchConfig.from_group(plain).as_request() == {
        "LaunchTemplate": {"LaunchTemplateId": "lt-3", "Version": "$Latest"}
    }
    assert not LaunchConfig.from_group(plain).numbered  # $Latest: the API cannot roll such a refresh back


def test_refresh_progress_reads_the_rollback_details_while_rolling_back() -> None:
    assert progress_line({"Status": "InProgress", "PercentageComplete": 33, "InstancesToUpdate": 2}) == (
        "  InProgress            33% complete, 2 instance(s) to update"
    )
    rolling_back = {
        "Status": "RollbackInProgress",
        "PercentageComplete": 33,
        "RollbackDetails": {
            "PercentageCompleteOnRollback": 80,
            "InstancesToUpdateOnRollback": 1,
            "RollbackReason": "Manual",
        },
    }
    assert progress_line(rolling_back).endswith("80% complete, 1 instance(s) to update  Manual")


AT = "At 2026-11-30T04:10:00Z "
REBALANCED = (
    f"{AT}an instance was taken out of service in response to an EC2 instance rebalance recommendation."
)


@pytest.mark.parametrize(
    ("cause", "interruption"),
    [
        (REBALANCED, True),
        (f"{AT}an instance was launched in response to a Capacity Rebalancing event.", True),
        (
            f"{AT}an instance was taken out of service in response to a Spot Instance interruption notice.",
            True,
        ),
        (
            f"{AT}a monitor alarm TargetTracking-AlarmHigh in state ALARM triggered policy "
            "BacklogPerInstance changing the desired capacity from 1 to 2.",
            False,
        ),
        (
            f"{AT}an instance was started in response to a difference between desired and actual capacity, "
            "increasing the capacity from 0 to 1.",
            False,
        ),
    ],
)
def test_spot_interruptions_are_told_from_other_activities_by_their_cause(
    cause: str, interruption: bool
) -> None:
    assert (
        Activity(
            start="", status="Successful", description="Terminating EC2 instance: i-1", cause=cause
        ).is_interruption
        is interruption
    )


def test_the_status_report_lists_activities_with_causes_and_interruptions() -> None:
    rebalance = Activity(
        start="2026-11-30T04:10:00+00:00",
        status="Successful",
        description="Terminating EC2 instance: i-0aaa",
        cause=REBALANCED,
    )
    status = FleetStatus(
        stack={"name": "filefleet", "status": "UPDATE_COMPLETE", "ami": "ami-1"},
        group={"name": "g", "desired": 1, "min": 0, "max": 3, "in_service": 0},
        instances=[],
        queue=QueueDepth(url="q", visible=0, in_flight=2, delayed=0),
        dead_letter_queue=None,
        oldest_message_age={"seconds": 3723.0, "at": "2026-11-30T04:11:00+00:00", "source": "CloudWatch"},
        backlog={
            "backlog_per_instance": 0.0,
            "visible_messages": 0,
            "in_service_instances": 0,
            "target": None,
        },
        activities=[rebalance],
        interruptions=[rebalance],
    )

    lines = render_status(status)

    assert "Oldest message: 1h 2m old (CloudWatch, at 04:11:00)" in lines
    assert "Dead-letter queue" not in "\n".join(lines)
    assert lines[-6:] == [
        "Recent scaling activities (newest first):",
        "  2026-11-30T04:10:00  Successful   Terminating EC2 instance: i-0aaa",
        f"      cause: {rebalance.cause}",
        "Spot interruptions and capacity rebalancing (last 50 activities):",
        "  2026-11-30T04:10:00  Successful   Terminating EC2 instance: i-0aaa",
        f"      cause: {rebalance.cause}",
    ]


def test_a_wait_gives_up_at_its_deadline_and_checks_once_more_there() -> None:
    now = [0.0]
    calls: list[float] = []

    def check() -> str | None:
        calls.append(now[0])
        return None

    polling = Polling(
        interval=4, timeout=10, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0]
    )

    with pytest.raises(OperationTimedOut, match="gave up waiting for the thing after 10 s; it goes on"):
        polling.until(check, waiting_for="the thing", on_timeout="it goes on")
    assert calls == [0, 4, 8, 10]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_confirmation_takes_yes_or_the_exact_expected_word_and_refuses_without_a_terminal() -> None:
    out = io.StringIO()
    assert confirm("Go?", assume_yes=False, stdin=_Terminal("YES\n"), stdout=out)
    assert out.getvalue() == "Go? [y/N] "
    assert not confirm("Go?", assume_yes=False, stdin=_Terminal("\n"), stdout=out)
    assert not confirm("Delete?", assume_yes=False, expected="filefleet", stdin=_Terminal("y\n"), stdout=out)
    assert confirm(
        "Delete?", assume_yes=False, expected="filefleet", stdin=_Terminal("filefleet\n"), stdout=out
    )
    assert confirm("Go?", assume_yes=True, stdin=io.StringIO(""), stdout=out)
    with pytest.raises(FleetConfigError, match="pass --yes"):
        confirm("Go?", assume_yes=False, stdin=io.StringIO("y\n"), stdout=out)


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "DescribeStacks")


def test_aws_errors_become_configuration_problems_only_when_the_operator_must_fix_something() -> None:
    assert isinstance(explain_aws_error(_client_error("ExpiredToken"), action="a"), FleetConfigError)
    assert isinstance(explain_aws_error(_client_error("AccessDenied"), action="a"), FleetConfigError)
    assert isinstance(explain_aws_error(NoCredentialsError(), action="a"), FleetConfigError)
    throttled = explain_aws_error(_client_error("Throttling"), action="fleet status")
    assert isinstance(throttled, FleetFailure) and str(throttled) == "fleet status: Throttling: m"


def test_without_template_the_packaged_fleet_yaml_is_deployed() -> None:
    packaged = Path(provisioning.__file__).with_name("fleet.yaml")
    if not packaged.is_file():  # until provisioning/fleet.yaml lands, the command says what to do
        with pytest.raises(FleetConfigError, match=r"fleet\.yaml .* is missing: pass --template PATH"):
            read_template(None)
        return
    source, body = read_template(None)
    assert source.startswith("the packaged fleet.yaml") and body == packaged.read_text(encoding="utf-8")


def test_following_a_stack_waits_until_the_operation_has_started() -> None:
    """Right after ExecuteChangeSet CloudFormation may still report the previous operation's status."""
    client = boto3.client("cloudformation", region_name="us-east-1")
    stack_id = "arn:aws:cloudformation:us-east-1:123456789012:stack/filefleet/1"
    when = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)

    def stack(status: str) -> dict[str, Any]:
        return {
            "Stacks": [
                {"StackName": "filefleet", "StackId": stack_id, "StackStatus": status, "CreationTime": when}
            ]
        }

    def events(*statuses: str) -> dict[str, Any]:
        return {
            "StackEvents": [
                {
                    "StackId": stack_id,
                    "EventId": f"e{n}",
                    "StackName": "filefleet",
                    "Timestamp": when,
                    "LogicalResourceId": "filefleet",
                    "ResourceStatus": status,
                }
                for n, status in reversed(list(enumerate(statuses)))
            ]
        }

    said: list[str] = []
    with Stubber(client) as stubber:
        for status, history in [
            ("UPDATE_COMPLETE", ["UPDATE_COMPLETE"]),  # the previous update: not this one's result
            ("UPDATE_IN_PROGRESS", ["UPDATE_COMPLETE", "UPDATE_IN_PROGRESS"]),
            ("UPDATE_COMPLETE", ["UPDATE_COMPLETE", "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"]),
        ]:
            stubber.add_response("describe_stacks", stack(status), {"StackName": stack_id})
            stubber.add_response("describe_stack_events", events(*history), {"StackName": stack_id})

        settled = follow_stack(
            client, stack_id, since="e0", polling=Polling(interval=0, timeout=5), say=said.append
        )

        stubber.assert_no_pending_responses()
    assert settled.status == "UPDATE_COMPLETE"
    assert [line.split()[1] for line in said] == ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"]


def test_a_failed_launch_shows_why_under_its_activity() -> None:
    failed = Activity(
        start="2026-11-30T04:12:00+00:00",
        status="Failed",
        description="Launching a new EC2 instance.  Status Reason: ...",
        cause=f"{AT}an instance was started in response to a difference between desired and actual capacity.",
        status_message="We currently do not have sufficient t3.medium capacity in the Availability Zone.",
    )
    status = FleetStatus(
        stack={"name": "filefleet", "status": "UPDATE_COMPLETE", "ami": None},
        group={"name": "g", "desired": 1, "min": 0, "max": 3, "in_service": 0},
        instances=[],
        queue=QueueDepth(url="q", visible=5, in_flight=0, delayed=0),
        dead_letter_queue=None,
        oldest_message_age={"seconds": None, "at": None, "source": "CloudWatch"},
        backlog={
            "backlog_per_instance": 5.0,
            "visible_messages": 5,
            "in_service_instances": 0,
            "target": "30",
        },
        activities=[failed],
    )

    lines = render_status(status)

    assert lines[0] == "Stack filefleet: UPDATE_COMPLETE"
    assert f"      status: {failed.status_message}" in lines
    assert "Spot interruptions and capacity rebalancing (last 50 activities): none" in lines


def test_the_fleet_template_without_its_comment_lines_is_the_same_template_and_fits_inline() -> None:
    from provisioning.fleet.compact import without_comment_lines
    from provisioning.fleet.template import TEMPLATE_BODY_LIMIT
    from tests.provisioning.cfn import TEMPLATE_PATH, load_template_text

    original = TEMPLATE_PATH.read_text(encoding="utf-8")
    compact = without_comment_lines(original)
    assert load_template_text(compact) == load_template_text(original), "only comments were removed"
    assert "#cloud-config" in compact, "comment-like lines inside block scalars are content and stay"
    assert len(compact.encode("utf-8")) <= TEMPLATE_BODY_LIMIT


def test_comment_lines_go_but_block_scalars_keep_every_line() -> None:
    from provisioning.fleet.compact import without_comment_lines

    text = (
        "# top\na: 1  # trailing stays\nb: |\n  #cloud-config\n\n  # kept\n"
        "c:\n  # dropped\n  - >-\n    # kept too\n  - x\n"
    )
    assert without_comment_lines(text) == (
        "a: 1  # trailing stays\nb: |\n  #cloud-config\n\n  # kept\nc:\n  - >-\n    # kept too\n  - x\n"
    )
