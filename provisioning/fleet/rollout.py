"""`fleet rollout --ami`: the stack's AmiId changes, then an instance refresh replaces the instances.

Order and why:

1. Refuse early: the stack must be updatable, the AMI must exist, and no refresh may be running already.
2. Note the group's launch template setting now: it is what a rollback must return to.
3. Update only AmiId (every other parameter and the template are kept) through a reviewed change set.
   CloudFormation makes a new launch template version and points the group at it.
4. Point the group back at the noted version and start a refresh whose desired configuration is the new one
   (refresh.py says why: otherwise the API's rollback would "roll back" to the new AMI).
5. Follow the refresh until it ends.

Re-running the same rollout after an interruption resumes it: the stack update is then "nothing to do", and
the refresh still starts when instances run another version. ``--rollback`` undoes a running refresh with
the API's rollback, then sets the stack's AmiId back to the AMI the group returned to, so the stack again
says what runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisioning.fleet.ami import require_ami
from provisioning.fleet.aws import FleetAws
from provisioning.fleet.confirm import confirm
from provisioning.fleet.deploy import Outcome, StackChange, apply_change
from provisioning.fleet.errors import FleetConfigError, FleetFailure
from provisioning.fleet.parameters import AMI_PARAMETER
from provisioning.fleet.polling import Polling
from provisioning.fleet.refresh import (
    ROLLBACK_SUCCESSFUL,
    SUCCESSFUL,
    LaunchConfig,
    describe_group,
    ensure_no_active_refresh,
    follow_refresh,
    instances_off_version,
    restore_launch_config,
    start_refresh,
    start_rollback,
)
from provisioning.fleet.stack import Stack, ensure_updatable, require_stack

Say = Callable[[str], None]
GROUP_OUTPUT = "AutoScalingGroupName"
LAUNCH_TEMPLATE_OUTPUT = "LaunchTemplateId"
WARMUP_PARAMETER = "InstanceWarmup"


@dataclass(frozen=True)
class RolloutRequest:
    stack_name: str
    ami: str
    min_healthy_percentage: int
    skip_matching: bool
    assume_yes: bool


def rollout(aws: FleetAws, request: RolloutRequest, *, polling: Polling, say: Say) -> int:
    cloudformation, autoscaling = aws.cloudformation, aws.autoscaling
    stack = require_stack(cloudformation, request.stack_name)
    ensure_updatable(cloudformation, stack)
    if AMI_PARAMETER not in stack.parameters:
        raise FleetConfigError(f"stack {stack.name} has no {AMI_PARAMETER} parameter to roll out")
    group_name, template_id = stack.output(GROUP_OUTPUT), stack.output(LAUNCH_TEMPLATE_OUTPUT)
    say(f"AMI {request.ami} ({require_ami(aws.ec2, request.ami)}) is available in {aws.region}.")
    ensure_no_active_refresh(autoscaling, group_name)
    before = LaunchConfig.from_group(describe_group(autoscaling, group_name))

    outcome, _ = apply_change(
        aws,
        _ami_change(stack, request.ami, question="Update AmiId, then replace the group's instances?"),
        assume_yes=request.assume_yes,
        polling=polling,
        say=say,
    )
    if outcome is Outcome.DECLINED:
        return 1
    target = before.at_version(_latest_version(aws, template_id))
    return _replace_instances(
        aws, stack, group_name, before=before, target=target, request=request, polling=polling, say=say
    )


def _replace_instances(
    aws: FleetAws,
    stack: Stack,
    group_name: str,
    *,
    before: LaunchConfig,
    target: LaunchConfig,
    request: RolloutRequest,
    polling: Polling,
    say: Say,
) -> int:
    autoscaling = aws.autoscaling
    group = describe_group(autoscaling, group_name)
    current = LaunchConfig.from_group(group)
    if (
        request.skip_matching
        and current.version == target.version
        and not instances_off_version(group, target)
    ):
        say(f"Every instance of {group_name} already runs launch template version {target.version}: done.")
        return 0
    if current.version != before.version and before.numbered:
        restore_launch_config(autoscaling, group_name, before)
        say(f"Group {group_name} back on version {before.version} until the refresh moves it (rollback).")
    elif not before.numbered:
        say(f"Group {group_name} used version {before.version!r}: this refresh cannot be rolled back.")

    refresh_id = start_refresh(
        autoscaling,
        group_name,
        desired=target,
        min_healthy_percentage=request.min_healthy_percentage,
        skip_matching=request.skip_matching,
        instance_warmup=_warmup(stack),
    )
    say(f"Instance refresh {refresh_id} on {group_name}: launch template version {target.version}.")
    final = follow_refresh(autoscaling, group_name, refresh_id, polling=polling, say=say)
    if final.get("Status") != SUCCESSFUL:
        raise FleetFailure(f"instance refresh {refresh_id} ended {_ending(final)}")
    say(f"Rollout of {request.ami} to {group_name} complete.")
    return 0


def rollback(aws: FleetAws, *, stack_name: str, assume_yes: bool, polling: Polling, say: Say) -> int:
    cloudformation, autoscaling = aws.cloudformation, aws.autoscaling
    stack = require_stack(cloudformation, stack_name)
    group_name = stack.output(GROUP_OUTPUT)
    if not confirm(f"Roll back the instance refresh running on {group_name}?", assume_yes=assume_yes):
        say("Nothing rolled back.")
        return 1
    refresh_id = start_rollback(autoscaling, group_name)
    say(f"Rolling back instance refresh {refresh_id} on {group_name}:")
    final = follow_refresh(autoscaling, group_name, refresh_id, polling=polling, say=say)
    if final.get("Status") != ROLLBACK_SUCCESSFUL:
        raise FleetFailure(f"the rollback of {refresh_id} ended {_ending(final)}")
    config = LaunchConfig.from_group(describe_group(autoscaling, group_name))
    ami = _image_of(aws, config)
    say(f"Group {group_name} is back on launch template version {config.version} ({ami}).")
    stack = require_stack(cloudformation, stack_name)  # read again: the rollback may have taken an hour
    if stack.parameters.get(AMI_PARAMETER) != ami:
        # Otherwise the stack would claim the undone AMI, and the next deploy would quietly keep it.
        ensure_updatable(cloudformation, stack)
        say(f"Setting the stack's {AMI_PARAMETER} back to {ami} to match:")
        apply_change(aws, _ami_change(stack, ami, question=""), assume_yes=True, polling=polling, say=say)
    return 0


def _ami_change(stack: Stack, ami: str, *, question: str) -> StackChange:
    kept = [
        {"ParameterKey": key, "UsePreviousValue": True} for key in stack.parameters if key != AMI_PARAMETER
    ]
    return StackChange(
        stack_name=stack.name,
        kind="UPDATE",
        template={"UsePreviousTemplate": True},
        parameters=[{"ParameterKey": AMI_PARAMETER, "ParameterValue": ami}, *kept],
        deployed_parameters=stack.parameters,
        purpose="rollout",
        question=question,
    )


def _latest_version(aws: FleetAws, template_id: str) -> int:
    templates = aws.ec2.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"]
    return int(templates[0]["LatestVersionNumber"])


def _image_of(aws: FleetAws, config: LaunchConfig) -> str:
    versions = aws.ec2.describe_launch_template_versions(
        LaunchTemplateId=config.template_id, Versions=[config.version]
    )["LaunchTemplateVersions"]
    return str(versions[0]["LaunchTemplateData"]["ImageId"])


def _warmup(stack: Stack) -> int | None:
    value = stack.parameters.get(WARMUP_PARAMETER, "")
    return int(value) if value.isdigit() else None


def _ending(refresh: dict[str, Any]) -> str:
    return f"{refresh.get('Status')}: {refresh.get('StatusReason') or 'no reason given'}"
