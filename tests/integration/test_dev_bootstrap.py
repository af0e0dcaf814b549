"""`filefleet dev bootstrap` against moto server: idempotent, and uploads reach the queue."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from app.aws import AwsClients
from app.devtools import bootstrap
from tests.support.cli import run_filefleet


def test_bootstrap_is_idempotent_and_wires_s3_to_the_queue(sqs: Any, s3: Any) -> None:
    name = f"boot-{uuid.uuid4().hex[:8]}"
    clients = AwsClients(region="us-east-1", concurrency=1)
    first = bootstrap(clients, bucket=name, queue=name)
    second = bootstrap(clients, bucket=name, queue=name)
    assert first == second

    attributes = sqs.get_queue_attributes(QueueUrl=first.queue_url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f"{name}-dlq") and int(redrive["maxReceiveCount"]) == 5
    statement = json.loads(attributes["Policy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{name}"

    s3.put_object(Bucket=name, Key="hello world.txt", Body=b"hi")
    bodies = [
        m["Body"] for m in sqs.receive_message(QueueUrl=first.queue_url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert any("hello+world.txt" in body for body in bodies)


def test_the_cli_prints_the_settings_the_worker_needs(aws: str) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    result = run_filefleet("dev", "bootstrap", "--bucket", name, "--queue", name, env=os.environ)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "=" in line and not line.startswith("{")]
    assert lines[0] == f"S3_BUCKET={name}"
    assert lines[1].startswith("SQS_QUEUE_URL=http") and lines[1].endswith(f"/{name}")
    assert lines[2].endswith(f"/{name}-dlq")
