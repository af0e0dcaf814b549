"""The index document: its id, its fields, and the ordering guard every sink applies before writing.

**The guard.** S3 delivers events at least once and out of order; its ``sequencer`` (a hex string of
undocumented length) orders events *for one key*. The S3 user guide's rule ("Event message structure"): right
pad the shorter value with zeros, then compare lexicographically. (Older editions said left pad; the leading
digits are a clock, so extra digits are finer resolution at the end, and right padding is what orders them.)
Every document, including the tombstone a removal leaves, stores the sequencer of the event that wrote it. A
sink writes an operation only if :func:`is_newer` says so, and writes with optimistic concurrency (OpenSearch
``if_seq_no``/``if_primary_term``, or a transaction locally) so two workers cannot interleave a read and a
write. Why not OpenSearch external versioning: a sequencer need not fit the 63 bits a version allows, some
events carry no sequencer at all, and a hard delete's version is forgotten after ``index.gc_deletes`` (60 s),
after which a late stale create would resurrect the file. A tombstone document never expires that way.

Events without a sequencer (the guide's format, a backfill, moto) cannot be ordered: they are written (last
writer wins), keeping the sequencer already stored so that later sequenced events still compare against it,
with one exception: such a create never overwrites a tombstone whose removal happened after the object it
read was last modified (a copy fetched just before the delete must not bring the file back). Re-delivery of
the same event (equal sequencer) is not written again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.errors import PermanentError

SEQUENCER_FIELD = "s3_sequencer"
DELETED_FIELD = "deleted"
EMBEDDING_FIELD = "embedding"
_HEX = re.compile(r"[0-9A-Fa-f]+")

# One row per indexed field, by dotted path: the OpenSearch mapping and the local store's validation are
# both derived from this table, so the two sinks accept and reject the same documents.
FIELD_TYPES: Mapping[str, str] = {
    "bucket": "keyword",
    "key": "keyword",
    "size": "long",
    "etag": "keyword",
    "version_id": "keyword",
    "content_type": "keyword",
    "declared_content_type": "keyword",
    "extension": "keyword",
    "last_modified": "date",
    "event_time": "date",
    "processed_at": "date",
    SEQUENCER_FIELD: "keyword",
    DELETED_FIELD: "boolean",
    "worker_id": "keyword",
    "image.width": "integer",
    "image.height": "integer",
    "image.format": "keyword",
    "image.mode": "keyword",
    "image.frames": "integer",
    "image.exif.captured_at": "date",
    "image.exif.make": "keyword",
    "image.exif.model": "keyword",
    "image.exif.orientation": "integer",
    "image.exif.gps": "geo_point",
    "text": "text",
    "text_truncated": "boolean",
    "text_chars": "integer",
    "page_count": "integer",
    "extraction.status": "keyword",
    "extraction.reason": "text",
    EMBEDDING_FIELD: "knn_vector",
    "embedding_model": "keyword",
}
# Search hits carry metadata only: a vector and up to TEXT_MAX_CHARS of text per hit would dwarf the answer.
HIT_SOURCE_EXCLUDES = (EMBEDDING_FIELD, "text")


def document_id(bucket: str, key: str) -> str:
    """Stable across workers and runs: the same object always lands on the same document."""
    return hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()


def is_newer(incoming: str | None, existing: Mapping[str, Any] | None) -> bool:
    """Whether an event with sequencer ``incoming`` may overwrite the stored ``existing`` document."""
    if existing is None or incoming is None:
        return True
    stored = existing.get(SEQUENCER_FIELD)
    if not stored:
        return True
    new, old = comparable_sequencers(incoming, str(stored))
    return new > old


def comparable_sequencers(first: str, second: str) -> tuple[str, str]:
    """Both sequencers upper-cased and right-padded with zeros to the same width, as S3 documents."""
    width = max(len(first), len(second))
    return first.upper().ljust(width, "0"), second.upper().ljust(width, "0")


def may_write(operation: Operation, existing: Mapping[str, Any] | None) -> bool | PermanentError:
    """The guard's answer for one operation; a sequencer that is not hex fails that operation alone.

    Checked even when nothing is stored yet: a stored non-hex sequencer would fail every later event.
    """
    try:
        if operation.sequencer is not None and not _HEX.fullmatch(operation.sequencer):
            raise ValueError("not a hexadecimal string")
        if (
            isinstance(operation, Upsert)
            and operation.sequencer is None
            and _removed_after(operation, existing)
        ):
            return False
        return is_newer(operation.sequencer, existing)
    except ValueError as exc:
        stored = None if existing is None else existing.get(SEQUENCER_FIELD)
        return PermanentError(
            f"document {operation.doc_id}: cannot order sequencer {operation.sequencer!r} against the stored "
            f"{stored!r} ({exc}); both must be hexadecimal",
            error_class="InvalidSequencer",
        )


def _removed_after(upsert: Upsert, existing: Mapping[str, Any] | None) -> bool:
    """Whether ``existing`` is a tombstone of a removal that came after the object ``upsert`` read."""
    if existing is None or not existing.get(DELETED_FIELD):
        return False
    removed, modified = _instant(existing.get("event_time")), _instant(upsert.source.get("last_modified"))
    return removed is not None and modified is not None and modified <= removed


def _instant(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def merged_sequencer(incoming: str | None, existing: Mapping[str, Any] | None) -> str | None:
    """The sequencer to store: the event's, else the one already stored (an unordered write keeps it)."""
    if incoming is not None:
        return incoming.upper()
    if existing is not None and existing.get(SEQUENCER_FIELD):
        return str(existing[SEQUENCER_FIELD])
    return None


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class Upsert:
    """Index a created object's document (``source`` is every field but the sequencer)."""

    doc_id: str
    source: dict[str, Any]
    sequencer: str | None


@dataclass(frozen=True, slots=True)
class Remove:
    """Replace a removed object's document with a tombstone that remembers the removal's sequencer."""

    doc_id: str
    bucket: str
    key: str
    sequencer: str | None
    worker_id: str = ""
    event_time: str | None = None


Operation = Upsert | Remove


def tombstone(remove: Remove) -> dict[str, Any]:
    return {
        "bucket": remove.bucket,
        "key": remove.key,
        DELETED_FIELD: True,
        "event_time": remove.event_time,
        "processed_at": utc_now(),
        "worker_id": remove.worker_id,
    }


def stored_source(operation: Operation, existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """The full ``_source`` a sink writes for an operation it has decided to apply."""
    source = dict(operation.source) if isinstance(operation, Upsert) else tombstone(operation)
    source.setdefault(DELETED_FIELD, False)
    source[SEQUENCER_FIELD] = merged_sequencer(operation.sequencer, existing)
    return source


@dataclass(frozen=True, slots=True)
class Hit:
    doc_id: str
    score: float
    source: dict[str, Any] = field(default_factory=dict)
