"""The local SQLite sink: the same guard, tombstones, validation and searches as the OpenSearch sink."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import app.sinks.local as local_module
from app.config import SinkSettings
from app.document import document_id
from app.errors import PermanentError, TransientError
from app.sinks import IndexMismatch
from app.sinks.factory import build_sink
from app.sinks.local import LocalSink
from tests.support.sink_contract import (
    APPLIED,
    STALE,
    GuardContract,
    get,
    remove,
    upsert,
    write_search_corpus,
)

DIMENSION = 4


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "index.sqlite3"


@pytest.fixture
def sink(path: Path) -> Iterator[LocalSink]:
    sink = LocalSink(path, dimension=DIMENSION)
    sink.ensure_index()
    yield sink
    sink.close()


# -- the index -------------------------------------------------------------------------------------------


def test_ensure_index_is_idempotent_and_keeps_documents(sink: LocalSink, path: Path) -> None:
    sink.write([upsert("a.jpg", "0A")])
    sink.ensure_index()
    again = LocalSink(path, dimension=DIMENSION)
    again.ensure_index()
    assert again.count() == 1
    again.close()


def test_a_file_made_for_another_dimension_is_an_index_mismatch(sink: LocalSink, path: Path) -> None:
    other = LocalSink(path, dimension=8)
    with pytest.raises(IndexMismatch, match=r"holds 4-dimension .* EMBEDDING_DIMENSION=4"):
        other.ensure_index()
    other.close()


def test_factory_builds_the_local_sink_from_settings(path: Path) -> None:
    settings = SinkSettings.from_env({"INDEX_SINK": "local", "LOCAL_INDEX_PATH": str(path)})
    sink = build_sink(settings, dimension=DIMENSION)
    assert isinstance(sink, LocalSink)
    sink.ensure_index()
    sink.ping()
    sink.close()


# -- the guard -------------------------------------------------------------------------------------------


class TestGuardContract(GuardContract):
    """The guard's contract (tests/support/sink_contract.py), shared with the OpenSearch sink."""


def test_the_same_event_twice_is_indexed_once(sink: LocalSink) -> None:
    assert sink.write([upsert("a.jpg", "0A", size=1)]) == [APPLIED]
    assert sink.write([upsert("a.jpg", "0A", size=2)]) == [STALE]
    assert get(sink, "a.jpg")["size"] == 1


def test_a_removal_leaves_a_tombstone_that_search_no_longer_finds(sink: LocalSink) -> None:
    sink.write([upsert("tulip.jpg", "0A", text="tulips in spring", embedding=[1.0, 0.0, 0.0, 0.0])])
    assert [hit.doc_id for hit in sink.search_text("tulips", k=5)] == [document_id("bkt", "tulip.jpg")]
    assert sink.write([remove("tulip.jpg", "0B")]) == [APPLIED]
    tombstone = get(sink, "tulip.jpg")
    assert tombstone["deleted"] is True and tombstone["s3_sequencer"] == "0B"
    assert "embedding" not in tombstone and "text" not in tombstone
    assert sink.search_text("tulips", k=5) == []
    assert sink.search_vector([1.0, 0.0, 0.0, 0.0], k=5) == []
    assert sink.count() == 0


def test_a_stale_create_after_a_removal_stays_removed_even_after_a_restart(
    sink: LocalSink, path: Path
) -> None:
    sink.write([upsert("a.jpg", "0A"), remove("a.jpg", "0C")])
    sink.close()
    later = LocalSink(path, dimension=DIMENSION)  # a new process, days later: the tombstone is a row
    later.ensure_index()
    assert later.write([upsert("a.jpg", "0B")]) == [STALE]
    assert get(later, "a.jpg")["deleted"] is True
    later.close()


@pytest.mark.parametrize("shared", [True, False], ids=["one-sink-many-threads", "one-sink-per-thread"])
def test_concurrent_writers_on_one_document_end_with_the_newest(path: Path, shared: bool) -> None:
    writers = 8
    first = LocalSink(path, dimension=DIMENSION)
    first.ensure_index()
    keys = [f"race-{n}.jpg" for n in range(5)]
    start = threading.Barrier(writers)
    outcomes: list[object] = []

    def worker(number: int) -> None:
        sink = first if shared else LocalSink(path, dimension=DIMENSION)
        start.wait()
        for key in keys:
            outcomes.extend(sink.write([upsert(key, f"{number + 1:02X}", size=number)]))
        if not shared:
            sink.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(map(str, set(outcomes))) <= ["applied", "stale"], outcomes
    assert len(outcomes) == writers * len(keys)
    for key in keys:
        document = get(first, key)
        assert document["s3_sequencer"] == f"{writers:02X}" and document["size"] == writers - 1
    first.close()


