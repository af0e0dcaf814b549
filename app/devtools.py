"""`filefleet dev bootstrap`: the bucket, the queue, its DLQ and the S3 → SQS notification, on an emulator.

What the fleet's CloudFormation stack creates on AWS, made here for LocalStack or moto (docker compose, the
demo, a laptop). Idempotent: run it as often as you like; it converges on the same resources.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from app.aws import AwsClients

log = logging.getLogger(__name__)

DEFAULT_BUCKET = "filefleet-landing"
DEFAULT_QUEUE = "filefleet-files"
MAX_RECEIVE_COUNT = 5
VISIBILITY_TIMEOUT = 300  # the guide's; the worker's heartbeat extends it for longer files
RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum: a stalled fleet loses nothing for two weeks


@dataclass(frozen=True)
class Landing:
    bucket: str
    queue_url: str
    dead_letter_queue_url: str


def bootstrap(clients: AwsClients, *, bucket: str, queue: str, wait_seconds: float = 60) -> Landing:
    """Create (or find) everything; waits up to ``wait_seconds`` for the emulator to answer first."""
    sqs, s3 = clients.sqs(), clients.s3()
    _wait_for(lambda: sqs.list_queues(MaxResults=1), wait_seconds)
    dlq_url = sqs.create_queue(
        QueueName=f"{queue}-dlq", Attributes={"MessageRetentionPeriod": str(RETENTION_SECONDS)}
    )["QueueUrl"]
    dlq_arn = _arn(sqs, dlq_url)
    queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    queue_arn = _arn(sqs, queue_url)
    bucket_arn = f"arn:aws:s3:::{bucket}"
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT),
            "MessageRetentionPeriod": str(RETENTION_SECONDS),
            "Policy": json.dumps(_s3_may_send(queue_arn, bucket_arn)),
        },
    )
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "filefleet",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                }
            ]
        },
    )
    landing = Landing(bucket=bucket, queue_url=queue_url, dead_letter_queue_url=dlq_url)
    log.info(
        "dev.bootstrapped", extra={"bucket": bucket, "queue_url": queue_url, "dead_letter_queue_url": dlq_url}
    )
    return landing


def _s3_may_send(queue_arn: str, bucket_arn: str) -> dict[str, Any]:
    """The queue policy S3 event notifications need: only this bucket may send to this queue."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "S3EventNotifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnLike": {"aws:SourceArn": bucket_arn}},
            }
        ],
    }


def _arn(sqs: Any, queue_url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    )


def _wait_for(call: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            call()
            return
        except (EndpointConnectionError, BotoCoreError, ClientError) as exc:
            if time.monotonic() >= deadline:
                raise
            log.info("dev.waiting_for_aws", extra={"error": str(exc)[:200]})
            time.sleep(1)
