from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 (ours and the code's) at moto server through boto3's own AWS_ENDPOINT_URL."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@pytest.fixture
def sqs(aws: str) -> Any:
    return boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def s3(aws: str) -> Any:
    return boto3.client("s3", region_name="us-east-1")


@dataclass
class Queues:
    url: str
    arn: str
    dlq_url: str
    max_receive_count: int

    def depth(self, sqs: Any, url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) for the queue, or the DLQ when asked."""
        attributes = sqs.get_queue_attributes(
            QueueUrl=url or self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def make_queues(sqs: Any, *, max_receive_count: int = 5) -> Queues:
    name = f"files-{uuid.uuid4().hex[:10]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queues(url=url, arn=arn, dlq_url=dlq_url, max_receive_count=max_receive_count)


@pytest.fixture
def queues(sqs: Any) -> Queues:
    return make_queues(sqs)


def notifying_bucket(s3: Any, queues: Queues, *, prefix: str, removals: bool = False) -> str:
    """A new bucket whose uploads (and deletes, with ``removals``) notify ``queues``; returns its name."""
    bucket = f"{prefix}-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    events = ["s3:ObjectCreated:*", *(["s3:ObjectRemoved:*"] if removals else [])]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": queues.arn, "Events": events}]},
    )
    return bucket
