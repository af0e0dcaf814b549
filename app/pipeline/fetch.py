"""Stream an S3 object into a spooled temporary file: bounded memory whatever the object's size."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from app.errors import PermanentError, TransientError, classify_aws_error
from app.events import FileEvent

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK_BYTES = 1024 * 1024
SPOOL_BYTES = 8 * 1024 * 1024  # smaller objects never touch the disk
_GONE_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
_DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})


class ObjectGone(Exception):
    """The object was deleted after its create event was sent: its removal event settles the index."""


@dataclass
class FetchedObject:
    bucket: str
    key: str
    size: int
    etag: str | None
    version_id: str | None
    last_modified: str | None
    declared_content_type: str | None  # what the uploader said; the sniffed type is what we trust
    file: IO[bytes] = field(repr=False)

    def head(self, size: int = 8192) -> bytes:
        self.file.seek(0)
        data = self.file.read(size)
        self.file.seek(0)
        return data

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> FetchedObject:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def fetch(s3: S3Client, event: FileEvent, *, max_bytes: int) -> FetchedObject:
    """GetObject into a spooled file; refuses before downloading anything larger than ``max_bytes``."""
    where = f"s3://{event.bucket}/{event.key}"
    if event.size is not None and event.size > max_bytes:
        raise _too_large(where, event.size, max_bytes)
    request: dict[str, Any] = {"Bucket": event.bucket, "Key": event.key}
    if event.version_id:
        request["VersionId"] = event.version_id  # exactly the version the event is about
    try:
        response = s3.get_object(**request)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code in _GONE_CODES:
            raise ObjectGone(where) from exc
        if code == "InvalidObjectState":
            raise PermanentError(
                f"GetObject {where}: the object is archived (a Glacier storage class or an Intelligent-"
                "Tiering archive tier) and not restored: restore it, then redrive this message from the DLQ",
                error_class="ObjectArchived",
            ) from exc
        if code in _DENIED_CODES:
            raise PermanentError(
                f"GetObject {where}: access denied: grant the worker role s3:GetObject (and s3:ListBucket, "
                "without which S3 answers 403 for a missing key too)",
                error_class="AccessDenied",
            ) from exc
        raise classify_aws_error(exc, action=f"GetObject {where}") from exc
    except BotoCoreError as exc:
        raise classify_aws_error(exc, action=f"GetObject {where}") from exc

    body = response["Body"]
    size = int(response.get("ContentLength", 0))
    if size > max_bytes:
        body.close()
        raise _too_large(where, size, max_bytes)
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - owned by FetchedObject
    try:
        received = _copy(body, spooled, limit=max_bytes, where=where)
    except BaseException:
        spooled.close()
        raise
    finally:
        body.close()
    if received != size:
        spooled.close()
        raise TransientError(
            f"GetObject {where}: received {received} of {size} bytes", error_class="TruncatedDownload"
        )
    spooled.seek(0)
    last_modified = response.get("LastModified")
    return FetchedObject(
        bucket=event.bucket,
        key=event.key,
        size=size,
        etag=str(response.get("ETag", "")).strip('"') or None,
        version_id=response.get("VersionId") or event.version_id,
        last_modified=last_modified.isoformat() if last_modified else None,
        declared_content_type=response.get("ContentType"),
        file=spooled,
    )


def _copy(body: Any, target: IO[bytes], *, limit: int, where: str) -> int:
    received = 0
    try:
        for chunk in body.iter_chunks(CHUNK_BYTES):
            received += len(chunk)
            if received > limit:
                raise _too_large(where, received, limit)
            target.write(chunk)
    except (BotoCoreError, OSError) as exc:
        raise TransientError(
            f"GetObject {where}: download interrupted: {exc}", error_class=type(exc).__name__
        ) from exc
    return received


def _too_large(where: str, size: int, limit: int) -> PermanentError:
    return PermanentError(
        f"{where} is {size} bytes, over MAX_FILE_BYTES={limit}: raise the limit and redrive to index it",
        error_class="FileTooLarge",
    )
