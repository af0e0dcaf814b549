"""The lifecycle package as the CLI sees it: start it beside the worker, report the drain's end, stop it.

```
lifecycle = Lifecycle.start(settings.lifecycle, clients.session, drain, stats=stats,
                            worker_idle=worker.idle_seconds)     # None: off EC2, nothing to do
result = worker.run(...)
if lifecycle is not None:
    lifecycle.after_drain(result.cause)                          # completes the hook when due
    lifecycle.stop()
```

What it decides:
- IMDS is probed once (1 s budget). Off EC2, or with AWS_EC2_METADATA_DISABLED=true, it returns None after one
  INFO line; nothing else is started and no AWS client is built.
- The Spot, rebalance and target-lifecycle-state monitors always run on EC2: a Spot instance outside any
  group still drains on its notice.
- The group (AUTOSCALING_GROUP_NAME, else DescribeAutoScalingInstances) is looked up only when a hook or
  scale-in protection needs it, so a plain instance needs no Auto Scaling permission at all.
- Heartbeats start when the watcher first sees target-lifecycle-state = Terminated (the hook's wait has begun,
  whoever started the drain); ``after_drain`` stops them and completes the hook with CONTINUE when the
  Terminated state or a Spot notice was seen (it polls once more first, since the state may have turned
  Terminated during a SIGTERM drain).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from app.aws import client_config
from app.config import LifecycleSettings
from app.drain import DrainSignal
from app.lifecycle.autoscaling import LifecycleHook, ScaleInProtection
from app.lifecycle.imds import INSTANCE_ID_PATH, ImdsClient, ImdsError
from app.lifecycle.monitors import (
    SPOT_CAUSE_PREFIX,
    TERMINATED_CAUSE,
    Monitor,
    RebalanceMonitor,
    SpotInterruptionMonitor,
    TargetLifecycleStateMonitor,
)
from app.lifecycle.watcher import LifecycleWatcher
from app.stats import RunStats

log = logging.getLogger(__name__)

PROBE_BUDGET_SECONDS = 1.0
# Protection decisions need no IMDS and cost no call unless the state changes: check often, so protection
# is on within a second of the worker taking work.
PROTECTION_CHECK_SECONDS = 1.0


class Lifecycle:
    """The running monitors, watcher, hook and protection for this instance."""

    def __init__(
        self,
        *,
        instance_id: str,
        group: str | None,
        monitors: list[Monitor],
        drain: DrainSignal,
        interval: float,
        stats: RunStats,
        hook: LifecycleHook | None,
        protection: ScaleInProtection | None,
    ) -> None:
        self.instance_id = instance_id
        self.group = group
        self.hook = hook
        self.protection = protection
        self.watcher = LifecycleWatcher(
            monitors, drain, interval=interval, stats=stats, on_cause=self._on_cause
        )
        self._stopped = False
        self._finishing = False  # after_drain has begun: completion follows, no new heartbeats

    @classmethod
    def start(
        cls,
        settings: LifecycleSettings,
        session: boto3.session.Session,
        drain: DrainSignal,
        *,
        stats: RunStats,
        worker_idle: Callable[[], float],
        imds: ImdsClient | None = None,
        autoscaling_client: Any = None,
        heartbeat_interval: float | None = None,
    ) -> Lifecycle | None:
        """Start watching, or None (one INFO line) when there is no IMDS to watch.

        ``imds`` and ``autoscaling_client`` replace the ones built from the environment and ``session``;
        ``heartbeat_interval`` replaces the pace derived from the hook's HeartbeatTimeout (tests).
        """
        if imds is None:
            imds = ImdsClient.from_env(os.environ)
            if imds is None:
                return _off("AWS_EC2_METADATA_DISABLED=true")
        probe = imds.probe(budget=PROBE_BUDGET_SECONDS)
        if not probe.available:
            return _off(probe.reason or "IMDS unavailable", endpoint=imds.endpoint)
        try:
            instance_id = (imds.get(INSTANCE_ID_PATH) or "").strip()
        except ImdsError as exc:
            return _off(str(exc), endpoint=imds.endpoint)
        if not instance_id:
            return _off("IMDS has no instance-id", endpoint=imds.endpoint)

        group, client, initially_protected = None, None, None
        if settings.lifecycle_hook_name or settings.scale_in_protection:
            client = autoscaling_client or session.client("autoscaling", config=client_config(pool_size=2))
            group = settings.autoscaling_group_name
            if group is None:
                group, initially_protected = _discover_group(client, instance_id)
        hook = None
        if settings.lifecycle_hook_name and group is not None:
            hook = LifecycleHook.describe(
                client,
                group=group,
                hook_name=settings.lifecycle_hook_name,
                instance_id=instance_id,
                stats=stats,
                heartbeat_interval=heartbeat_interval,
            )
        protection = None
        if settings.scale_in_protection and group is not None:
            protection = ScaleInProtection(
                client,
                group,
                instance_id,
                idle_seconds=settings.protection_idle_seconds,
                worker_idle=worker_idle,
                interval=PROTECTION_CHECK_SECONDS,
                stats=stats,
                initially_protected=initially_protected,
            )
        monitors: list[Monitor] = [
            SpotInterruptionMonitor(imds),
            RebalanceMonitor(imds, drain_on_rebalance=settings.on_rebalance == "drain", stats=stats),
            TargetLifecycleStateMonitor(imds),
        ]
        lifecycle = cls(
            instance_id=instance_id,
            group=group,
            monitors=monitors,
            drain=drain,
            interval=settings.imds_poll_seconds,
            stats=stats,
            hook=hook,
            protection=protection,
        )
        lifecycle.watcher.start()
        if protection is not None:
            protection.start()
        log.info(
            "lifecycle.on",
            extra={
                "instance_id": instance_id,
                "group": group,
                "hook": hook.hook_name if hook else None,
                "scale_in_protection": protection is not None,
                "on_rebalance": settings.on_rebalance,
                "poll_s": settings.imds_poll_seconds,
            },
        )
        return lifecycle

    @property
    def terminating(self) -> bool:
        """The instance is going away for good: Auto Scaling's Terminated state or a Spot notice was seen."""
        return _terminating(self.watcher.causes_seen)

    def after_drain(self, result_cause: str) -> bool:
        """After the worker's drain: complete the hook if the instance is terminating; True if completed."""
        self._finishing = True
        self.watcher.poll_once()  # the state may have turned Terminated since the last poll
        if self.hook is None:
            return False
        if not _terminating((*self.watcher.causes_seen, result_cause)):
            self.hook.stop_heartbeats()
            log.info("lifecycle.hook_left_alone", extra={"cause": result_cause, "reason": "not terminating"})
            return False
        return self.hook.complete("CONTINUE")

    def stop(self) -> None:
        """Stop every thread (bounded waits); give up scale-in protection unless the instance is leaving."""
        if self._stopped:
            return
        self._stopped = True
        self.watcher.stop()
        if self.hook is not None:
            self.hook.stop_heartbeats()
        if self.protection is not None:
            self.protection.stop(release=not self.terminating)

    def _on_cause(self, cause: str) -> None:
        if cause == TERMINATED_CAUSE and self.hook is not None and not self._finishing:
            self.hook.start_heartbeats()


