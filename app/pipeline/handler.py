"""The file pipeline behind the worker's FileHandler seam: fetch → sniff → extract → embed → index."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from app import metrics
from app.config import PipelineSettings
from app.document import Remove, Upsert, document_id, utc_now
from app.embeddings import Embedder
from app.errors import FileError
from app.events import Action, FileEvent
from app.handler import FileResult
from app.pipeline.extract import Extraction, extract
from app.pipeline.fetch import FetchedObject, ObjectGone, fetch
from app.pipeline.sniff import extension_of, sniff
from app.sinks import WriteOutcome
from app.sinks.batching import BatchingWriter
from app.stats import RunStats

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

NOT_FETCHED = "-"  # the content type of a file never read (gone, or a removal)


def embedding_of(extraction: Extraction, embedder: Embedder) -> list[float] | None:
    """Images by their pixels, texts and PDFs by their text; other files get no vector."""
    if extraction.image is not None:
        inputs: dict[str, Any] = {"image": extraction.image.embedding_input}
    elif extraction.text is not None and extraction.text.text.strip():
        inputs = {"text": extraction.text.text}
    else:
        return None
    try:
        vector = embedder.embed(**inputs)
    except FileError as exc:
        metrics.EMBEDDING_CALLS.labels(embedder.model_id, exc.error_class).inc()
        raise
    metrics.EMBEDDING_CALLS.labels(embedder.model_id, "ok").inc()
    return vector


class PipelineHandler:
    def __init__(
        self,
        s3: S3Client,
        writer: BatchingWriter,
        embedder: Embedder | None,
        settings: PipelineSettings,
        stats: RunStats,
    ) -> None:
        self._s3 = s3
        self._writer = writer
        self._embedder = embedder
        self._settings = settings
        self._stats = stats

    def handle(self, event: FileEvent) -> str:
        if event.action is Action.CREATED:
            return self._index(event)
        if event.version_id is None:
            return self._remove(event)
        return self._refresh(event)

    def _refresh(self, removal: FileEvent) -> str:
        """A removal naming a version (a versioned bucket): the document follows the key's current version.

        Deleting one version does not delete the object: it may have been a noncurrent version (the current
        one stays), the current one (an older version becomes current again), or a delete marker (the object
        comes back). Only a delete marker on top, or no version left, removes the document. So the key is
        read as it is now, with the removal's sequencer: the guard still orders it against every other event
        of the key, and the key's latest event, whatever arrives late, decides what the index shows.
        """
        current = dataclasses.replace(removal, action=Action.CREATED, version_id=None, size=None, etag=None)
        result = self._index(current, when_gone=removal)
        log.info(
            "file.version_removed",
            extra={
                "bucket": removal.bucket,
                "key": removal.key,
                "version_id": removal.version_id,
                "outcome": result,
            },
        )
        return result

    def _index(self, event: FileEvent, *, when_gone: FileEvent | None = None) -> str:
        """Fetch, extract, embed and write; ``when_gone``: what to remove instead if the object is gone."""
        timings: dict[str, float] = {}
        content_type = NOT_FETCHED
        try:
            with self._timed("fetch", timings):
                obj = fetch(self._s3, event, max_bytes=self._settings.max_file_bytes)
            with obj:
                content_type = sniff(obj.head(), key=event.key)
                with self._timed("extract", timings):
                    extraction = extract(obj, content_type, self._settings)
                with self._timed("embed", timings):
                    vector = self._embed(extraction)
                source = self._document(event, obj, content_type, extraction, vector)
            with self._timed("index", timings):
                outcome = self._writer.write(
                    Upsert(document_id(event.bucket, event.key), source, event.sequencer)
                )
        except ObjectGone:
            if when_gone is not None:
                return self._remove(when_gone)
            self._count(content_type, FileResult.GONE)
            return FileResult.GONE
        except Exception as exc:
            self._count(content_type, getattr(exc, "error_class", type(exc).__name__))
            raise
        result = FileResult.PROCESSED if outcome is WriteOutcome.APPLIED else FileResult.STALE
        self._count(
            content_type, "metadata only" if result == FileResult.PROCESSED and extraction.reason else result
        )
        log.debug("file.indexed", extra={"bucket": event.bucket, "key": event.key, "stages_ms": timings})
        return result

    def _remove(self, event: FileEvent) -> str:
        operation = Remove(
            doc_id=document_id(event.bucket, event.key),
            bucket=event.bucket,
            key=event.key,
            sequencer=event.sequencer,
            worker_id=self._settings.worker_id,
            event_time=event.event_time,
        )
        applied = self._writer.write(operation) is WriteOutcome.APPLIED
        result = FileResult.REMOVED if applied else FileResult.STALE
        self._count(NOT_FETCHED, result)
        return result

    def _embed(self, extraction: Extraction) -> list[float] | None:
        return None if self._embedder is None else embedding_of(extraction, self._embedder)

    def _document(
        self,
        event: FileEvent,
        obj: FetchedObject,
        content_type: str,
        extraction: Extraction,
        vector: list[float] | None,
    ) -> dict[str, Any]:
        source: dict[str, Any] = {
            "bucket": event.bucket,
            "key": event.key,
            "size": obj.size,
            "etag": obj.etag,
            "version_id": obj.version_id,
            "content_type": content_type,
            "declared_content_type": obj.declared_content_type,
            "extension": extension_of(event.key),
            "last_modified": obj.last_modified,
            "event_time": event.event_time,
            "processed_at": utc_now(),
            "worker_id": self._settings.worker_id,
            "extraction": {"status": extraction.status, "reason": extraction.reason},
        }
        if extraction.image is not None:
            source["image"] = extraction.image.fields()
        if extraction.text is not None and extraction.text.ok:
            source["text"] = extraction.text.text
            source["text_truncated"] = extraction.text.truncated
            source["text_chars"] = len(extraction.text.text)
        if extraction.text is not None and extraction.text.page_count is not None:
            source["page_count"] = extraction.text.page_count
        if vector is not None and self._embedder is not None:
            source["embedding"] = vector
            source["embedding_model"] = self._embedder.model_id
        return {name: value for name, value in source.items() if value is not None}

    def _count(self, content_type: str, outcome: str) -> None:
        self._stats.add(f"by_type|{content_type}|{outcome}")

    @contextmanager
    def _timed(self, stage: str, timings: dict[str, float]) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            timings[stage] = round(seconds * 1000, 1)
            metrics.STAGE_DURATION.labels(stage).observe(seconds)
