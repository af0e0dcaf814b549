"""BacklogPerInstance: the metric the fleet's target tracking policy scales on.

What we measure, and why (AWS EC2 Auto Scaling user guide, "Scaling policy based on Amazon SQS",
https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-using-sqs-queue.html):

* backlog = the queue attribute ``ApproximateNumberOfMessages``, "the approximate number of messages available
  for retrieval from the queue" (SQS API reference, GetQueueAttributes). In-flight messages
  (``ApproximateNumberOfMessagesNotVisible``) are already being worked on and delayed ones cannot be received
  yet, so neither asks for more instances. CloudWatch publishes the same quantity as the *metric*
  ``AWS/SQS ApproximateNumberOfMessagesVisible``; the queue *attribute* of that meaning is
  ``ApproximateNumberOfMessages``.
* instances = the group's "running capacity, which for an Auto Scaling group is the number of instances in the
  ``InService`` state", counted from DescribeAutoScalingGroups. Not ``DesiredCapacity`` (the guide's defect,
  DESIGN.md §5): desired counts instances that are still booting (``Pending``), instances taken out with
  ``Standby``, and it moves before the fleet does. ``Pending*``, ``Terminating*``, ``EnteringStandby``,
  ``Standby``, ``Detaching`` and ``Warmed:*`` (warm pool; not listed by DescribeAutoScalingGroups anyway, and
  not allowed with our mixed-instances group) are all left out, as the group metric GroupInServiceInstances
  does. Each instance counts 1: the fleet's instance types are all ".medium" and the group sets no weights.
* backlog per instance = backlog ÷ instances, published every minute with dimension AutoScalingGroupName,
  namespace/metric name from BacklogSettings (the guide's CISFileProcessor / BacklogPerInstance, target 30).

Zero instances, the case division cannot answer: see :func:`backlog_per_instance`.

Nothing here builds a client at import: the CLI passes a session to :func:`run`; the Lambda entry point
:func:`lambda_handler` builds its clients at its first invocation and reuses them while the container lives.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.aws import client_config, is_missing_queue
from app.config import BacklogSettings, ConfigError, log_level_from_env, region_from_env
from app.errors import classify_aws_error
from app.logs import configure_logging

log = logging.getLogger(__name__)

# boto3-stubs for autoscaling and cloudwatch are not installed, so these clients are typed loosely. With
# `boto3-stubs[autoscaling,cloudwatch]` they would be mypy_boto3_autoscaling.AutoScalingClient and
# mypy_boto3_cloudwatch.CloudWatchClient (and mypy_boto3_sqs.SQSClient for the queue).
SqsClient = Any
AutoScalingClient = Any
CloudWatchClient = Any

IN_SERVICE = "InService"
VISIBLE_MESSAGES_METRIC = "VisibleMessages"
IN_SERVICE_INSTANCES_METRIC = "InServiceInstances"
GROUP_DIMENSION = "AutoScalingGroupName"
# MetricDatum.StorageResolution: 60 = standard 1-minute resolution (1 would be high resolution, billed as
# such). The reading is taken once a minute (an EventBridge schedule cannot fire more often), so a
# sub-minute resolution would store nothing finer. CloudWatch API reference, MetricDatum.
STORAGE_RESOLUTION_SECONDS = 60
# A reading is worth one minute: fail fast rather than publish a stale one late. Connect timeout, retry
# mode and attempts stay the project's (app.aws.client_config).
_READ_TIMEOUT_SECONDS = 10


class BacklogSourceMissing(ConfigError):
    """The queue or the Auto Scaling group named in the settings does not exist: an operator must fix it."""


@dataclass(frozen=True, kw_only=True)
class BacklogReading:
    """One measurement: the two inputs, when they were read, and the value derived from them."""

    visible_messages: int
    in_service_instances: int
    desired_capacity: int  # logged to explain a reading (booting instances); never divides anything
    measured_at: datetime

    @property
    def backlog_per_instance(self) -> float:
        return backlog_per_instance(self.visible_messages, self.in_service_instances)

    @property
    def needs_scale_from_zero(self) -> bool:
        """Work is waiting and no instance can take it: the fleet template's scale-from-zero alarm case."""
        return self.in_service_instances == 0 and self.visible_messages > 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: what the Lambda returns and what the log line carries."""
        return {
            "visible_messages": self.visible_messages,
            "in_service_instances": self.in_service_instances,
            "desired_capacity": self.desired_capacity,
            "backlog_per_instance": self.backlog_per_instance,
            "needs_scale_from_zero": self.needs_scale_from_zero,
            "measured_at": self.measured_at.isoformat(),
        }

    def summary(self, *, dry_run: bool = False) -> str:
        """One line for a person at a terminal."""
        text = (
            f"backlog per instance {self.backlog_per_instance:g}: {self.visible_messages} visible "
            f"message(s), {self.in_service_instances} in-service instance(s) "
            f"(desired {self.desired_capacity})"
        )
        if self.needs_scale_from_zero:
            text += "; work waiting and no instance in service: the scale-from-zero alarm's case"
        return text + ("; dry run, nothing published" if dry_run else "")


def backlog_per_instance(visible_messages: int, in_service_instances: int) -> float:
    """Visible messages ÷ in-service instances; at 0 instances, the backlog one first instance would face.

    * instances > 0: ``visible / instances`` (the AWS guide's definition; a float, not rounded: the policy
      averages it and rounding would hide a backlog of a few messages per instance).
    * instances == 0 and visible == 0: ``0.0``. Nothing to do; a value (rather than no data) lets the policy
      see low utilisation, because target tracking does not scale in on missing data.
    * instances == 0 and visible > 0: ``float(visible)``, i.e. the backlog divided by one instance, the
      convention of the guide's own Lambda and of AWS Copilot's backlog-per-task Lambda
      (aws/copilot-cli cf-custom-resources/lib/backlog-per-task-calculator.js: "If there are no running task,
      we return the total number of messages in the queue so that we can start scaling up"). It is the value
      the metric will have once one instance is in service, so the policy's proportional arithmetic, if it
      acts at all, asks for ceil(visible / target) instances: the fleet the backlog needs, never a sentinel
      that would throw the group to its maximum.

    What this does NOT achieve, said plainly: target tracking scales out only when the metric is *above* the
    target (EC2 Auto Scaling user guide, target tracking considerations), so 1 to 30 waiting messages at 0
    instances (target 30) never breach its high alarm and the queue would wait forever. Copilot users hit
    exactly that (aws/copilot-cli#3376). Whether EC2 Auto Scaling's target tracking acts at all from a
    current capacity of 0 is not documented in any source we found, and the metric-math variant of the
    policy cannot act there (division by zero drops the data point, DESIGN.md §3). So scaling from zero is
    NOT left to target tracking: the fleet template adds a separate alarm, VisibleMessages > 0 while
    InServiceInstances == 0 (both published by :func:`publish`), driving a step policy that adds one
    instance. Above one instance, target tracking on this value takes over.
    """
    if visible_messages < 0 or in_service_instances < 0:
        raise ValueError(
            f"counts cannot be negative: visible_messages={visible_messages}, "
            f"in_service_instances={in_service_instances}"
        )
    return visible_messages / max(in_service_instances, 1)


def read_backlog(
    sqs: SqsClient,
    autoscaling: AutoScalingClient,
    settings: BacklogSettings,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BacklogReading:
    """GetQueueAttributes + DescribeAutoScalingGroups → a reading.

    Raises BacklogSourceMissing (a ConfigError) when the queue or the group does not exist, and the
    project's classified TransientError / PermanentError (app.errors) for anything else AWS refuses.
    """
    visible = _visible_messages(sqs, settings.queue_url)
    in_service, desired = _group_capacity(autoscaling, settings.autoscaling_group_name)
    return BacklogReading(
        visible_messages=visible,
        in_service_instances=in_service,
        desired_capacity=desired,
        measured_at=clock(),
    )


def metric_data(settings: BacklogSettings, reading: BacklogReading) -> list[dict[str, Any]]:
    """The PutMetricData entries: BacklogPerInstance plus its two inputs, same namespace and dimension.

    The inputs are published as metrics of their own because the ratio alone cannot tell 30 messages on one
    instance from 3,000 on a hundred, nor an idle empty fleet from a stuck one; and the scale-from-zero alarm
    needs exactly "messages > 0 and instances == 0", which these two answer at our 1-minute cadence without
    relying on the group's metrics collection (GroupInServiceInstances is only published when it is enabled).
    Two more custom metrics cost two more metric-months; that is the price of a fleet that can start.

    Unit Count throughout, as the guide's Lambda published it. The guide's policy names no Unit, which matches
    any; a policy that does name one (the AWS guide's example says "None") only sees data published with
    that unit, so keep the two in step. The AutoScalingGroupName dimension must match the policy's
    CustomizedMetricSpecification exactly.
    """
    dimensions = [{"Name": GROUP_DIMENSION, "Value": settings.autoscaling_group_name}]

    def datum(name: str, value: float) -> dict[str, Any]:
        return {
            "MetricName": name,
            "Dimensions": dimensions,
            # The minute the inputs were read, not the minute a retried call finally landed.
            "Timestamp": reading.measured_at,
            "Value": float(value),
            "Unit": "Count",
            "StorageResolution": STORAGE_RESOLUTION_SECONDS,
        }

    return [
        datum(settings.metric_name, reading.backlog_per_instance),
        datum(VISIBLE_MESSAGES_METRIC, reading.visible_messages),
        datum(IN_SERVICE_INSTANCES_METRIC, reading.in_service_instances),
    ]


def publish(cloudwatch: CloudWatchClient, settings: BacklogSettings, reading: BacklogReading) -> None:
    """One PutMetricData call (up to 1,000 data points are allowed per call; we send three)."""
    try:
        cloudwatch.put_metric_data(Namespace=settings.namespace, MetricData=metric_data(settings, reading))
    except (ClientError, BotoCoreError) as exc:
        raise classify_aws_error(exc, action="publishing the backlog metric to CloudWatch") from exc


@dataclass(frozen=True)
class _Clients:
    sqs: SqsClient
    autoscaling: AutoScalingClient
    cloudwatch: CloudWatchClient

    @classmethod
    def from_session(cls, session: boto3.session.Session) -> _Clients:
        config = client_config(pool_size=1).merge(Config(read_timeout=_READ_TIMEOUT_SECONDS))
        return cls(
            sqs=session.client("sqs", config=config),
            autoscaling=session.client("autoscaling", config=config),
            cloudwatch=session.client("cloudwatch", config=config),
        )


def run(settings: BacklogSettings, session: boto3.session.Session, *, dry_run: bool) -> BacklogReading:
    """Measure, publish unless ``dry_run``, log one JSON line, return the reading (the CLI's entry point)."""
    return _measure(_Clients.from_session(session), settings, dry_run=dry_run)


def _measure(clients: _Clients, settings: BacklogSettings, *, dry_run: bool) -> BacklogReading:
    reading = read_backlog(clients.sqs, clients.autoscaling, settings)
    if not dry_run:
        publish(clients.cloudwatch, settings, reading)
    log.info(
        "backlog.dry_run" if dry_run else "backlog.published",
        extra=report(settings, reading, dry_run=dry_run),
    )
    return reading


def report(settings: BacklogSettings, reading: BacklogReading, *, dry_run: bool) -> dict[str, Any]:
    """The reading and where it went: the log line's fields and the Lambda's return value."""
    return {
        **reading.as_dict(),
        "namespace": settings.namespace,
        "metric_name": settings.metric_name,
        "auto_scaling_group_name": settings.autoscaling_group_name,
        "published": not dry_run,
    }


# The Lambda container outlives one invocation: clients built at the first call are reused, per region.
_lambda_clients: dict[str, _Clients] = {}


def lambda_handler(event: Mapping[str, Any] | None, context: object) -> dict[str, Any]:
    """The Lambda entry point, run every minute by an EventBridge schedule.

    Settings come from the function's environment (SQS_QUEUE_URL, AUTOSCALING_GROUP_NAME, and optionally
    METRIC_NAMESPACE, BACKLOG_METRIC_NAME, LOG_LEVEL). ``{"dry_run": true}`` as the event measures without
    publishing (a console test). Returns the reading as a JSON-able dict. A failure is logged as one JSON line
    and raised, so the invocation counts in the function's Errors metric; the missing data point makes target
    tracking hold the current capacity rather than guess.
    """
    env = os.environ
    configure_logging(log_level_from_env(env))
    dry_run = bool(event.get("dry_run")) if isinstance(event, Mapping) else False
    try:
        settings = BacklogSettings.from_env(env)
        region = region_from_env(env, queue_url=settings.queue_url)
        clients = _lambda_clients.get(region)
        if clients is None:
            clients = _lambda_clients[region] = _Clients.from_session(
                boto3.session.Session(region_name=region)
            )
        reading = _measure(clients, settings, dry_run=dry_run)
    except Exception as exc:  # logged as one JSON line, then raised unchanged
        log.error("backlog.failed", extra={"error": str(exc), "error_class": type(exc).__name__})
        raise
    return report(settings, reading, dry_run=dry_run)


def _visible_messages(sqs: SqsClient, queue_url: str) -> int:
    try:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
    except ClientError as exc:
        if is_missing_queue(exc):
            raise BacklogSourceMissing(f"SQS_QUEUE_URL={queue_url!r}: no such queue") from exc
        raise classify_aws_error(exc, action="reading the queue depth") from exc
    except BotoCoreError as exc:
        raise classify_aws_error(exc, action="reading the queue depth") from exc
    return int(attributes["ApproximateNumberOfMessages"])


def _group_capacity(autoscaling: AutoScalingClient, group_name: str) -> tuple[int, int]:
    """(in-service instances, desired capacity) of the group."""
    try:
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])[
            "AutoScalingGroups"
        ]
    except (ClientError, BotoCoreError) as exc:
        raise classify_aws_error(exc, action="describing the Auto Scaling group") from exc
    # DescribeAutoScalingGroups answers an unknown name with an empty list, not an error.
    group = next((g for g in groups if g.get("AutoScalingGroupName") == group_name), None)
    if group is None:
        region = autoscaling.meta.region_name
        raise BacklogSourceMissing(
            f"AUTOSCALING_GROUP_NAME={group_name!r}: no such Auto Scaling group in {region}"
        )
    in_service = sum(
        1 for instance in group.get("Instances", []) if instance.get("LifecycleState") == IN_SERVICE
    )
    return in_service, int(group.get("DesiredCapacity", 0))
