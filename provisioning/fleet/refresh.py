"""Instance refreshes: replace the group's instances with its new launch template version, or roll back.

Why the refresh names its target (DesiredConfiguration) instead of relying on the group's settings: EC2 Auto
Scaling can only roll a refresh back when it was started with a desired configuration at a numbered launch
template version, and it rolls back to "the configuration the group was using before the refresh started"
(RollbackInstanceRefresh, API reference). CloudFormation's stack update has already moved the group to the
new version by then, so a refresh started after it would "roll back" to the new AMI, replacing instances
with the very image being undone (hashicorp/terraform-provider-aws#34189 hit exactly this). So the rollout
puts the group's launch template setting back to what it was (:func:`restore_launch_config`) and starts the
refresh with the stack's new version as its desired configuration: on success EC2 Auto Scaling itself
leaves the group on the new version, which is what CloudFormation recorded; on rollback, on the old one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from provisioning.fleet.aws import Client
from provisioning.fleet.errors import FleetConfigError, FleetFailure
from provisioning.fleet.polling import Polling

Say = Callable[[str], None]
ACTIVE = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
SUCCESSFUL = "Successful"
ROLLBACK_SUCCESSFUL = "RollbackSuccessful"
_RECENT_REFRESHES = 10
# Instances protected from scale in are busy workers (the worker protects itself while it holds files).
# "Wait" lets them finish and drop the protection before they are replaced (the default, "Ignore", would
# silently leave them on the old AMI; "Refresh" would replace them mid-file).
_PROTECTED_INSTANCES = "Wait"


@dataclass(frozen=True)
class LaunchConfig:
    """A group's launch template setting, in the shape UpdateAutoScalingGroup and DesiredConfiguration take.

    ``mixed`` is the group's MixedInstancesPolicy (overrides, On-Demand/Spot distribution) when it has one;
    the launch template inside it is ``template_id`` at ``version``.
    """

    template_id: str
    version: str
    mixed: dict[str, Any] | None

    @classmethod
    def from_group(cls, group: dict[str, Any]) -> LaunchConfig:
        policy = group.get("MixedInstancesPolicy") or None
        spec = (
            policy["LaunchTemplate"]["LaunchTemplateSpecification"] if policy else group.get("LaunchTemplate")
        )
        if not spec or not spec.get("LaunchTemplateId"):
            raise FleetConfigError(
                f"group {group.get('AutoScalingGroupName')} does not use a launch template: "
                "an instance refresh needs one"
            )
        return cls(template_id=spec["LaunchTemplateId"], version=str(spec.get("Version", "")), mixed=policy)

    @property
    def numbered(self) -> bool:
        return self.version.isdigit()

    def at_version(self, version: int | str) -> LaunchConfig:
        return replace(self, version=str(version))

    def as_request(self) -> dict[str, Any]:
        """{"LaunchTemplate": ...} or {"MixedInstancesPolicy": ...}: a request fragment both APIs accept."""
        spec = {"LaunchTemplateId": self.template_id, "Version": self.version}
        if self.mixed is None:
            return {"LaunchTemplate": spec}
        launch_template = self.mixed.get("LaunchTemplate", {})
        policy: dict[str, Any] = {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": spec,
                "Overrides": [_override(o) for o in launch_template.get("Overrides", [])],
            }
        }
        if distribution := self.mixed.get("InstancesDistribution"):
            policy["InstancesDistribution"] = _distribution(distribution)
        return {"MixedInstancesPolicy": policy}


def _override(override: dict[str, Any]) -> dict[str, Any]:
    # Describe answers both the id and the name of a launch template; a request may carry only one.
    cleaned = dict(override)
    if spec := cleaned.get("LaunchTemplateSpecification"):
        cleaned["LaunchTemplateSpecification"] = {
            k: v for k, v in spec.items() if k != "LaunchTemplateName" or "LaunchTemplateId" not in spec
        }
    return cleaned


def _distribution(distribution: dict[str, Any]) -> dict[str, Any]:
    cleaned = {k: v for k, v in distribution.items() if v not in (None, "")}
    # Describe reports a pool count even for capacity-optimized Spot; it only applies to lowest-price.
    if cleaned.get("SpotAllocationStrategy", "lowest-price") != "lowest-price":
        cleaned.pop("SpotInstancePools", None)
    return cleaned


def describe_group(autoscaling: Client, group_name: str) -> dict[str, Any]:
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    if not groups:
        raise FleetConfigError(f"Auto Scaling group {group_name} does not exist (the stack names it)")
    group: dict[str, Any] = groups[0]
    return group


def instances_off_version(group: dict[str, Any], config: LaunchConfig) -> int:
    """How many of the group's instances were not launched from ``config``'s launch template version."""
    return sum(
        1
        for instance in group.get("Instances", [])
        if (instance.get("LaunchTemplate") or {}).get("Version") != config.version
    )


def ensure_no_active_refresh(autoscaling: Client, group_name: str) -> None:
    refreshes = autoscaling.describe_instance_refreshes(
        AutoScalingGroupName=group_name, MaxRecords=_RECENT_REFRESHES
    ).get("InstanceRefreshes", [])
    for refresh in refreshes:
        if refresh.get("Status") in ACTIVE:
            raise FleetConfigError(
                f"instance refresh {refresh.get('InstanceRefreshId')} on {group_name} is "
                f"{refresh.get('Status')}: wait for it, or undo it with `filefleet fleet rollout --rollback`"
            )


def restore_launch_config(autoscaling: Client, group_name: str, config: LaunchConfig) -> None:
    """Set the group's launch template back to ``config`` (see the module docstring for why)."""
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=group_name, **config.as_request())


