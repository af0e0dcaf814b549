"""SQS message body → the file events it carries (DESIGN.md §3, "Messages accepted").

Accepted shapes: S3 event notifications (several records per body, keys URL-encoded), EventBridge "Object
Created"/"Object Deleted" events (keys verbatim), the guide's ``{"s3Key": ..., "fileSize": ...}`` (bucket from
configuration), and an SNS envelope around any of them. Test notifications from S3 and Auto Scaling, and S3
events that do not change an object's content (restore, tagging, ACL, replication, ...) are *ignored*:
acknowledged and counted, never retried. Anything else raises :class:`InvalidMessage`, a permanent error
whose reason tells the operator what arrived instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

from app.errors import PermanentError

S3_MAX_KEY_BYTES = 1024
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
# Lifecycle expiration removes an object (or one version of it) as a DELETE does; app.pipeline.handler
# decides what a removal that names a version means for the document.
_REMOVAL_PREFIXES = ("ObjectRemoved:", "LifecycleExpiration:")


class Action(StrEnum):
    CREATED = "created"
    REMOVED = "removed"


class Source(StrEnum):
    S3 = "s3"
    EVENTBRIDGE = "eventbridge"
    GUIDE = "guide"


@dataclass(frozen=True, slots=True)
class FileEvent:
    """One object that was created or removed. ``key`` is the real, decoded S3 key."""

    action: Action
    bucket: str
    key: str
    source: Source
    event_name: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_time: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedBody:
    events: tuple[FileEvent, ...]
    ignored: tuple[str, ...] = ()  # what was acknowledged without work, e.g. "s3:TestEvent"


class InvalidMessage(PermanentError):
    """The body is not a file event we understand; retrying cannot change that."""


def parse_body(body: str | bytes, *, default_bucket: str | None) -> ParsedBody:
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidMessage("body is not UTF-8 text") from None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidMessage(f"body is not JSON: {_short(str(exc))}; first bytes: {body[:80]!r}") from None
    return _parse_document(document, default_bucket=default_bucket, inside_sns=False)


def _parse_document(document: Any, *, default_bucket: str | None, inside_sns: bool) -> ParsedBody:
    if not isinstance(document, dict):
        raise InvalidMessage(f"body is a JSON {type(document).__name__}, expected an object")
    if document.get("Type") == "Notification" and "Message" in document and not inside_sns:
        return _parse_sns(document, default_bucket=default_bucket)
    if document.get("Type") in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        raise InvalidMessage(
            f"SNS {document['Type']}: confirm the subscription (its SubscribeURL) or subscribe the queue "
            "from the topic's account; this is not a file event"
        )
    if "Records" in document:
        return _parse_s3_records(document["Records"])
    if document.get("Event") in ("s3:TestEvent", "autoscaling:TEST_NOTIFICATION"):
        return ParsedBody(events=(), ignored=(str(document["Event"]),))
    if document.get("source") == "aws.s3" and "detail-type" in document:
        return _parse_eventbridge(document)
    if "s3Key" in document:
        return _parse_guide(document, default_bucket=default_bucket)
    keys = ", ".join(sorted(str(k) for k in document)[:8]) or "none"
    raise InvalidMessage(
        "unrecognised message: expected an S3 event notification, an EventBridge S3 event, an SNS "
        f'envelope or {{"s3Key": ...}}; top-level keys: {_short(keys)}'
    )


def _parse_sns(envelope: Mapping[str, Any], *, default_bucket: str | None) -> ParsedBody:
    inner = envelope["Message"]
    if not isinstance(inner, str):
        raise InvalidMessage("SNS envelope whose Message is not a string")
    try:
        document = json.loads(inner)
    except (ValueError, RecursionError):
        raise InvalidMessage(f"SNS envelope whose Message is not JSON: {inner[:80]!r}") from None
    return _parse_document(document, default_bucket=default_bucket, inside_sns=True)


def _parse_s3_records(records: Any) -> ParsedBody:
    if not isinstance(records, list) or not records:
        raise InvalidMessage("Records must be a non-empty list of S3 event records")
    events: list[FileEvent] = []
    ignored: list[str] = []
    for index, record in enumerate(records):
        where = f"Records[{index}]"
        if not isinstance(record, dict):
            raise InvalidMessage(f"{where} is not an object")
        source = record.get("eventSource")
        if source != "aws:s3":
            raise InvalidMessage(f"{where}.eventSource is {_short(repr(source))}, expected 'aws:s3'")
        version = record.get("eventVersion")
        if not isinstance(version, str) or not version.startswith("2."):
            raise InvalidMessage(f"{where}.eventVersion is {_short(repr(version))}, expected 2.x")
        name = _text(record, "eventName", where)
        action = _s3_action(name)
        if action is None:
            ignored.append(name)
            continue
        s3 = _object(record, "s3", where)
        obj = _object(s3, "object", f"{where}.s3")
        raw_key = _text(obj, "key", f"{where}.s3.object")
        try:
            key = unquote_plus(raw_key, errors="strict")
        except UnicodeDecodeError:
            raise InvalidMessage(
                f"{where}.s3.object.key {raw_key[:80]!r} is not valid percent-encoded UTF-8"
            ) from None
        events.append(
            FileEvent(
                action=action,
                bucket=_text(_object(s3, "bucket", f"{where}.s3"), "name", f"{where}.s3.bucket"),
                key=_checked_key(key, where),
                source=Source.S3,
                event_name=name,
                size=_size(obj.get("size"), where),
                etag=_optional_text(obj, "eTag", where),
                version_id=_optional_text(obj, "versionId", where),
                sequencer=_sequencer(obj.get("sequencer"), where),
                event_time=_optional_text(record, "eventTime", where),
            )
        )
    return ParsedBody(events=tuple(events), ignored=tuple(ignored))


def _s3_action(event_name: str) -> Action | None:
    if event_name.startswith("ObjectCreated:"):
        return Action.CREATED
    if event_name.startswith(_REMOVAL_PREFIXES):
        return Action.REMOVED
    return None


def _parse_eventbridge(document: Mapping[str, Any]) -> ParsedBody:
    detail_type = document["detail-type"]
    if detail_type == "Object Created":
        action = Action.CREATED
    elif detail_type == "Object Deleted":
        action = Action.REMOVED
    else:
        return ParsedBody(events=(), ignored=(f"EventBridge {_short(str(detail_type))}",))
    detail = _object(document, "detail", "EventBridge event")
    obj = _object(detail, "object", "detail")
    event = FileEvent(
        action=action,
        bucket=_text(_object(detail, "bucket", "detail"), "name", "detail.bucket"),
        key=_checked_key(_text(obj, "key", "detail.object"), "detail.object"),
        source=Source.EVENTBRIDGE,
        event_name=str(detail_type),
        size=_size(obj.get("size"), "detail.object"),
        etag=_optional_text(obj, "etag", "detail.object"),
        version_id=_optional_text(obj, "version-id", "detail.object"),
        sequencer=_sequencer(obj.get("sequencer"), "detail.object"),
        event_time=_optional_text(document, "time", "EventBridge event"),
    )
    return ParsedBody(events=(event,))


def _parse_guide(document: Mapping[str, Any], *, default_bucket: str | None) -> ParsedBody:
    if default_bucket is None:
        raise InvalidMessage('an {"s3Key": ...} message names no bucket: set S3_BUCKET, then redrive it')
    key = _text(document, "s3Key", "message")
    event = FileEvent(
        action=Action.CREATED,
        bucket=default_bucket,
        key=_checked_key(key, "s3Key"),
        source=Source.GUIDE,
        event_name="s3Key",
        size=_size(document.get("fileSize"), "fileSize"),
    )
    return ParsedBody(events=(event,))


def _object(parent: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = parent.get(name)
    if not isinstance(value, dict):
        raise InvalidMessage(f"{where}.{name} is missing or not an object")
    return value


def _text(parent: Mapping[str, Any], name: str, where: str) -> str:
    value = parent.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidMessage(f"{where}.{name} is missing or not a non-empty string")
    return value


def _optional_text(parent: Mapping[str, Any], name: str, where: str) -> str | None:
    value = parent.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidMessage(f"{where}.{name} is not a string")
    return value


def _checked_key(key: str, where: str) -> str:
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMessage(f"{where}: the object key is not valid Unicode") from None
    if len(encoded) > S3_MAX_KEY_BYTES:
        raise InvalidMessage(f"{where}: the object key is {len(encoded)} bytes, over S3's {S3_MAX_KEY_BYTES}")
    return key


def _size(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidMessage(f"{where}: size {_short(repr(value))} is not a non-negative integer")
    return value


def _sequencer(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HEX.match(value):
        raise InvalidMessage(f"{where}: sequencer {_short(repr(value))} is not a hexadecimal string")
    return value


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
