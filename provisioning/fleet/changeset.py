"""Change sets: every stack change is computed by CloudFormation, shown, and only then executed.

An empty change set is not an error here: CloudFormation marks it FAILED with "The submitted information
didn't contain changes" (or refuses CreateChangeSet with "No updates are to be performed"); both mean "nothing
to do", and the empty change set is deleted rather than left in the stack's list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from provisioning.fleet.aws import Client
from provisioning.fleet.errors import FleetFailure
from provisioning.fleet.polling import Polling

ChangeSetType = Literal["CREATE", "UPDATE"]
# The fleet creates its worker role; a role with a fixed name would need NAMED_IAM as well. Asking for both
# is the operator's acknowledgement, given once here rather than on every command line.
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM")
_NOTHING_TO_DO = ("didn't contain changes", "No updates are to be performed")
_CREATING = frozenset({"CREATE_PENDING", "CREATE_IN_PROGRESS"})


@dataclass(frozen=True)
class ChangeSet:
    change_set_id: str  # the ARN: names are only unique per stack, and every later call uses this
    name: str
    stack_id: str
    stack_name: str
    kind: ChangeSetType
    changes: list[dict[str, Any]]
    parameters: dict[str, str]  # the values the stack will have, as CloudFormation resolved them


def _is_nothing_to_do(message: str) -> bool:
    return any(marker in message for marker in _NOTHING_TO_DO)


def create_change_set(
    cloudformation: Client,
    *,
    stack_name: str,
    kind: ChangeSetType,
    template: dict[str, Any],
    parameters: list[dict[str, Any]],
    polling: Polling,
    purpose: str,
) -> ChangeSet | None:
    """Create a change set and wait until CloudFormation has computed it; None when it changes nothing.

    ``template`` is TemplateBody, TemplateURL or UsePreviousTemplate (a rollout changes a parameter, never
    the template). ``purpose`` ("deploy", "rollout") starts the change set's name.
    """
    name = f"filefleet-{purpose}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    try:
        created = cloudformation.create_change_set(
            StackName=stack_name,
            ChangeSetName=name,
            ChangeSetType=kind,
            Parameters=parameters,
            Capabilities=list(CAPABILITIES),
            Description=f"filefleet fleet {purpose}",
            **template,
        )
    except ClientError as exc:
        if _is_nothing_to_do(str(exc.response.get("Error", {}).get("Message", ""))):
            return None
        raise
    change_set_id = created["Id"]
    described = polling.until(
        lambda: _computed(cloudformation, change_set_id),
        waiting_for=f"CloudFormation to compute change set {name}",
    )
    if described["Status"] == "FAILED":
        reason = str(described.get("StatusReason", ""))
        delete_change_set(cloudformation, change_set_id)
        if _is_nothing_to_do(reason):
            return None
        raise FleetFailure(f"CloudFormation could not compute the change set for {stack_name}: {reason}")
    return ChangeSet(
        change_set_id=change_set_id,
        name=name,
        stack_id=created.get("StackId") or described["StackId"],
        stack_name=stack_name,
        kind=kind,
        changes=_all_changes(cloudformation, change_set_id, described),
        parameters={
            p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", []) or []
        },
    )


def _computed(cloudformation: Client, change_set_id: str) -> dict[str, Any] | None:
    described: dict[str, Any] = cloudformation.describe_change_set(
        ChangeSetName=change_set_id, IncludePropertyValues=True
    )
    return None if described.get("Status") in _CREATING else described


def _all_changes(cloudformation: Client, change_set_id: str, first: dict[str, Any]) -> list[dict[str, Any]]:
    """Every change: DescribeChangeSet pages them (a fleet fits in one page, a future one may not)."""
    changes = list(first.get("Changes", []))
    token = first.get("NextToken")
    while token:
        page = cloudformation.describe_change_set(
            ChangeSetName=change_set_id, IncludePropertyValues=True, NextToken=token
        )
        changes.extend(page.get("Changes", []))
        token = page.get("NextToken")
    return changes


def execute_change_set(cloudformation: Client, change_set: ChangeSet) -> None:
    cloudformation.execute_change_set(ChangeSetName=change_set.change_set_id)


def delete_change_set(cloudformation: Client, change_set_id: str) -> None:
    cloudformation.delete_change_set(ChangeSetName=change_set_id)


def discard(cloudformation: Client, change_set: ChangeSet) -> None:
    """Drop an unexecuted change set; for a CREATE, also the empty REVIEW_IN_PROGRESS stack it made."""
    delete_change_set(cloudformation, change_set.change_set_id)
    if change_set.kind == "CREATE":
        # It holds no resources; left behind, it would linger in the stack list as REVIEW_IN_PROGRESS.
        cloudformation.delete_stack(StackName=change_set.stack_id)
