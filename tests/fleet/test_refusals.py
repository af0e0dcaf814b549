"""Refusals before anything changes: missing credentials or region, a stack CloudFormation cannot update.

A stack in ROLLBACK_COMPLETE cannot be produced with moto (it never fails a resource), so CloudFormation is
a Stubber here, answering as AWS does for a fleet whose creation failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from tests.fleet.conftest import TEST_TEMPLATE, Run, stubbed

STACK_ID = (
    "arn:aws:cloudformation:us-east-1:123456789012:stack/filefleet/5b3c1a10-0000-4000-8000-000000000001"
)


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # No shared files either (the developer's own ~/.aws must not make this test pass or fail).
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))


@pytest.mark.parametrize("action", [["status"], ["destroy", "--yes"], ["rollout", "--rollback", "--yes"]])
def test_missing_credentials_are_a_configuration_problem_on_one_line(
    no_credentials: None, run_fleet: Run, action: list[str]
) -> None:
    result = run_fleet(*action)

    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert result.err.startswith("filefleet: no AWS credentials found: pass --profile NAME")


def test_an_unknown_profile_and_a_missing_region_are_refused(
    no_credentials: None, run_fleet: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = run_fleet("status", "--profile", "nobody")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    region = run_fleet("status")

    assert profile.code == 2 and "nobody" in profile.err and "--profile" in profile.err
    assert region.code == 2 and "no AWS region: pass --region" in region.err


@pytest.fixture
def cloudformation() -> Iterator[tuple[Any, Stubber]]:
    with stubbed("cloudformation") as pair:
        yield pair


def _stack(status: str) -> dict[str, Any]:
    return {
        "Stacks": [
            {
                "StackId": STACK_ID,
                "StackName": "filefleet",
                "StackStatus": status,
                "CreationTime": datetime(2026, 11, 30, tzinfo=UTC),
                "Parameters": [{"ParameterKey": "AmiId", "ParameterValue": "ami-0123456789abcdef0"}],
            }
        ]
    }


def _summary() -> dict[str, Any]:
    return {"Parameters": [{"ParameterKey": "AmiId", "ParameterType": "String", "NoEcho": False}]}


def _failed_creation_events() -> dict[str, Any]:
    def event(n: int, logical_id: str, status: str, reason: str | None = None) -> dict[str, Any]:
        item = {
            "StackId": STACK_ID,
            "EventId": f"event-{n}",
            "StackName": "filefleet",
            "LogicalResourceId": logical_id,
            "ResourceType": "AWS::AutoScaling::AutoScalingGroup"
            if logical_id == "Group"
            else "AWS::SQS::Queue",
            "Timestamp": datetime(2026, 11, 30, 4, 0, n, tzinfo=UTC),
            "ResourceStatus": status,
        }
        return {**item, "ResourceStatusReason": reason} if reason else item

    return {  # newest first, as CloudFormation answers
        "StackEvents": [
            event(4, "Queue", "DELETE_COMPLETE"),
            event(3, "Queue", "CREATE_FAILED", "Resource creation cancelled"),
            event(2, "Group", "CREATE_FAILED", "You have requested more instances (4) than your maximum (3)"),
            event(1, "Queue", "CREATE_IN_PROGRESS"),
        ]
    }


def test_deploying_over_a_rolled_back_creation_says_to_destroy_and_redeploy(
    cloudformation: tuple[Any, Stubber], run_fleet: Run
) -> None:
    client, stubber = cloudformation
    stubber.add_response("get_template_summary", _summary(), {"TemplateBody": ANY})
    stubber.add_response("describe_stacks", _stack("ROLLBACK_COMPLETE"), {"StackName": "filefleet"})
    stubber.add_response("describe_stack_events", _failed_creation_events(), {"StackName": STACK_ID})

    result = run_fleet(
        "deploy",
        "--template",
        str(TEST_TEMPLATE),
        "--parameters",
        "AmiId=ami-0123456789abcdef0",
        "--yes",
        clients={"cloudformation": client},
    )

    assert result.code == 2
    assert result.err.count("\n") == 1
    message = result.err
    assert "stack filefleet is ROLLBACK_COMPLETE" in message
    assert "(last failure: Group: You have requested more instances (4) than your maximum (3))" in message
    assert "`filefleet fleet destroy --stack-name filefleet`, then deploy again" in message


def test_an_update_whose_rollback_failed_says_to_continue_the_rollback(
    cloudformation: tuple[Any, Stubber], run_fleet: Run
) -> None:
    client, stubber = cloudformation
    stubber.add_response("describe_stacks", _stack("UPDATE_ROLLBACK_FAILED"), {"StackName": "filefleet"})
    stubber.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": STACK_ID})

    result = run_fleet(
        "rollout", "--ami", "ami-0123456789abcdef0", "--yes", clients={"cloudformation": client}
    )

    assert result.code == 2
    assert "is UPDATE_ROLLBACK_FAILED" in result.err
    assert "aws cloudformation continue-update-rollback --stack-name filefleet" in result.err


def test_a_stack_mid_operation_is_not_touched(cloudformation: tuple[Any, Stubber], run_fleet: Run) -> None:
    client, stubber = cloudformation
    stubber.add_response("describe_stacks", _stack("UPDATE_IN_PROGRESS"), {"StackName": "filefleet"})

    result = run_fleet("destroy", "--yes", clients={"cloudformation": client})

    assert result.code == 2
    assert "is UPDATE_IN_PROGRESS: another operation is running; wait for it" in result.err


def test_expired_credentials_are_a_configuration_problem(
    cloudformation: tuple[Any, Stubber], run_fleet: Run
) -> None:
    client, stubber = cloudformation
    stubber.add_client_error(
        "describe_stacks",
        service_error_code="ExpiredToken",
        service_message="The security token included in the request is expired",
        http_status_code=400,
    )

    result = run_fleet("status", clients={"cloudformation": client})

    assert result.code == 2
    assert "AWS refused the credentials (ExpiredToken" in result.err and "aws sso login" in result.err
