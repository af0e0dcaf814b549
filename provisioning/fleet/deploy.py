"""`fleet deploy`: create or update the stack through a change set the operator has seen.

Also home of :func:`apply_change`, the create → show → confirm → execute → follow sequence that `rollout`
uses for its AmiId update too, so every stack change made with these commands is reviewed the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from provisioning.fleet.ami import require_ami
from provisioning.fleet.aws import FleetAws
from provisioning.fleet.changeset import (
    ChangeSetType,
    create_change_set,
    discard,
    execute_change_set,
)
from provisioning.fleet.confirm import confirm
from provisioning.fleet.diff import render_change_set
from provisioning.fleet.errors import FleetConfigError
from provisioning.fleet.parameters import AMI_PARAMETER, plan_parameters
from provisioning.fleet.polling import Polling
from provisioning.fleet.progress import follow_stack, latest_event_id
from provisioning.fleet.stack import Stack, ensure_updatable, find_stack
from provisioning.fleet.template import load_template

Say = Callable[[str], None]


class Outcome(Enum):
    APPLIED = "applied"
    NOTHING_TO_DO = "nothing to do"
    DECLINED = "declined"


@dataclass(frozen=True)
class StackChange:
    """One reviewed change of one stack."""

    stack_name: str
    kind: ChangeSetType
    template: dict[str, Any]  # TemplateBody, TemplateURL, or UsePreviousTemplate
    parameters: list[dict[str, Any]]
    deployed_parameters: Mapping[str, str]  # what the diff compares against
    purpose: str  # "deploy", "rollout": names the change set
    question: str


def apply_change(
    aws: FleetAws, change: StackChange, *, assume_yes: bool, polling: Polling, say: Say
) -> tuple[Outcome, Stack | None]:
    cloudformation = aws.cloudformation
    change_set = create_change_set(
        cloudformation,
        stack_name=change.stack_name,
        kind=change.kind,
        template=change.template,
        parameters=change.parameters,
        polling=polling,
        purpose=change.purpose,
    )
    if change_set is None:
        say(f"Nothing to do: stack {change.stack_name} already matches the template and parameters.")
        return Outcome.NOTHING_TO_DO, None
    for line in render_change_set(change_set, change.deployed_parameters):
        say(line)
    try:
        agreed = confirm(change.question, assume_yes=assume_yes)
    except (FleetConfigError, KeyboardInterrupt):
        discard(cloudformation, change_set)  # no answer: leave no change set waiting to be executed
        raise
    if not agreed:
        discard(cloudformation, change_set)
        say("Not executed; the change set was deleted.")
        return Outcome.DECLINED, None
    marker = latest_event_id(cloudformation, change_set.stack_id)
    execute_change_set(cloudformation, change_set)
    say(f"Executing {change_set.name}:")
    stack = follow_stack(cloudformation, change_set.stack_id, since=marker, polling=polling, say=say)
    say(f"Stack {stack.name} is {stack.status}.")
    return Outcome.APPLIED, stack


@dataclass(frozen=True)
class DeployRequest:
    stack_name: str
    template_path: Path | None  # None: the packaged fleet.yaml
    template_bucket: str | None  # where a template too large to send inline is uploaded
    parameters: dict[str, str]
    assume_yes: bool


def deploy(aws: FleetAws, request: DeployRequest, *, polling: Polling, say: Say) -> int:
    cloudformation = aws.cloudformation
    template = load_template(aws, request.template_path, bucket=request.template_bucket)
    existing = find_stack(cloudformation, request.stack_name)
    updating = existing is not None and existing.has_resources
    if existing is not None and updating:
        ensure_updatable(cloudformation, existing)
    deployed = existing.parameters if existing is not None and updating else {}
    plan = plan_parameters(template, request.parameters, deployed if updating else None)
    ami = plan.given.get(AMI_PARAMETER)
    if ami is None and not updating and AMI_PARAMETER in template.parameters:
        ami = template.parameters[AMI_PARAMETER].default or None
    if ami:
        say(f"AMI {ami} ({require_ami(aws.ec2, ami)}) is available in {aws.region}.")
    verb = "Updating" if updating else "Creating"
    say(f"{verb} stack {request.stack_name} in {aws.region} from {template.source}.")
    outcome, stack = apply_change(
        aws,
        StackChange(
            stack_name=request.stack_name,
            kind="UPDATE" if updating else "CREATE",
            template=template.as_api(),
            parameters=plan.as_api(),
            deployed_parameters=deployed,
            purpose="deploy",
            question=f"Execute this change set on stack {request.stack_name}?",
        ),
        assume_yes=request.assume_yes,
        polling=polling,
        say=say,
    )
    if outcome is Outcome.DECLINED:
        return 1
    shown = stack if stack is not None else existing
    if shown is not None:
        for line in output_lines(shown):
            say(line)
    return 0


def output_lines(stack: Stack) -> list[str]:
    if not stack.outputs:
        return [f"Stack {stack.name} reports no outputs."]
    width = max(len(key) for key in stack.outputs)
    return ["Outputs:", *(f"  {key:<{width}}  {value}" for key, value in sorted(stack.outputs.items()))]
