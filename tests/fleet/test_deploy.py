"""`fleet deploy` and `fleet destroy` against moto server's CloudFormation, over real HTTP."""

from __future__ import annotations

import io
from pathlib import Path

import boto3
import pytest

from provisioning.fleet.compact import without_comment_lines
from tests.fleet.conftest import TEST_TEMPLATE, Cloud, Run

pytestmark = pytest.mark.integration
TEMPLATE = str(TEST_TEMPLATE)


def test_deploy_creates_the_stack_through_a_change_set_and_shows_the_diff(
    cloud: Cloud, run_fleet: Run, stack_name: str
) -> None:
    ami, _ = cloud.amis()
    result = run_fleet(
        "deploy", "--stack-name", stack_name, "--template", TEMPLATE, "--parameters", f"AmiId={ami}", "--yes"
    )

    assert result.code == 0, result.err
    assert f"AMI {ami} (" in result.out and "is available in us-east-1" in result.out
    assert f"(create stack {stack_name})" in result.out
    for logical_id, resource_type in [
        ("Queue", "AWS::SQS::Queue"),
        ("DeadLetterQueue", "AWS::SQS::Queue"),
        ("WorkerRole", "AWS::IAM::Role"),
        ("LaunchTemplate", "AWS::EC2::LaunchTemplate"),
        ("Group", "AWS::AutoScaling::AutoScalingGroup"),
        ("Dashboard", "AWS::CloudWatch::Dashboard"),
    ]:
        assert any(
            line.split()[:4] == ["+", "Add", logical_id, resource_type] for line in result.out.splitlines()
        ), logical_id
    assert f"+ AmiId = {ami}" in result.out
    assert "6 to add, 0 to modify, 0 to remove" in result.out
    assert "CREATE_COMPLETE" in result.out  # the stack's own events, followed until it settled
    assert cloud.stack_status(stack_name) == "CREATE_COMPLETE"
    # Outputs are printed as the stack reports them; moto reports none for a change-set-made stack.
    outputs = cloud.outputs(stack_name)
    if outputs:
        assert all(f"{key}" in result.out and value in result.out for key, value in outputs.items())
    else:
        assert f"Stack {stack_name} reports no outputs." in result.out


def test_a_second_deploy_shows_what_it_modifies_and_keeps_the_other_parameters(
    cloud: Cloud, run_fleet: Run, deployed_stack: str, tmp_path: Path
) -> None:
    before = cloud.parameters(deployed_stack)
    # moto lists resource changes for template edits only, so the edit shows Modify; MaxSize shows as a
    # parameter change, and everything not given must keep its deployed value (UsePreviousValue).
    edited = tmp_path / "fleet.yaml"
    edited.write_text(
        TEST_TEMPLATE.read_text().replace("MessageRetentionPeriod: 1209600", "MessageRetentionPeriod: 86400")
    )

    result = run_fleet(
        "deploy",
        "--stack-name",
        deployed_stack,
        "--template",
        str(edited),
        "--parameters",
        "MaxSize=5",
        "--yes",
    )

    assert result.code == 0, result.err
    assert f"(update stack {deployed_stack})" in result.out
    assert any(
        line.split()[:4] == ["~", "Modify", "DeadLetterQueue", "AWS::SQS::Queue"]
        for line in result.out.splitlines()
    )
    assert "  ~ MaxSize: 3 -> 5" in result.out
    after = cloud.parameters(deployed_stack)
    assert after == {**before, "MaxSize": "5"}
    assert "Outputs:" in result.out
    for key in (
        "QueueUrl",
        "DeadLetterQueueUrl",
        "AutoScalingGroupName",
        "LaunchTemplateId",
        "WorkerRoleArn",
    ):
        assert key in result.out


def test_an_unchanged_deploy_says_nothing_to_do_and_leaves_no_change_set(
    cloud: Cloud, run_fleet: Run, deployed_stack: str
) -> None:
    result = run_fleet("deploy", "--stack-name", deployed_stack, "--template", TEMPLATE, "--yes")

    assert result.code == 0, result.err
    assert f"Nothing to do: stack {deployed_stack} already matches" in result.out
    assert "Executing" not in result.out
    summaries = cloud.cloudformation.list_change_sets(StackName=deployed_stack)["Summaries"]
    assert not [s for s in summaries if s["StackName"] == deployed_stack]  # moto lists every stack's


def test_a_missing_ami_is_refused_before_any_change_set(
    cloud: Cloud, run_fleet: Run, stack_name: str
) -> None:
    result = run_fleet(
        "deploy",
        "--stack-name",
        stack_name,
        "--template",
        TEMPLATE,
        "--parameters",
        "AmiId=ami-0123456789abcdef0",
        "--yes",
    )

    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "AMI ami-0123456789abcdef0 does not exist in us-east-1" in result.err
    assert cloud.stack_status(stack_name) is None  # no stack, not even one in REVIEW_IN_PROGRESS


def test_parameters_the_template_does_not_declare_or_lacks_are_refused(
    cloud: Cloud, run_fleet: Run, stack_name: str
) -> None:
    unknown = run_fleet(
        "deploy", "--stack-name", stack_name, "--template", TEMPLATE, "--parameters", "Colour=red"
    )
    missing = run_fleet("deploy", "--stack-name", stack_name, "--template", TEMPLATE, "--yes")

    assert unknown.code == 2 and "declares no parameter Colour; it declares: AmiId," in unknown.err
    assert missing.code == 2 and "needs a value for AmiId: pass --parameters AmiId=..." in missing.err
    assert cloud.stack_status(stack_name) is None


