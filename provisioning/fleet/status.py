"""`fleet status`: the group, its instances, the queues and the backlog the group scales on, in one view.

Sources, so an operator knows how fresh each number is:

* capacity and instances: DescribeAutoScalingGroups; Spot or On-Demand from DescribeInstances
  (``InstanceLifecycle`` is "spot" for Spot instances and absent for On-Demand ones);
* queue depths: GetQueueAttributes, at the moment of asking;
* oldest message age: CloudWatch's AWS/SQS ``ApproximateAgeOfOldestMessage`` (Maximum, 1-minute periods,
  the newest point of the last 15 minutes). Reading the queue's own messages would need ReceiveMessage, which
  hides them from the workers for the visibility timeout: a status command must not take work away;
* backlog per instance: ``app.backlog.read_backlog``, the same reading the scaling metric is published from;
* scaling activities and their causes: DescribeScalingActivities. Spot interruptions and capacity rebalancing
  appear there as activities whose cause or description says so.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.backlog import IN_SERVICE, read_backlog
from app.config import BacklogSettings
from provisioning.fleet.aws import Client, FleetAws
from provisioning.fleet.parameters import AMI_PARAMETER
from provisioning.fleet.refresh import describe_group
from provisioning.fleet.stack import Stack, require_stack

GROUP_OUTPUT = "AutoScalingGroupName"
QUEUE_OUTPUT = "QueueUrl"
DEAD_LETTER_OUTPUT = "DeadLetterQueueUrl"
TARGET_PARAMETER = "TargetBacklogPerInstance"
SPOT, ON_DEMAND = "Spot", "On-Demand"
ACTIVITY_HISTORY = 50  # one DescribeScalingActivities page: where interruptions are looked for
AGE_WINDOW = timedelta(minutes=15)
AGE_SOURCE = "CloudWatch AWS/SQS ApproximateAgeOfOldestMessage, Maximum over 1 minute"
# AWS words these causes in several ways ("Spot Instance interruption notice", "rebalance recommendation",
# "Capacity Rebalancing"); match the stems rather than one exact sentence.
_INTERRUPTION = re.compile(r"spot\W+(?:instance\W+)?interrupt|interruption notice|rebalanc", re.IGNORECASE)


@dataclass(frozen=True)
class QueueDepth:
    url: str
    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


@dataclass(frozen=True)
class Instance:
    instance_id: str
    lifecycle_state: str
    health: str
    instance_type: str
    zone: str
    purchase: str  # Spot | On-Demand
    launch_template_version: str
    protected_from_scale_in: bool


@dataclass(frozen=True)
class Activity:
    start: str
    status: str
    description: str
    cause: str
    status_message: str = ""

    @property
    def is_interruption(self) -> bool:
        return bool(_INTERRUPTION.search(f"{self.cause} {self.description} {self.status_message}"))


@dataclass
class FleetStatus:
    stack: dict[str, Any]
    group: dict[str, Any]
    instances: list[Instance]
    queue: QueueDepth
    dead_letter_queue: QueueDepth | None
    oldest_message_age: dict[str, Any]
    backlog: dict[str, Any]
    activities: list[Activity]
    interruptions: list[Activity] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["purchase"] = dict(Counter(i.purchase for i in self.instances))
        data["instance_types"] = dict(Counter(i.instance_type for i in self.instances))
        return data


def gather(aws: FleetAws, stack_name: str, *, activities: int, now: datetime | None = None) -> FleetStatus:
    stack = require_stack(aws.cloudformation, stack_name)
    group_name, queue_url = stack.output(GROUP_OUTPUT), stack.output(QUEUE_OUTPUT)
    group = describe_group(aws.autoscaling, group_name)
    history = _activities(aws.autoscaling, group_name)
    reading = read_backlog(
        aws.sqs,
        aws.autoscaling,
        BacklogSettings(
            queue_url=queue_url,
            autoscaling_group_name=group_name,
            namespace="unused",  # read_backlog only reads; publishing is the Lambda's job
            metric_name="unused",
        ),
    )
    dead_letter_url = stack.outputs.get(DEAD_LETTER_OUTPUT)
    return FleetStatus(
        stack=_stack_summary(stack),
        group={
            "name": group_name,
            "desired": group.get("DesiredCapacity"),
            "min": group.get("MinSize"),
            "max": group.get("MaxSize"),
            "in_service": sum(1 for i in group.get("Instances", []) if i.get("LifecycleState") == IN_SERVICE),
        },
        instances=_instances(aws.ec2, group),
        queue=queue_depth(aws.sqs, queue_url),
        dead_letter_queue=queue_depth(aws.sqs, dead_letter_url) if dead_letter_url else None,
        oldest_message_age=_oldest_message_age(aws.cloudwatch, queue_url, now or datetime.now(UTC)),
        backlog={
            **reading.as_dict(),
            "target": stack.parameters.get(TARGET_PARAMETER),
        },
        activities=history[:activities],
        interruptions=[a for a in history if a.is_interruption],
    )


def _stack_summary(stack: Stack) -> dict[str, Any]:
    return {"name": stack.name, "status": stack.status, "ami": stack.parameters.get(AMI_PARAMETER)}


def queue_depth(sqs: Client, url: str) -> QueueDepth:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    visible, in_flight, delayed = (int(attributes.get(name, 0)) for name in names)
    return QueueDepth(url=url, visible=visible, in_flight=in_flight, delayed=delayed)


def _instances(ec2: Client, group: dict[str, Any]) -> list[Instance]:
    members = group.get("Instances", [])
    ids = [m["InstanceId"] for m in members]
    lifecycle: dict[str, str] = {}
    if ids:  # DescribeInstances with no ids describes every instance in the region
        paginator = ec2.get_paginator("describe_instances")
        for page in paginator.paginate(InstanceIds=ids):
            for reservation in page.get("Reservations", []):
                for found in reservation.get("Instances", []):
                    lifecycle[found["InstanceId"]] = found.get("InstanceLifecycle", "")
    return [
        Instance(
            instance_id=m["InstanceId"],
            lifecycle_state=m.get("LifecycleState", "?"),
            health=m.get("HealthStatus", "?"),
            instance_type=m.get("InstanceType", "?"),
            zone=m.get("AvailabilityZone", "?"),
            purchase=SPOT if lifecycle.get(m["InstanceId"]) == "spot" else ON_DEMAND,
            launch_template_version=str((m.get("LaunchTemplate") or {}).get("Version", "")),
            protected_from_scale_in=bool(m.get("ProtectedFromScaleIn", False)),
        )
        for m in members
    ]


def _oldest_message_age(cloudwatch: Client, queue_url: str, now: datetime) -> dict[str, Any]:
    queue_name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    minute = now.replace(second=0, microsecond=0)
    try:
        results = cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "age",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/SQS",
                            "MetricName": "ApproximateAgeOfOldestMessage",
                            "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
                        },
                        "Period": 60,
                        "Stat": "Maximum",
                    },
                }
            ],
            # Whole minutes, as CloudWatch recommends for a 60 s period, up to the end of the current one.
            StartTime=minute - AGE_WINDOW,
            EndTime=minute + timedelta(minutes=1),
            ScanBy="TimestampDescending",
        )["MetricDataResults"]
    except (ClientError, BotoCoreError) as exc:  # the age decorates the view; never lose the rest over it
        return {"seconds": None, "at": None, "source": AGE_SOURCE, "unavailable": str(exc)}
    points = sorted(zip(results[0].get("Timestamps", []), results[0].get("Values", []), strict=False))
    if not points:
        return {"seconds": None, "at": None, "source": AGE_SOURCE}
    at, seconds = points[-1]
    return {"seconds": seconds, "at": at.isoformat(), "source": AGE_SOURCE}


def _activities(autoscaling: Client, group_name: str) -> list[Activity]:
    found = autoscaling.describe_scaling_activities(
        AutoScalingGroupName=group_name, MaxRecords=ACTIVITY_HISTORY
    ).get("Activities", [])
    return [
        Activity(
            start=a["StartTime"].isoformat()
            if isinstance(a.get("StartTime"), datetime)
            else str(a.get("StartTime", "")),
            status=a.get("StatusCode", "?"),
            description=a.get("Description", ""),
            cause=a.get("Cause", ""),
            status_message=a.get("StatusMessage", ""),
        )
        for a in found
    ]
