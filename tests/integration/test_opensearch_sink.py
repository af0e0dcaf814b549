"""The OpenSearch sink over real HTTP against osmem-server (a per-test clone), and kNN against a real cluster.

osmem-server answers index creation with knn_vector validation, get/mget, conditional bulk writes (409 per
item) and lexical search, which is everything the guard needs. It cannot run kNN queries: the one kNN test
runs only when OPENSEARCH_URL points at a real OpenSearch.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from opensearchpy import OpenSearch

from app.config import ConfigError, SinkSettings
from app.document import Upsert, document_id
from app.errors import FileError, PermanentError, TransientError
from app.sinks import IndexMismatch, WriteOutcome
from app.sinks.factory import build_sink
from app.sinks.opensearch import OpenSearchSink, build_opensearch_client
from tests.support.components import component_missing, free_port
from tests.support.sink_contract import APPLIED, STALE, GuardContract, remove, upsert, write_search_corpus

pytestmark = pytest.mark.integration

DIMENSION = 4
INDEX = "files"


@pytest.fixture
def osmem_url(request: pytest.FixtureRequest) -> str:
    """A fresh osmem clone's URL (the plugin's fixture), or a loud skip (a failure in CI) without it."""
    if importlib.util.find_spec("osmem_server") is None:
        component_missing("osmem-server is not installed (pip install -e '.[dev]')")
    clone = request.getfixturevalue("osmem_clone")
    return str(clone.url)


def _settings(url: str, **env: str) -> SinkSettings:
    return SinkSettings.from_env({"INDEX_SINK": "opensearch", "OPENSEARCH_URL": url, **env})


@pytest.fixture
def client(osmem_url: str) -> Iterator[OpenSearch]:
    client = build_opensearch_client(_settings(osmem_url), None)
    yield client
    client.close()


@pytest.fixture
def sink(client: OpenSearch) -> OpenSearchSink:
    sink = OpenSearchSink(client, index=INDEX, dimension=DIMENSION)
    sink.ensure_index()
    return sink


def stored(client: OpenSearch, key: str) -> dict[str, Any]:
    return dict(client.get(index=INDEX, id=document_id("bkt", key)))


# -- the index -------------------------------------------------------------------------------------------


def test_ensure_index_creates_the_explicit_mapping(sink: OpenSearchSink, client: OpenSearch) -> None:
    mapping = client.indices.get_mapping(index=INDEX)[INDEX]["mappings"]
    embedding = mapping["properties"]["embedding"]
    assert embedding["type"] == "knn_vector" and embedding["dimension"] == DIMENSION
    assert embedding["method"]["name"] == "hnsw"
    assert embedding["method"]["engine"] == "lucene"
    assert embedding["method"]["space_type"] == "cosinesimil"
    assert str(mapping["dynamic"]).lower() == "false"
    properties = mapping["properties"]
    assert properties["size"]["type"] == "long"
    assert properties["key"]["type"] == "keyword" and properties["key"]["fields"]["text"]["type"] == "text"
    assert properties["image"]["properties"]["exif"]["properties"]["gps"]["type"] == "geo_point"
    assert properties["image"]["properties"]["exif"]["properties"]["captured_at"]["type"] == "date"
    assert properties["extraction"]["properties"]["status"]["type"] == "keyword"
    assert properties["s3_sequencer"]["type"] == "keyword" and properties["deleted"]["type"] == "boolean"
    settings = client.indices.get_settings(index=INDEX)[INDEX]["settings"]["index"]
    assert str(settings["knn"]).lower() == "true"


def test_ensure_index_is_idempotent(sink: OpenSearchSink, client: OpenSearch) -> None:
    sink.write([upsert("a.jpg", "0A")])
    sink.ensure_index()
    OpenSearchSink(client, index=INDEX, dimension=DIMENSION).ensure_index()
    assert stored(client, "a.jpg")["found"], "ensuring an existing index leaves its documents alone"


def test_two_workers_creating_the_index_at_once_both_start(
    client: OpenSearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    OpenSearchSink(client, index=INDEX, dimension=DIMENSION).ensure_index()
    # The loser of the race saw no index, then finds it created when it tries.
    monkeypatch.setattr(client.indices, "exists", lambda **_: False)
    OpenSearchSink(client, index=INDEX, dimension=DIMENSION).ensure_index()


def test_a_different_dimension_is_an_index_mismatch(sink: OpenSearchSink, client: OpenSearch) -> None:
    with pytest.raises(IndexMismatch, match=r"holds 4-dimension .* EMBEDDING_DIMENSION=4"):
        OpenSearchSink(client, index=INDEX, dimension=8).ensure_index()


def test_an_index_made_by_someone_else_is_an_index_mismatch(client: OpenSearch) -> None:
    client.indices.create(index="other", body={"mappings": {"properties": {"embedding": {"type": "float"}}}})
    with pytest.raises(IndexMismatch, match="not created by filefleet"):
        OpenSearchSink(client, index="other", dimension=DIMENSION).ensure_index()


# -- the guard -------------------------------------------------------------------------------------------


class TestGuardContract(GuardContract):
    """The guard's contract (tests/support/sink_contract.py), shared with the local sink."""