def test_without_yes_and_without_a_terminal_deploy_refuses_and_cleans_up(
    cloud: Cloud, run_fleet: Run, stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # piped input is not a terminal: never read
    ami, _ = cloud.amis()

    result = run_fleet(
        "deploy", "--stack-name", stack_name, "--template", TEMPLATE, "--parameters", f"AmiId={ami}"
    )

    assert result.code == 2
    assert "stdin is not a terminal; pass --yes" in result.err
    assert "+ Add" in result.out  # the diff was still shown
    assert cloud.stack_status(stack_name) is None  # the CREATE change set's empty stack was deleted too


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_an_operator_who_answers_no_gets_nothing_executed(
    cloud: Cloud, run_fleet: Run, deployed_stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))

    result = run_fleet(
        "deploy", "--stack-name", deployed_stack, "--template", TEMPLATE, "--parameters", "MaxSize=4"
    )

    assert result.code == 1
    assert (
        "Execute this change set" in result.out and "Not executed; the change set was deleted." in result.out
    )
    assert cloud.parameters(deployed_stack)["MaxSize"] == "3"
    summaries = cloud.cloudformation.list_change_sets(StackName=deployed_stack)["Summaries"]
    assert not [s for s in summaries if s["StackName"] == deployed_stack]  # moto lists every stack's


def test_destroy_warns_about_queued_messages_and_deletes_the_stack(
    cloud: Cloud, run_fleet: Run, deployed_stack: str
) -> None:
    queue_url = cloud.outputs(deployed_stack)["QueueUrl"]
    for n in range(3):
        cloud.sqs.send_message(QueueUrl=queue_url, MessageBody=f"file-{n}")
    stack_id = cloud.cloudformation.describe_stacks(StackName=deployed_stack)["Stacks"][0]["StackId"]

    result = run_fleet("destroy", "--stack-name", deployed_stack, "--yes")

    assert result.code == 0, result.err
    assert "WARNING: the queue holds 3 message(s) (3 visible, 0 in flight, 0 delayed)" in result.out
    assert "dead-letter queue holds" not in result.out  # an empty queue is not worth a warning
    assert "DELETE_COMPLETE" in result.out
    assert (
        cloud.cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
        == "DELETE_COMPLETE"
    )


def test_destroy_asks_for_the_stack_name_and_refuses_without_a_terminal(
    cloud: Cloud, run_fleet: Run, deployed_stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal("yes\n"))  # "yes" is not the stack's name
    declined = run_fleet("destroy", "--stack-name", deployed_stack)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{deployed_stack}\n"))
    refused = run_fleet("destroy", "--stack-name", deployed_stack)

    assert declined.code == 1 and f"type {deployed_stack} to confirm" in declined.out
    assert refused.code == 2 and "pass --yes" in refused.err
    assert cloud.stack_status(deployed_stack) == "CREATE_COMPLETE"


def test_destroying_a_stack_that_does_not_exist_is_nothing_to_do(
    run_fleet: Run, stack_name: str, aws: str
) -> None:
    result = run_fleet("destroy", "--stack-name", stack_name, "--yes")

    assert result.code == 0
    assert f"No stack {stack_name} in us-east-1: nothing to destroy." in result.out


def _oversized(tmp_path: Path) -> Path:
    """The test template grown past CloudFormation's 51,200-byte inline limit, in content, not comments."""
    big = tmp_path / "fleet.yaml"
    big.write_text(
        TEST_TEMPLATE.read_text() + "Metadata:\n  Notes: |\n" + "    why each setting is what it is\n" * 1700
    )
    assert big.stat().st_size > 51_200
    return big


def test_a_template_too_large_to_send_inline_needs_a_bucket(
    cloud: Cloud, run_fleet: Run, stack_name: str, tmp_path: Path
) -> None:
    ami, _ = cloud.amis()

    result = run_fleet(
        "deploy",
        "--stack-name",
        stack_name,
        "--template",
        str(_oversized(tmp_path)),
        "--parameters",
        f"AmiId={ami}",
        "--yes",
    )

    assert result.code == 2
    assert "over the 51200 bytes CloudFormation takes inline: pass --template-bucket BUCKET" in result.err
    assert cloud.stack_status(stack_name) is None


def test_a_large_template_goes_through_the_bucket_and_is_deployed_from_there(
    cloud: Cloud, run_fleet: Run, stack_name: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = f"{stack_name}-templates"
    s3.create_bucket(Bucket=bucket)
    ami, _ = cloud.amis()
    big = _oversized(tmp_path)

    result = run_fleet(
        "deploy",
        "--stack-name",
        stack_name,
        "--template",
        str(big),
        "--template-bucket",
        bucket,
        "--parameters",
        f"AmiId={ami}",
        "--yes",
    )

    assert result.code == 0, result.err
    assert cloud.stack_status(stack_name) == "CREATE_COMPLETE"
    (stored,) = s3.list_objects_v2(Bucket=bucket, Prefix="filefleet/templates/")["Contents"]
    sent = without_comment_lines(big.read_text()).encode()  # what is too big inline goes without comments
    assert s3.get_object(Bucket=bucket, Key=stored["Key"])["Body"].read() == sent