def _terminating(causes: tuple[str, ...]) -> bool:
    return any(cause == TERMINATED_CAUSE or cause.startswith(SPOT_CAUSE_PREFIX) for cause in causes)


def _off(reason: str, **fields: object) -> Lifecycle | None:
    """The one line saying lifecycle handling is off, and the None that ``start`` returns with it."""
    log.info("lifecycle.off", extra={"reason": reason, **fields})
    return None


def _discover_group(client: Any, instance_id: str) -> tuple[str | None, bool | None]:
    """The instance's group and protection, from DescribeAutoScalingInstances; (None, None) if none."""
    try:
        found = client.describe_auto_scaling_instances(InstanceIds=[instance_id]).get(
            "AutoScalingInstances", []
        )
    except (ClientError, BotoCoreError) as exc:  # only the hook and protection are lost: warn, go on
        log.warning(
            "lifecycle.group_lookup_failed",
            extra={
                "error": str(exc),
                "hint": "set AUTOSCALING_GROUP_NAME or grant autoscaling:DescribeAutoScalingInstances",
            },
        )
        return None, None
    if not found:
        log.info("lifecycle.not_in_group", extra={"instance_id": instance_id})
        return None, None
    details = found[0]
    return str(details["AutoScalingGroupName"]), details.get("ProtectedFromScaleIn")
