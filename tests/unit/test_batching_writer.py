from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from app.document import Operation, Remove
from app.errors import FileError, PermanentError, TransientError
from app.sinks import WriteOutcome
from app.sinks.batching import BatchingWriter


class RecordingSink:
    def __init__(self, fail_key: str | None = None, explode: bool = False) -> None:
        self.batches: list[list[str]] = []
        self._fail_key = fail_key
        self._explode = explode

    def write(self, operations: Sequence[Operation]) -> list[WriteOutcome | FileError]:
        if self._explode:
            raise RuntimeError("connection pool closed")
        self.batches.append([op.doc_id for op in operations])
        return [
            PermanentError("mapping error") if op.doc_id == self._fail_key else WriteOutcome.APPLIED
            for op in operations
        ]


def _remove(doc_id: str) -> Remove:
    return Remove(doc_id=doc_id, bucket="b", key=doc_id, sequencer=None)


def _write_concurrently(writer: BatchingWriter, ids: list[str]) -> dict[str, object]:
    results: dict[str, object] = {}
    barrier = threading.Barrier(len(ids))

    def one(doc_id: str) -> None:
        barrier.wait()
        try:
            results[doc_id] = writer.write(_remove(doc_id))
        except FileError as exc:
            results[doc_id] = exc

    threads = [threading.Thread(target=one, args=(doc_id,)) for doc_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_writes_share_bulk_requests_and_each_gets_its_own_result() -> None:
    sink = RecordingSink(fail_key="bad")
    writer = BatchingWriter(sink, max_batch=8, linger_seconds=0.2)  # type: ignore[arg-type]
    results = _write_concurrently(writer, ["a", "b", "bad", "c"])
    writer.close()
    assert len(sink.batches) < 4, "operations that arrive together share a bulk request"
    assert sorted(doc_id for batch in sink.batches for doc_id in batch) == ["a", "b", "bad", "c"]
    assert isinstance(results["bad"], PermanentError)
    assert results["a"] is results["b"] is results["c"] is WriteOutcome.APPLIED


def test_a_sink_that_raises_fails_every_waiting_file_as_transient() -> None:
    writer = BatchingWriter(RecordingSink(explode=True), max_batch=4)  # type: ignore[arg-type]
    with pytest.raises(TransientError, match="connection pool closed"):
        writer.write(_remove("a"))
    writer.close()