def test_the_same_event_twice_is_indexed_once(sink: OpenSearchSink, client: OpenSearch) -> None:
    assert sink.write([upsert("a.jpg", "0A")]) == [APPLIED]
    assert sink.write([upsert("a.jpg", "0A")]) == [STALE]
    assert stored(client, "a.jpg")["_version"] == 1


def test_a_removal_leaves_a_tombstone_that_search_no_longer_finds(
    sink: OpenSearchSink, client: OpenSearch
) -> None:
    sink.write([upsert("tulip.jpg", "0A", text="tulips in spring", embedding=[1.0, 0.0, 0.0, 0.0])])
    client.indices.refresh(index=INDEX)
    assert [hit.doc_id for hit in sink.search_text("tulips", k=5)] == [document_id("bkt", "tulip.jpg")]

    assert sink.write([remove("tulip.jpg", "0B")]) == [APPLIED]
    client.indices.refresh(index=INDEX)
    tombstone = sink.get(document_id("bkt", "tulip.jpg"))
    assert tombstone is not None
    assert tombstone["deleted"] is True and tombstone["s3_sequencer"] == "0B"
    assert "embedding" not in tombstone and "text" not in tombstone
    assert sink.search_text("tulips", k=5) == []
    assert sink.count() == 0


def test_a_stale_create_after_a_removal_stays_removed_even_after_gc_deletes(
    sink: OpenSearchSink, client: OpenSearch
) -> None:
    """A hard delete's version is forgotten after index.gc_deletes; a tombstone is a document and is not."""
    sink.write([upsert("a.jpg", "0A"), remove("a.jpg", "0C")])
    client.indices.put_settings(index=INDEX, body={"index": {"gc_deletes": "0s"}})  # "long after", now
    assert sink.write([upsert("a.jpg", "0B")]) == [STALE]
    assert stored(client, "a.jpg")["_source"]["deleted"] is True


def _write_while_another_worker_interleaves(
    sink: OpenSearchSink,
    client: OpenSearch,
    osmem_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    theirs: Upsert,
) -> tuple[WriteOutcome | FileError, int]:
    """Our write of a.jpg at 0B, with another worker's ``theirs`` landing after our mget, before our bulk.

    Returns our outcome and how many bulk requests we sent.
    """
    other_worker = OpenSearchSink(OpenSearch(hosts=[osmem_url]), index=INDEX, dimension=DIMENSION)
    real_bulk = client.bulk
    calls: list[int] = []

    def bulk_after_an_interloper(**kwargs: Any) -> Any:
        if not calls:
            assert other_worker.write([theirs]) == [APPLIED]
        calls.append(1)
        return real_bulk(**kwargs)

    monkeypatch.setattr(client, "bulk", bulk_after_an_interloper)
    [outcome] = sink.write([upsert("a.jpg", "0B", size=2)])
    other_worker.close()
    return outcome, len(calls)


