"""Message bodies shaped exactly as AWS sends them (see DESIGN.md §3 and the AWS user guides)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus


def s3_record(
    key: str,
    *,
    bucket: str = "landing-bucket",
    event_name: str = "ObjectCreated:Put",
    size: int | None = 1024,
    sequencer: str | None = "0055AED6DCD90281E5",
    version_id: str | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": quote_plus(key, safe=""), "eTag": "d41d8cd98f00b204e9800998ecf8427e"}
    if size is not None and event_name.startswith("ObjectCreated"):
        obj["size"] = size
    if sequencer is not None:
        obj["sequencer"] = sequencer
    if version_id is not None:
        obj["versionId"] = version_id
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-30T04:00:00.000Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "filefleet",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }


def s3_body(*keys: str, **kwargs: Any) -> str:
    return json.dumps({"Records": [s3_record(key, **kwargs) for key in keys]})


def eventbridge_body(
    key: str,
    *,
    bucket: str = "landing-bucket",
    detail_type: str = "Object Created",
    sequencer: str = "00617F08299329D189",
) -> str:
    obj: dict[str, Any] = {"key": key, "sequencer": sequencer}
    if detail_type == "Object Created":
        obj.update(
            size=5,
            etag="b1946ac92492d2347c6235b4d2611184",
            **{"version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"},
        )
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": obj,
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "123456789012",
        "source-ip-address": "1.2.3.4",
        "reason": "PutObject" if detail_type == "Object Created" else "DeleteObject",
    }
    if detail_type == "Object Deleted":
        detail["deletion-type"] = "Permanently Deleted"
    return json.dumps(
        {
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": detail_type,
            "source": "aws.s3",
            "account": "123456789012",
            "time": "2021-11-12T00:00:00Z",
            "region": "ca-central-1",
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": detail,
        }
    )


def sns_envelope(message: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:landing",
            "Subject": "Amazon S3 Notification",
            "Message": message,
            "Timestamp": "2026-11-30T04:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        }
    )


S3_TEST_EVENT = json.dumps(
    {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-30T04:00:00.000Z",
        "Bucket": "landing-bucket",
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
)

AUTOSCALING_TEST_NOTIFICATION = json.dumps(
    {
        "AccountId": "123456789012",
        "RequestId": "4e6156f4-a9e2-4bda-a7fd-33f2ae528958",
        "AutoScalingGroupARN": "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:04d73ecb",
        "AutoScalingGroupName": "filefleet-workers",
        "Service": "AWS Auto Scaling",
        "Event": "autoscaling:TEST_NOTIFICATION",
        "Time": "2026-11-30T04:00:00.000Z",
    }
)
