"""The seam between the SQS consumer and the work done per file.

A handler takes one file event and either returns what it did (a short label the worker counts) or raises
a classified error (:class:`~app.errors.PermanentError` or :class:`~app.errors.TransientError`). Anything
else it raises is treated as transient.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from app.errors import PermanentError, classify_aws_error
from app.events import Action, FileEvent

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

_GONE_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
_DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})


class FileResult(StrEnum):
    PROCESSED = "processed"
    REMOVED = "removed"
    GONE = "gone"  # a create event for an object deleted since: its removal event settles the index


class FileHandler(Protocol):
    def handle(self, event: FileEvent) -> str:
        """Do the work for one event; return a result label, or raise a classified error."""
        ...


class HeadObjectHandler:
    """Stands in for the file pipeline: reads each created object's metadata with HeadObject."""

    def __init__(self, s3: S3Client) -> None:
        self._s3 = s3

    def handle(self, event: FileEvent) -> str:
        if event.action is Action.REMOVED:
            return FileResult.REMOVED
        try:
            if event.version_id:
                head = self._s3.head_object(Bucket=event.bucket, Key=event.key, VersionId=event.version_id)
            else:
                head = self._s3.head_object(Bucket=event.bucket, Key=event.key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in _GONE_CODES:
                return FileResult.GONE
            if code in _DENIED_CODES:
                raise PermanentError(
                    f"HeadObject s3://{event.bucket}/{event.key}: access denied: grant the worker role "
                    "s3:GetObject, and s3:ListBucket (without it S3 answers 403 for a missing key too)",
                    error_class="AccessDenied",
                ) from exc
            raise classify_aws_error(exc, action=f"HeadObject s3://{event.bucket}/{event.key}") from exc
        except BotoCoreError as exc:
            raise classify_aws_error(exc, action=f"HeadObject s3://{event.bucket}/{event.key}") from exc
        log.debug(
            "file.head",
            extra={
                "bucket": event.bucket,
                "key": event.key,
                "size": head.get("ContentLength"),
                "content_type": head.get("ContentType"),
            },
        )
        return FileResult.PROCESSED