def test_a_write_landing_between_read_and_write_is_decided_again(
    sink: OpenSearchSink, client: OpenSearch, osmem_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker writes a newer event after our mget: our conditional write meets 409, we re-read."""
    newer = upsert("a.jpg", "0C", size=3)
    outcome, bulks = _write_while_another_worker_interleaves(
        sink, client, osmem_url, monkeypatch, theirs=newer
    )
    assert outcome == STALE
    assert bulks == 1, "the re-read found a newer document: nothing left to write"
    assert stored(client, "a.jpg")["_source"]["size"] == 3


def test_an_older_write_landing_between_read_and_write_is_overwritten(
    sink: OpenSearchSink, client: OpenSearch, osmem_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = upsert("a.jpg", "0A", size=1)
    outcome, bulks = _write_while_another_worker_interleaves(
        sink, client, osmem_url, monkeypatch, theirs=older
    )
    assert outcome == APPLIED
    assert bulks == 2, "409 on create, re-read, then a conditional index over the older document"
    assert stored(client, "a.jpg")["_source"]["size"] == 2


def test_a_writer_that_keeps_losing_the_race_gives_up_transiently(
    client: OpenSearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = OpenSearchSink(client, index=INDEX, dimension=DIMENSION, max_conflict_rounds=2)
    sink.ensure_index()
    real_bulk = client.bulk

    def bulk_after_an_unsequenced_interloper(**kwargs: Any) -> Any:
        client.index(index=INDEX, id=document_id("bkt", "a.jpg"), body={"key": "a.jpg"})
        return real_bulk(**kwargs)

    monkeypatch.setattr(client, "bulk", bulk_after_an_unsequenced_interloper)
    [outcome] = sink.write([upsert("a.jpg", "0B")])
    assert isinstance(outcome, TransientError) and outcome.error_class == "version_conflict_engine_exception"


def test_concurrent_writers_on_one_document_end_with_the_newest(osmem_url: str) -> None:
    """Eight workers (own clients) race on each of five documents; a transient loss retries, as SQS would."""
    writers = 8
    setup = OpenSearchSink(
        build_opensearch_client(_settings(osmem_url), None), index=INDEX, dimension=DIMENSION
    )
    setup.ensure_index()
    keys = [f"race-{n}.jpg" for n in range(5)]
    outcomes: list[WriteOutcome] = []
    lock = threading.Lock()
    start = threading.Barrier(writers)

    def worker(number: int) -> None:
        sink = OpenSearchSink(
            build_opensearch_client(_settings(osmem_url), None), index=INDEX, dimension=DIMENSION
        )
        start.wait()
        for key in keys:
            for _attempt in range(50):
                [outcome] = sink.write([upsert(key, f"{number + 1:02X}", size=number)])
                if not isinstance(outcome, TransientError):
                    break
            assert isinstance(outcome, WriteOutcome), outcome  # else the thread's outcome goes missing
            with lock:
                outcomes.append(outcome)
        sink.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == writers * len(keys)
    for key in keys:
        document = setup.get(document_id("bkt", key))
        assert document is not None and document["s3_sequencer"] == f"{writers:02X}", key
        assert document["size"] == writers - 1
    setup.close()


# -- failures --------------------------------------------------------------------------------------------


def test_a_mapping_error_fails_that_document_only(sink: OpenSearchSink) -> None:
    outcomes = sink.write([upsert("a.jpg", "01"), upsert("b.jpg", "01", size="many"), upsert("c.jpg", "01")])
    assert outcomes[0] == APPLIED and outcomes[2] == APPLIED
    error = outcomes[1]
    assert isinstance(error, PermanentError) and error.error_class == "mapper_parsing_exception"
    assert "size" in error.reason and "redrive" in error.reason
    assert sink.get(document_id("bkt", "b.jpg")) is None


def test_a_wrong_vector_length_fails_that_document_only(sink: OpenSearchSink) -> None:
    outcomes = sink.write([upsert("a.jpg", "01", embedding=[1.0, 2.0]), upsert("b.jpg", "01")])
    assert isinstance(outcomes[0], PermanentError) and "dimension" in outcomes[0].reason.lower()
    assert outcomes[1] == APPLIED


def test_a_document_json_cannot_carry_fails_alone_instead_of_the_whole_bulk(sink: OpenSearchSink) -> None:
    outcomes = sink.write(
        [upsert("a.jpg", "01", embedding=[float("nan"), 0.0, 0.0, 1.0]), upsert("b.jpg", "01")]
    )
    assert isinstance(outcomes[0], PermanentError) and outcomes[0].error_class == "SerializationError"
    assert outcomes[1] == APPLIED


def test_a_sink_that_is_down_makes_every_operation_transient_without_raising() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    sink = OpenSearchSink(build_opensearch_client(_settings(down), None), index=INDEX, dimension=DIMENSION)
    outcomes = sink.write([upsert("a.jpg", "01"), remove("b.jpg", "02"), upsert("a.jpg", "03")])
    assert len(outcomes) == 3
    assert all(isinstance(o, TransientError) and o.error_class == "ConnectionError" for o in outcomes)
    with pytest.raises(TransientError, match="unreachable"):
        sink.ping()
    with pytest.raises(TransientError):
        sink.search_text("flower", k=3)
    with pytest.raises(TransientError):
        sink.ensure_index()
    sink.close()


def test_a_missing_index_is_transient_and_ping_says_so(client: OpenSearch) -> None:
    sink = OpenSearchSink(client, index="never-created", dimension=DIMENSION)
    [outcome] = sink.write([upsert("a.jpg", "01")])
    assert isinstance(outcome, TransientError) and outcome.error_class == "index_not_found_exception"
    assert not client.indices.exists(index="never-created"), "no index auto-created with a guessed mapping"
    with pytest.raises(TransientError, match="does not exist"):
        sink.ping()


def test_ping_passes_when_the_index_answers(sink: OpenSearchSink) -> None:
    sink.ping()


# -- search ----------------------------------------------------------------------------------------------


def test_search_text_finds_words_of_the_key_and_of_the_text(sink: OpenSearchSink, client: OpenSearch) -> None:
    write_search_corpus(sink)
    client.indices.refresh(index=INDEX)
    by_key = sink.search_text("flower", k=5)
    assert [hit.doc_id for hit in by_key] == [document_id("bkt", "photos/red-flower_2041.JPG")]
    assert by_key[0].score > 0 and by_key[0].source["key"] == "photos/red-flower_2041.JPG"
    assert "embedding" not in by_key[0].source
    by_text = sink.search_text("harvest", k=5)
    assert [hit.doc_id for hit in by_text] == [document_id("bkt", "docs/report.pdf")]
    assert [hit.doc_id for hit in sink.search_text("tulips", k=5)] == [document_id("bkt", "docs/report.pdf")]
    assert sink.search_text("   ", k=5) == []
    assert sink.count() == 3


def test_search_vector_needs_a_vector_of_the_index_dimension(sink: OpenSearchSink) -> None:
    with pytest.raises(ValueError, match="4"):
        sink.search_vector([1.0, 2.0], k=3)


def test_search_vector_ranks_by_cosine_on_a_real_opensearch() -> None:
    """kNN against the OpenSearch at OPENSEARCH_URL (docker compose on a laptop).

    osmem-server answers kNN queries with 400, so without OPENSEARCH_URL this test is skipped, even in CI:
    the one skip allowed there. OPENSEARCH_AUTH / OPENSEARCH_USERNAME / OPENSEARCH_PASSWORD apply as for
    the worker. It creates and then deletes its own index.
    """
    if not os.environ.get("OPENSEARCH_URL"):
        pytest.skip("kNN needs a real OpenSearch: set OPENSEARCH_URL (osmem-server has no kNN queries)")
    settings = SinkSettings.from_env({**os.environ, "INDEX_SINK": "opensearch"})
    client = build_opensearch_client(settings, boto3.session.Session())
    index = f"filefleet-test-{uuid.uuid4().hex[:8]}"
    sink = OpenSearchSink(client, index=index, dimension=DIMENSION)
    try:
        sink.ensure_index()
        assert (
            sink.write(
                [
                    upsert("east.jpg", "01", embedding=[1.0, 0.0, 0.0, 0.0]),
                    upsert("north-east.jpg", "01", embedding=[1.0, 1.0, 0.0, 0.0]),
                    upsert("north.jpg", "01", embedding=[0.0, 1.0, 0.0, 0.0]),
                    upsert("gone.jpg", "01", embedding=[1.0, 0.1, 0.0, 0.0]),
                ]
            )
            == [APPLIED] * 4
        )
        sink.write([remove("gone.jpg", "02")])
        client.indices.refresh(index=index)
        hits = sink.search_vector([1.0, 0.2, 0.0, 0.0], k=3)
        assert [hit.source["key"] for hit in hits] == ["east.jpg", "north-east.jpg", "north.jpg"]
        assert hits[0].score > hits[1].score > hits[2].score
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        sink.close()


# -- the client and the factory --------------------------------------------------------------------------


def test_basic_auth_client_talks_to_the_cluster(osmem_url: str) -> None:
    settings = _settings(osmem_url, OPENSEARCH_AUTH="basic", OPENSEARCH_USERNAME="u", OPENSEARCH_PASSWORD="p")
    client = build_opensearch_client(settings, None)
    assert client.indices.exists(index="nothing") is False
    client.close()


def test_sigv4_signs_only_headers_no_proxy_rewrites() -> None:
    settings = _settings("https://search-x.us-east-1.es.amazonaws.com")
    assert settings.auth == "sigv4"
    client = build_opensearch_client(settings, boto3.session.Session(region_name="us-east-1"))
    auth = client.transport.get_connection().session.auth
    request = requests.Request(
        "POST",
        "https://search-x.us-east-1.es.amazonaws.com/_bulk",
        data=b"{}\n",
        headers={"content-type": "application/json", "connection": "keep-alive", "accept-encoding": "gzip"},
    ).prepare()
    signed = auth(request).headers["Authorization"]
    assert "Credential=testing/" in signed and "/us-east-1/es/aws4_request" in signed
    signed_headers = set(signed.split("SignedHeaders=")[1].split(",")[0].split(";"))
    assert {"host", "content-type", "x-amz-date"} <= signed_headers
    assert not signed_headers & {"connection", "accept-encoding", "content-length"}


def test_sigv4_without_credentials_is_a_config_error() -> None:
    class NoCredentials:
        region_name = "us-east-1"

        def get_credentials(self) -> None:
            return None

    settings = _settings("https://search-x.us-east-1.es.amazonaws.com")
    with pytest.raises(ConfigError, match="no AWS credentials"):
        build_opensearch_client(settings, NoCredentials())  # type: ignore[arg-type]


def test_factory_builds_a_lucene_index_for_a_cluster_and_faiss_for_serverless(osmem_url: str) -> None:
    session = boto3.session.Session(region_name="us-east-1")
    cluster = build_sink(_settings(osmem_url), dimension=DIMENSION, session=session)
    assert isinstance(cluster, OpenSearchSink)
    cluster.ensure_index()
    serverless = build_sink(
        _settings(
            osmem_url, OPENSEARCH_INDEX="aoss", OPENSEARCH_AUTH="sigv4", OPENSEARCH_SIGV4_SERVICE="aoss"
        ),
        dimension=DIMENSION,
        session=session,
    )
    serverless.ensure_index()  # signed requests, which osmem ignores
    check = OpenSearch(hosts=[osmem_url])
    mappings = check.indices.get_mapping(index=f"{INDEX},aoss")
    engines = {
        name: m["mappings"]["properties"]["embedding"]["method"]["engine"] for name, m in mappings.items()
    }
    assert engines == {INDEX: "lucene", "aoss": "faiss"}
    for sink in (cluster, serverless):
        sink.close()
    check.close()
