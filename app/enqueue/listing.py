"""What to enqueue: the ``s3://BUCKET/PREFIX`` argument, the filters, and the paginated ListObjectsV2 walk.

ListObjectsV2 returns keys in ascending UTF-8 binary order, which is what makes the checkpoint work: every key
after the last one enqueued is listed again by ``StartAfter``, and none before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from app.config import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

S3_SCHEME = "s3://"
DIRECTORY_BUCKET_SUFFIX = "--x-s3"
MAX_PAGE_SIZE = 1000  # ListObjectsV2 MaxKeys: S3 never returns more per page
# General purpose bucket names (S3 user guide, "Bucket naming rules"); the worker's S3_BUCKET uses the same.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Objects GetObject refuses until they are restored (InvalidObjectState): the worker would dead-letter them.
ARCHIVED_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


class InputError(ConfigError):
    """Bad input the operator must fix (a URL, an option, a bucket or queue that does not exist): exit 2."""


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.prefix}"


def parse_s3_url(text: str) -> S3Location:
    """``s3://BUCKET`` or ``s3://BUCKET/PREFIX``; the prefix is taken verbatim (not URL-decoded).

    Not ``urllib.parse``: a key may contain ``?``, ``#`` and ``%``, which a URL parser would treat as a query,
    a fragment or an escape; the AWS CLI also takes what follows the bucket literally.
    """
    if not text.startswith(S3_SCHEME):
        raise InputError(f"expected s3://BUCKET/PREFIX, got {text!r}")
    bucket, _, prefix = text[len(S3_SCHEME) :].partition("/")
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise InputError(
            f"{text!r}: {bucket!r} is not an S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')"
        )
    if bucket.endswith(DIRECTORY_BUCKET_SUFFIX):
        # S3 Express One Zone: listings are not in key order and StartAfter is not supported, so there is no
        # resume point, and these buckets send no event notifications for a pipeline to follow anyway.
        raise InputError(f"{text!r}: directory buckets (S3 Express One Zone) are not supported")
    return S3Location(bucket=bucket, prefix=prefix)


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or date-time; a date means its midnight, and a time without an offset means UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"--since {text!r} is not an ISO date or date-time, e.g. 2026-01-31 or 2026-01-31T08:00:00Z"
        ) from None
    # S3's LastModified is UTC; a naive time compared against it would be an error, not a guess.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def parse_suffixes(values: list[str] | None) -> tuple[str, ...]:
    """``--suffix .jpg --suffix .PNG,.pdf`` → ('.jpg', '.png', '.pdf'); compared case-insensitively."""
    suffixes: list[str] = []
    for value in values or ():
        for part in value.split(","):
            if not part.strip():
                raise InputError(f"--suffix {value!r} has an empty suffix")
            if part.strip().lower() not in suffixes:
                suffixes.append(part.strip().lower())
    return tuple(suffixes)


@dataclass(frozen=True, slots=True)
class ListedObject:
    key: str
    size: int
    etag: str  # without the quotes ListObjectsV2 puts around it, as S3 event notifications carry it
    last_modified: datetime
    storage_class: str

    @classmethod
    def from_api(cls, raw: Any) -> ListedObject:
        return cls(
            key=str(raw["Key"]),
            size=int(raw.get("Size", 0)),
            etag=str(raw.get("ETag", "")).strip('"'),
            last_modified=raw["LastModified"],
            storage_class=str(raw.get("StorageClass") or "STANDARD"),
        )


class Skip(StrEnum):
    """Why a listed object is not enqueued; the summary counts each reason."""

    PLACEHOLDER = "folder placeholders"
    OLDER = "older than --since"
    SUFFIX = "not matching --suffix"
    ARCHIVED = "archived (GLACIER, DEEP_ARCHIVE)"


@dataclass(frozen=True, slots=True)
class Filters:
    since: datetime | None = None
    suffixes: tuple[str, ...] = ()  # lower case
    include_archived: bool = False

    def skip_reason(self, obj: ListedObject) -> Skip | None:
        # The S3 console's "Create folder" writes an empty object whose key ends in "/"; it holds no file.
        if obj.key.endswith("/"):
            return Skip.PLACEHOLDER
        if self.since is not None and obj.last_modified < self.since:
            return Skip.OLDER
        if self.suffixes and not obj.key.lower().endswith(self.suffixes):
            return Skip.SUFFIX
        if not self.include_archived and obj.storage_class in ARCHIVED_STORAGE_CLASSES:
            return Skip.ARCHIVED
        return None

    def describe(self) -> dict[str, Any]:
        """The filters as the checkpoint records them: a resumed run must select the same objects."""
        return {
            "since": None if self.since is None else self.since.isoformat(),
            "suffixes": list(self.suffixes),
            "include_archived": self.include_archived,
        }


def list_objects(
    s3: S3Client, location: S3Location, *, start_after: str | None, page_size: int = MAX_PAGE_SIZE
) -> Iterator[ListedObject]:
    """Every object under the prefix whose key sorts after ``start_after``, page by page, in key order.

    botocore asks for ``EncodingType=url`` and decodes the keys itself, so keys with characters XML cannot
    carry still arrive intact.
    """
    request: dict[str, Any] = {"Bucket": location.bucket, "Prefix": location.prefix, "MaxKeys": page_size}
    if start_after:
        request["StartAfter"] = start_after
    while True:
        page = s3.list_objects_v2(**request)
        for raw in page.get("Contents", []):
            yield ListedObject.from_api(raw)
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return
        request["ContinuationToken"] = token  # S3 ignores StartAfter once a token is given