def start_refresh(
    autoscaling: Client,
    group_name: str,
    *,
    desired: LaunchConfig,
    min_healthy_percentage: int,
    skip_matching: bool,
    instance_warmup: int | None,
) -> str:
    preferences: dict[str, Any] = {
        "MinHealthyPercentage": min_healthy_percentage,
        "SkipMatching": skip_matching,
        "ScaleInProtectedInstances": _PROTECTED_INSTANCES,
    }
    if instance_warmup is not None:
        preferences["InstanceWarmup"] = instance_warmup
    try:
        started = autoscaling.start_instance_refresh(
            AutoScalingGroupName=group_name,
            Strategy="Rolling",
            DesiredConfiguration=desired.as_request(),
            Preferences=preferences,
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InstanceRefreshInProgress":
            raise FleetConfigError(
                f"an instance refresh is already running on {group_name}: wait for it, or "
                "`filefleet fleet rollout --rollback`"
            ) from exc
        raise
    return str(started["InstanceRefreshId"])


def start_rollback(autoscaling: Client, group_name: str) -> str:
    try:
        started = autoscaling.rollback_instance_refresh(AutoScalingGroupName=group_name)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code"), error.get("Message", "")
        if code == "ActiveInstanceRefreshNotFound":
            raise FleetConfigError(
                f"no instance refresh is running on {group_name}, so there is nothing to roll back; to go "
                "back to an earlier AMI, run `filefleet fleet rollout --ami ami-...` with it"
            ) from exc
        if code == "IrreversibleInstanceRefresh":
            raise FleetConfigError(
                f"the instance refresh on {group_name} cannot be rolled back ({message}); "
                "run `filefleet fleet rollout --ami ami-...` with the previous AMI instead"
            ) from exc
        raise
    return str(started["InstanceRefreshId"])


def progress_line(refresh: dict[str, Any]) -> str:
    status = refresh.get("Status", "?")
    rollback = refresh.get("RollbackDetails") or {}
    if status.startswith("Rollback") and rollback:
        percent = rollback.get("PercentageCompleteOnRollback", 0)
        remaining = rollback.get("InstancesToUpdateOnRollback", "?")
        reason = rollback.get("RollbackReason") or refresh.get("StatusReason")
    else:
        percent = refresh.get("PercentageComplete", 0)
        remaining = refresh.get("InstancesToUpdate", "?")
        reason = refresh.get("StatusReason")
    line = f"  {status:<20} {percent:>3}% complete, {remaining} instance(s) to update"
    return f"{line}  {reason}" if reason else line


def follow_refresh(
    autoscaling: Client, group_name: str, refresh_id: str, *, polling: Polling, say: Say
) -> dict[str, Any]:
    """Print progress whenever it changes until the refresh is no longer active; return its last state."""
    last: list[str] = []

    def finished() -> dict[str, Any] | None:
        found = autoscaling.describe_instance_refreshes(
            AutoScalingGroupName=group_name, InstanceRefreshIds=[refresh_id]
        ).get("InstanceRefreshes", [])
        if not found:
            raise FleetFailure(f"instance refresh {refresh_id} on {group_name} is not listed any more")
        line = progress_line(found[0])
        if line not in last[-1:]:
            say(line)
            last.append(line)
        refresh: dict[str, Any] = found[0]
        return None if refresh.get("Status") in ACTIVE else refresh

    return polling.until(
        finished,
        waiting_for=f"instance refresh {refresh_id} on {group_name}",
        on_timeout="the refresh goes on: watch it with `filefleet fleet status`",
    )
