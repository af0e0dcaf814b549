"""A stack as the fleet commands see it, and which of its states allow which operation.

CloudFormation refuses to update a stack that is mid-operation or whose last operation failed without a clean
rollback; the refusal it gives ("... is in ROLLBACK_COMPLETE state and can not be updated") does not say what
to do. :func:`ensure_updatable` refuses first, with the recovery for that state and the failure that led
there, read from the stack's events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from provisioning.fleet.aws import Client
from provisioning.fleet.errors import FleetConfigError

REVIEW_IN_PROGRESS = "REVIEW_IN_PROGRESS"  # created by a change set that was never executed: no resources
UPDATABLE = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",  # the last update failed, but the rollback restored the stack
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)
# The creation failed: CloudFormation can only delete such a stack, never update it.
_FAILED_CREATION = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"})
_USER_CANCELLED = "cancelled"  # "Resource creation cancelled": a consequence, not the cause


@dataclass(frozen=True)
class Stack:
    name: str
    stack_id: str
    status: str
    status_reason: str | None
    parameters: dict[str, str]
    outputs: dict[str, str]
    termination_protection: bool

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> Stack:
        return cls(
            name=item["StackName"],
            stack_id=item["StackId"],
            status=item["StackStatus"],
            status_reason=item.get("StackStatusReason"),
            parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in item.get("Parameters", [])},
            outputs={o["OutputKey"]: o.get("OutputValue", "") for o in item.get("Outputs", []) or []},
            termination_protection=bool(item.get("EnableTerminationProtection", False)),
        )

    @property
    def in_progress(self) -> bool:
        return self.status.endswith("_IN_PROGRESS") and self.status != REVIEW_IN_PROGRESS

    @property
    def has_resources(self) -> bool:
        return self.status != REVIEW_IN_PROGRESS

    def output(self, key: str) -> str:
        value = self.outputs.get(key)
        if not value:
            known = ", ".join(sorted(self.outputs)) or "none"
            raise FleetConfigError(
                f"stack {self.name} ({self.status}) has no output {key} (its outputs: {known}); "
                "was it deployed from provisioning/fleet.yaml?"
            )
        return value


def find_stack(cloudformation: Client, name: str) -> Stack | None:
    """The stack called (or with the id) ``name``, or None when there is none."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", "")):
            return None
        raise
    return Stack.from_api(stacks[0]) if stacks else None


def require_stack(cloudformation: Client, name: str) -> Stack:
    stack = find_stack(cloudformation, name)
    if stack is None:
        region = cloudformation.meta.region_name
        raise FleetConfigError(
            f"no stack {name} in {region}: deploy it with `filefleet fleet deploy`, "
            "or pass the --stack-name / --region it was deployed with"
        )
    return stack


def ensure_updatable(cloudformation: Client, stack: Stack) -> None:
    """Refuse (FleetConfigError) unless CloudFormation would accept an update of ``stack`` now."""
    if stack.status in UPDATABLE:
        return
    cause = last_failure(cloudformation, stack.stack_id)
    because = f" (last failure: {cause})" if cause else ""
    raise FleetConfigError(f"stack {stack.name} is {stack.status}{because}: {recovery(stack)}")


def recovery(stack: Stack) -> str:
    """What an operator does to get ``stack`` out of a state that blocks updates."""
    name = stack.name
    if stack.status in _FAILED_CREATION:
        return (
            "its creation failed and CloudFormation cannot update it; fix the cause, delete it with "
            f"`filefleet fleet destroy --stack-name {name}`, then deploy again"
        )
    if stack.status == "UPDATE_ROLLBACK_FAILED":
        return (
            "an update failed and so did its rollback; fix the resource named above, then run "
            f"`aws cloudformation continue-update-rollback --stack-name {name}` (add --resources-to-skip "
            "LOGICAL_ID for one that cannot roll back) and deploy again once it is UPDATE_ROLLBACK_COMPLETE"
        )
    if stack.status == "UPDATE_ROLLBACK_COMPLETE":
        return "the update was rolled back and the stack is as it was before; fix the cause and deploy again"
    if stack.status == "DELETE_FAILED":
        return f"a delete failed; fix the cause and run `filefleet fleet destroy --stack-name {name}` again"
    if stack.in_progress:
        return "another operation is running; wait for it to finish (watch it with `filefleet fleet status`)"
    return "CloudFormation does not allow an update in this state"


def last_failure(cloudformation: Client, stack_id: str) -> str | None:
    """The newest root-cause failure in the stack's recent events: 'LogicalId: reason', or None."""
    try:
        events = cloudformation.describe_stack_events(StackName=stack_id).get("StackEvents", [])
    except ClientError:
        return None  # only decorates a message; never hide the message itself behind this
    for event in events:  # newest first
        reason = str(event.get("ResourceStatusReason") or "")
        if event.get("ResourceStatus", "").endswith("_FAILED") and reason and _USER_CANCELLED not in reason:
            return f"{event.get('LogicalResourceId')}: {reason}"
    return None