# -- failures --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"size": "many"}, "[size] of type [long]"),
        ({"size": True}, "[size] of type [long]"),
        ({"deleted": "maybe"}, "[deleted] of type [boolean]"),
        ({"last_modified": "yesterday"}, "[last_modified] of type [date]"),
        ({"image": {"width": 2**31}}, "[image.width] of type [integer]"),
        ({"image": {"exif": {"gps": {"lat": 91, "lon": 0}}}}, "[image.exif.gps] of type [geo_point]"),
        ({"image": "big"}, "parent is an object"),
        ({"bucket": {"name": "x"}}, "[bucket] of type [keyword]"),
        ({"embedding": [1.0, 2.0]}, "dimension mismatch: expected 4, given 2"),
        ({"embedding": [1.0, 2.0, "x", 4.0]}, "[embedding] of type [knn_vector]"),
        ({"embedding": [float("nan"), 0.0, 0.0, 1.0]}, "not representable as JSON"),
    ],
)
def test_a_mapping_error_fails_that_document_only(
    sink: LocalSink, fields: dict[str, Any], complaint: str
) -> None:
    outcomes = sink.write([upsert("a.jpg", "01"), upsert("b.jpg", "01", **fields), upsert("c.jpg", "01")])
    assert outcomes[0] == APPLIED and outcomes[2] == APPLIED
    error = outcomes[1]
    assert isinstance(error, PermanentError) and error.error_class == "mapper_parsing_exception"
    assert complaint in error.reason and "redrive" in error.reason
    assert sink.get(document_id("bkt", "b.jpg")) is None


def test_values_opensearch_would_coerce_are_accepted(sink: LocalSink) -> None:
    fields = {
        "size": "42",
        "deleted": "false",
        "last_modified": "2024-01-02T10:11:12Z",
        "image": {
            "width": 640,
            "exif": {"captured_at": "2024-01-02T10:11:12", "gps": {"lat": 1.5, "lon": -2.5}},
        },
        "extraction": {"status": "ok", "reason": None},
        "unknown_field": {"kept": "as in dynamic: false"},
    }
    assert sink.write([upsert("a.jpg", "01", **fields)]) == [APPLIED]
    assert get(sink, "a.jpg")["unknown_field"] == {"kept": "as in dynamic: false"}


def test_a_sink_that_cannot_open_its_file_makes_every_operation_transient(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path / "missing-dir" / "index.sqlite3", dimension=DIMENSION)
    outcomes = sink.write([upsert("a.jpg", "01"), remove("b.jpg", "02"), upsert("c.jpg", "01", size="bad")])
    assert isinstance(outcomes[0], TransientError) and isinstance(outcomes[1], TransientError)
    assert isinstance(outcomes[2], PermanentError), "a document that can never pass stays permanent"
    with pytest.raises(TransientError, match="does not exist yet"):
        sink.ping()
    assert not (tmp_path / "missing-dir" / "index.sqlite3").exists(), "a health probe never creates the index"
    with pytest.raises(TransientError, match="cannot prepare"):
        sink.ensure_index()
    sink.close()


def test_a_file_locked_by_another_writer_is_transient(sink: LocalSink, path: Path) -> None:
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    impatient = LocalSink(path, dimension=DIMENSION, busy_timeout=0.05)
    [outcome] = impatient.write([upsert("a.jpg", "01")])
    assert isinstance(outcome, TransientError) and "locked" in outcome.reason
    blocker.execute("ROLLBACK")
    assert impatient.write([upsert("a.jpg", "01")]) == [APPLIED]
    blocker.close()
    impatient.close()


def test_ping_needs_an_initialised_file(path: Path) -> None:
    sink = LocalSink(path, dimension=DIMENSION)
    with pytest.raises(TransientError):
        sink.ping()
    sink.ensure_index()
    sink.ping()
    sink.close()


