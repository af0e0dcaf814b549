"""A listed object → the S3 event notification S3 would have sent had the object been uploaded now.

The shape is S3's ("Event message structure", version 2.1) so the worker needs no second code path: one record
per message, as S3 sends them, because the fleet scales on messages per instance and the worker settles a
message as a whole. What S3 would fill in and a listing cannot know is left out rather than invented:

* no ``sequencer``: S3 did not issue one. The worker then writes "last writer wins" and keeps the sequencer
  already stored (app.document), so a later real event still orders against the last real one.
* no ``versionId``: ListObjectsV2 lists current versions, and without a version the worker fetches the
  object as it is *now*, which is what a backfill is for.
* no ``userIdentity``/``requestParameters``/``responseElements``: nobody made a request.

``eventName`` is ``ObjectCreated:Backfill``: S3 never sends it, so a backfill message is recognisable in a
queue or a dead-letter queue, and it still matches ``ObjectCreated:*``, which is all the worker checks.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from app.consumer.queue import OutgoingMessage
from app.enqueue.listing import ListedObject

EVENT_NAME = "ObjectCreated:Backfill"
CONFIGURATION_ID = "filefleet-enqueue"  # where S3 puts the ID of the notification configuration that fired


def notification(bucket: str, obj: ListedObject, *, region: str, partition: str = "aws") -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": event_time(obj.last_modified),
                "eventName": EVENT_NAME,
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": CONFIGURATION_ID,
                    "bucket": {"name": bucket, "arn": f"arn:{partition}:s3:::{bucket}"},
                    "object": {
                        # S3 URL-encodes keys in notifications the quote_plus way (a space is "+", a "+" is
                        # "%2B"); the worker decodes them with unquote_plus.
                        "key": quote_plus(obj.key, safe="/"),
                        "size": obj.size,
                        "eTag": obj.etag,
                    },
                },
            }
        ]
    }


def outgoing(
    bucket: str, obj: ListedObject, *, region: str, partition: str = "aws", fifo: bool = False
) -> OutgoingMessage:
    body = json.dumps(notification(bucket, obj, region=region, partition=partition), ensure_ascii=False)
    if not fifo:
        return OutgoingMessage(body=body)
    # S3 cannot notify a FIFO queue, but an operator may feed one. One group per key keeps every key's
    # messages in order without serialising the whole queue; the deduplication ID names this object content,
    # so a batch re-sent on resume within SQS's 5-minute window is dropped by SQS itself.
    identity = hashlib.sha256(f"{bucket}\0{obj.key}".encode()).hexdigest()
    content = hashlib.sha256(f"{bucket}\0{obj.key}\0{obj.etag}\0{obj.last_modified.isoformat()}".encode())
    return OutgoingMessage(body=body, group_id=identity, deduplication_id=content.hexdigest())


def event_time(moment: datetime) -> str:
    """S3's format: UTC, milliseconds, a literal Z (``2026-11-30T04:00:00.000Z``)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
