"""The sequencer guard's contract (app.document), one set of tests for every sink that implements it.

tests/integration/test_opensearch_sink.py and tests/unit/test_local_sink.py each subclass
:class:`GuardContract` with their own ``sink`` fixture; what only one sink can show (OpenSearch's
``gc_deletes``, SQLite's restart, races between processes) stays in that sink's module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from app.document import Operation, Remove, Upsert, document_id, is_newer
from app.errors import FileError, PermanentError
from app.sinks import WriteOutcome

APPLIED, STALE = WriteOutcome.APPLIED, WriteOutcome.STALE
BUCKET = "bkt"


class GuardedSink(Protocol):
    def write(self, operations: Sequence[Operation]) -> list[WriteOutcome | FileError]: ...

    def get(self, doc_id: str) -> dict[str, Any] | None: ...


def upsert(key: str, sequencer: str | None, **fields: Any) -> Upsert:
    source = {"bucket": BUCKET, "key": key, "size": 10, "content_type": "image/jpeg", **fields}
    return Upsert(doc_id=document_id(BUCKET, key), source=source, sequencer=sequencer)


def remove(key: str, sequencer: str | None) -> Remove:
    return Remove(
        doc_id=document_id(BUCKET, key), bucket=BUCKET, key=key, sequencer=sequencer, worker_id="w1"
    )


def get(sink: GuardedSink, key: str) -> dict[str, Any]:
    """The stored source of ``key``'s document (or tombstone); it must exist."""
    document = sink.get(document_id(BUCKET, key))
    assert document is not None, key
    return document


def write_search_corpus(sink: GuardedSink) -> None:
    """What the search tests look for: a word in a key, words in a text, and a removed file."""
    sink.write(
        [
            upsert("photos/red-flower_2041.JPG", "01"),
            upsert("docs/report.pdf", "01", text="Quarterly harvest of sunflowers and tulips"),
            upsert("docs/other.pdf", "01", text="nothing relevant"),
            upsert("gone/tulip.jpg", "01"),
        ]
    )
    sink.write([remove("gone/tulip.jpg", "02")])


class GuardContract:
    """Tests a sink module runs by subclassing this (``class TestGuardContract(GuardContract)``)."""

    def test_an_upsert_is_stored_with_its_sequencer(self, sink: GuardedSink) -> None:
        vector = [0.5, 0.25, 0.125, 1.0]  # exact in float32, so every store gives it back equal
        assert sink.write([upsert("red flower.jpg", "00abc", embedding=vector)]) == [APPLIED]
        document = get(sink, "red flower.jpg")
        assert document["key"] == "red flower.jpg" and document["embedding"] == vector
        assert document["s3_sequencer"] == "00ABC" and document["deleted"] is False

    def test_an_older_event_after_a_newer_one_changes_nothing(self, sink: GuardedSink) -> None:
        assert sink.write([upsert("a.jpg", "0B", size=2)]) == [APPLIED]
        assert sink.write([upsert("a.jpg", "0A", size=1)]) == [STALE]
        document = get(sink, "a.jpg")
        assert document["size"] == 2 and document["s3_sequencer"] == "0B"

    def test_a_removal_before_its_create_keeps_the_late_create_out(self, sink: GuardedSink) -> None:
        assert sink.write([remove("a.jpg", "0C")]) == [APPLIED]
        assert sink.write([upsert("a.jpg", "0B")]) == [STALE]
        assert get(sink, "a.jpg")["deleted"] is True

    def test_sequencers_beyond_64_bits_compare_in_full(self, sink: GuardedSink) -> None:
        """24 and 32 hex digits (96 and 128 bits): no truncation to a 63-bit external version."""
        older32, newer32 = "E" + "F" * 31, "F" + "0" * 31
        assert sink.write([upsert("a.jpg", newer32)]) == [APPLIED]
        assert sink.write([upsert("a.jpg", older32)]) == [STALE]
        older24, newer24 = "0" * 8 + "1" + "F" * 15, "0" * 8 + "2" + "0" * 15
        assert sink.write([upsert("b.jpg", older24)]) == [APPLIED]
        assert sink.write([upsert("b.jpg", newer24)]) == [APPLIED]

    def test_sequencers_of_different_lengths_compare_as_app_document_says(self, sink: GuardedSink) -> None:
        # Pairs on which "left-pad" (numeric) and "right-pad" comparison agree...
        assert sink.write([upsert("a.jpg", "1" + "0" * 23)]) == [APPLIED]
        assert sink.write([upsert("a.jpg", "1" + "0" * 22 + "1" + "0" * 8)]) == [APPLIED]  # 24 -> 32 digits
        assert sink.write([upsert("a.jpg", "1" + "0" * 23)]) == [STALE]  # 32 -> 24 digits, older
        # ...and one on which they differ: the sink must follow the contract's is_newer, whichever rule.
        stored_sequencer, incoming = "0" * 18 + "FF", "0" * 18 + "0A0001"  # 20 and 24 digits
        assert sink.write([upsert("b.jpg", stored_sequencer)]) == [APPLIED]
        expected = APPLIED if is_newer(incoming, {"s3_sequencer": stored_sequencer}) else STALE
        assert sink.write([upsert("b.jpg", incoming)]) == [expected]

    def test_a_sequencer_that_is_not_hex_fails_that_operation_only(self, sink: GuardedSink) -> None:
        outcomes = sink.write([upsert("a.jpg", "01"), upsert("b.jpg", "not-hex"), upsert("c.jpg", "01")])
        assert outcomes[0] == APPLIED and outcomes[2] == APPLIED
        assert isinstance(outcomes[1], PermanentError) and outcomes[1].error_class == "InvalidSequencer"

    def test_an_event_without_sequencer_is_written_and_keeps_the_stored_one(self, sink: GuardedSink) -> None:
        sink.write([upsert("a.jpg", "0A", size=1)])
        assert sink.write([upsert("a.jpg", None, size=2)]) == [APPLIED]
        document = get(sink, "a.jpg")
        assert document["size"] == 2 and document["s3_sequencer"] == "0A"
        assert sink.write([upsert("a.jpg", "09", size=3)]) == [STALE], "still ordered against the kept one"
        assert sink.write([upsert("new.jpg", None)]) == [APPLIED]
        assert get(sink, "new.jpg")["s3_sequencer"] is None

    def test_operations_on_one_document_in_one_batch_apply_in_order(self, sink: GuardedSink) -> None:
        assert sink.write([upsert("a.jpg", "01"), remove("a.jpg", "02")]) == [APPLIED, APPLIED]
        assert sink.write([remove("b.jpg", "02"), upsert("b.jpg", "01")]) == [APPLIED, STALE]
        both = sink.write([upsert("c.jpg", None, size=1), upsert("c.jpg", None, size=2)])
        assert both == [APPLIED, APPLIED]
        assert get(sink, "a.jpg")["deleted"] is True
        assert get(sink, "b.jpg")["deleted"] is True
        assert get(sink, "c.jpg")["size"] == 2