def test_a_closed_sink_answers_transient(path: Path) -> None:
    sink = LocalSink(path, dimension=DIMENSION)
    sink.ensure_index()
    sink.close()
    results: list[object] = list(sink.write([upsert("a.jpg", "01")]))  # this thread had a connection
    thread = threading.Thread(target=lambda: results.extend(sink.write([upsert("a.jpg", "01")])))
    thread.start()
    thread.join()
    assert len(results) == 2
    assert all(isinstance(r, TransientError) and "closed" in r.reason for r in results), results


# -- search ----------------------------------------------------------------------------------------------


@pytest.fixture(params=["fts5", "scan"])
def searchable(
    request: pytest.FixtureRequest, path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalSink]:
    """Both text scorers: FTS5 when this SQLite has it, and the term-count scan used when it does not."""
    if request.param == "fts5" and not local_module.fts5_available():
        pytest.skip("this Python's sqlite3 has no FTS5; the scan scorer is tested instead")
    if request.param == "scan":
        monkeypatch.setattr(local_module, "fts5_available", lambda: False)
    sink = LocalSink(path, dimension=DIMENSION)
    sink.ensure_index()
    yield sink
    sink.close()


def test_search_text_finds_words_of_the_key_and_of_the_text(searchable: LocalSink) -> None:
    sink = searchable
    write_search_corpus(sink)
    by_key = sink.search_text("flower", k=5)
    assert [hit.doc_id for hit in by_key] == [document_id("bkt", "photos/red-flower_2041.JPG")]
    assert by_key[0].score > 0 and by_key[0].source["key"] == "photos/red-flower_2041.JPG"
    assert [h.doc_id for h in sink.search_text("2041", k=5)] == [
        document_id("bkt", "photos/red-flower_2041.JPG")
    ]
    assert [h.doc_id for h in sink.search_text("HARVEST", k=5)] == [document_id("bkt", "docs/report.pdf")]
    assert [h.doc_id for h in sink.search_text("tulips", k=5)] == [document_id("bkt", "docs/report.pdf")]
    assert sink.search_text("   ", k=5) == []
    assert sink.count() == 3


def test_search_text_ranks_the_key_above_the_text_and_takes_query_syntax_as_words(
    searchable: LocalSink,
) -> None:
    sink = searchable
    sink.write(
        [upsert("notes/sunset.txt", "01", text="a poem"), upsert("b.txt", "01", text="a sunset photo")]
    )
    hits = sink.search_text('sunset AND "NEAR(', k=5)
    assert [hit.source["key"] for hit in hits] == ["notes/sunset.txt", "b.txt"]
    assert "text" not in hits[0].source and "embedding" not in hits[0].source
    assert len(sink.search_text("sunset", k=1)) == 1


def test_search_vector_ranks_by_cosine(sink: LocalSink) -> None:
    sink.write(
        [
            upsert("east.jpg", "01", embedding=[1.0, 0.0, 0.0, 0.0]),
            upsert("north-east.jpg", "01", embedding=[2.0, 2.0, 0.0, 0.0]),  # length does not matter
            upsert("north.jpg", "01", embedding=[0.0, 1.0, 0.0, 0.0]),
            upsert("west.jpg", "01", embedding=[-1.0, 0.0, 0.0, 0.0]),
            upsert("blank.jpg", "01", embedding=[0.0, 0.0, 0.0, 0.0]),
            upsert("no-vector.pdf", "01"),
            upsert("gone.jpg", "01", embedding=[1.0, 0.1, 0.0, 0.0]),
        ]
    )
    sink.write([remove("gone.jpg", "02")])
    hits = sink.search_vector([1.0, 0.2, 0.0, 0.0], k=10)
    assert [hit.source["key"] for hit in hits] == ["east.jpg", "north-east.jpg", "north.jpg", "west.jpg"]
    assert hits[0].score == pytest.approx((1 + 1 / 1.0198039) / 2, rel=1e-5), "(1 + cos) / 2"
    assert hits[-1].score == pytest.approx((1 - 1 / 1.0198039) / 2, rel=1e-5)
    assert [hit.source["key"] for hit in sink.search_vector([0.0, 1.0, 0.0, 0.0], k=1)] == ["north.jpg"]
    assert sink.search_vector([0.0, 0.0, 0.0, 0.0], k=3) == []
    with pytest.raises(ValueError, match="4"):
        sink.search_vector([1.0, 0.0], k=3)
