"""Fetching from moto's S3 over real HTTP: streaming, refusing before download, gone objects, versions."""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any

import pytest

from app.errors import PermanentError
from app.events import Action, FileEvent, Source
from app.pipeline.fetch import SPOOL_BYTES, ObjectGone, fetch
from tests.support.workers import CallCounter


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"fetch-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _event(bucket: str, key: str, *, size: int | None = None, version_id: str | None = None) -> FileEvent:
    return FileEvent(
        Action.CREATED, bucket, key, Source.S3, "ObjectCreated:Put", size=size, version_id=version_id
    )


def test_a_large_object_streams_to_disk_intact(s3: Any, bucket: str) -> None:
    data = os.urandom(SPOOL_BYTES + 3 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="big.bin", Body=data, ContentType="application/x-thing")
    with fetch(s3, _event(bucket, "big.bin"), max_bytes=64 * 1024 * 1024) as obj:
        assert obj.size == len(data)
        assert obj.file._rolled  # type: ignore[attr-defined] - past the spool size it lives on disk
        assert hashlib.sha256(obj.file.read()).digest() == hashlib.sha256(data).digest()
        assert obj.declared_content_type == "application/x-thing" and obj.etag and obj.last_modified


def test_a_declared_size_over_the_limit_is_refused_without_any_download(s3: Any, bucket: str) -> None:
    calls = CallCounter(s3)
    with pytest.raises(PermanentError) as error:
        fetch(s3, _event(bucket, "huge.bin", size=2**40), max_bytes=1024)
    assert error.value.error_class == "FileTooLarge" and "MAX_FILE_BYTES=1024" in error.value.reason
    assert calls.counts == {}


def test_an_object_larger_than_its_event_said_is_refused_from_its_content_length(
    s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="grew.bin", Body=b"x" * 5000)
    with pytest.raises(PermanentError, match="5000 bytes, over MAX_FILE_BYTES=1000"):
        fetch(s3, _event(bucket, "grew.bin", size=10), max_bytes=1000)


def test_an_archived_object_is_dead_lettered_with_what_to_do(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="cold/scan.pdf", Body=b"%PDF-1.7", StorageClass="DEEP_ARCHIVE")
    with pytest.raises(PermanentError) as error:
        fetch(s3, _event(bucket, "cold/scan.pdf"), max_bytes=1024)
    assert error.value.error_class == "ObjectArchived"
    assert "restore it" in error.value.reason and "s3://" in error.value.reason


def test_a_missing_object_is_gone_not_an_error(s3: Any, bucket: str) -> None:
    with pytest.raises(ObjectGone):
        fetch(s3, _event(bucket, "never-there.jpg"), max_bytes=1024)


def test_the_version_named_by_the_event_is_the_one_fetched(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="doc.txt", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="doc.txt", Body=b"second")
    with fetch(s3, _event(bucket, "doc.txt", version_id=first), max_bytes=1024) as obj:
        assert obj.file.read() == b"first" and obj.version_id == first
