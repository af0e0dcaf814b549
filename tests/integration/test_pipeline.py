"""The whole pipeline through real components: moto's S3 and SQS, osmem (OpenSearch API), the Titan stub.

Each test runs the production worker (app.runtime wiring, as `filefleet worker` does) until idle.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import pytest
from opensearchpy import OpenSearch

from app import samples as sample
from app.aws import AwsClients
from app.config import Settings
from app.document import document_id
from app.drain import DrainSignal
from app.runtime import IndexRuntime, QueueRoutes, build_worker
from app.stats import RunStats
from app.worker import RunResult
from tests.corpus.cases import cases
from tests.integration.conftest import Queues, notifying_bucket
from tests.support.bodies import s3_body
from tests.support.titan_stub import TitanStub, titan_stub

INDEX = "files"


@pytest.fixture
def titan(monkeypatch: pytest.MonkeyPatch) -> Iterator[TitanStub]:
    with titan_stub() as stub:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", stub.url)
        yield stub


@pytest.fixture
def opensearch_url(osmem_clone: Any) -> str:
    return str(osmem_clone.url)


@dataclass
class Landing:
    """A bucket whose uploads notify the queue, as the fleet's stack sets it up."""

    bucket: str
    queues: Queues

    def put(self, s3: Any, key: str, data: bytes) -> None:
        s3.put_object(Bucket=self.bucket, Key=key, Body=data)


@pytest.fixture
def landing(s3: Any, queues: Queues) -> Landing:
    return Landing(notifying_bucket(s3, queues, prefix="landing", removals=True), queues)


def run_worker(queues: Queues, opensearch_url: str, **env: str) -> tuple[RunResult, RunStats]:
    settings = Settings.from_env(
        {
            "AWS_REGION": "us-east-1",
            "SQS_QUEUE_URL": queues.url,
            "OPENSEARCH_URL": opensearch_url,
            "OPENSEARCH_INDEX": INDEX,
            "EMBEDDER": "titan",
            "WORKER_CONCURRENCY": "4",
            "WAIT_TIME_SECONDS": "1",
            "RETRY_BASE_SECONDS": "30",
            "WORKER_ID": "test-worker",
            **env,
        }
    )
    clients = AwsClients(region=settings.aws_region, concurrency=settings.queue.worker_concurrency)
    index = IndexRuntime.open(clients, settings.embedder, settings.sink)
    stats = RunStats()
    try:
        worker = build_worker(
            settings, QueueRoutes.resolve(settings.queue, clients), index, drain=DrainSignal(), stats=stats
        )
        return worker.run(until_idle=1), stats
    finally:
        index.close()


def _doc(url: str, bucket: str, key: str) -> dict[str, Any]:
    response = OpenSearch(hosts=[url]).get(index=INDEX, id=document_id(bucket, key))
    return dict(response)


def _source(url: str, bucket: str, key: str) -> dict[str, Any]:
    return dict(_doc(url, bucket, key)["_source"])


def _dead_letters(sqs: Any, queues: Queues) -> dict[str, dict[str, str]]:
    """Dead-lettered keys with their filefleet.* attributes."""
    found: dict[str, dict[str, str]] = {}
    while batch := sqs.receive_message(
        QueueUrl=queues.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
    ).get("Messages", []):
        for message in batch:
            record = json.loads(message["Body"])["Records"][0]
            key = unquote_plus(record["s3"]["object"]["key"])
            found[key] = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    return found


def test_each_file_type_becomes_a_document(
    sqs: Any, s3: Any, landing: Landing, opensearch_url: str, titan: TitanStub
) -> None:
    files = {
        "photos/harbour.jpg": sample.photo(1600, 1200, seed=2),
        "graphics/logo.png": sample.png(64, 64),
        "docs/readme.md": b"# Harbour office\n\nOpening hours and the tripod rental desk.\n",
        "docs/order.pdf": sample.pdf(["Purchase order 4711", "Deliver to the harbour office"]),
        "docs/table.csv": b"sku,name\nA1,lens cap\n",
    }
    for key, data in files.items():
        landing.put(s3, key, data)

    result, _ = run_worker(landing.queues, opensearch_url)

    assert result.exit_code == 0 and result.stats["messages.ack"] == len(files) + 1  # + the S3 test event
    photo = _source(opensearch_url, landing.bucket, "photos/harbour.jpg")
    assert photo["content_type"] == "image/jpeg" and photo["image"]["width"] == 1600
    assert photo["image"]["exif"]["make"] == "FileFleet"
    assert len(photo["embedding"]) == 1024 and photo["embedding_model"] == "amazon.titan-embed-image-v1"
    assert (
        photo["bucket"] == landing.bucket
        and photo["worker_id"] == "test-worker"
        and photo["deleted"] is False
    )
    pdf = _source(opensearch_url, landing.bucket, "docs/order.pdf")
    assert "Purchase order 4711" in pdf["text"] and pdf["page_count"] == 1 and len(pdf["embedding"]) == 1024
    assert _source(opensearch_url, landing.bucket, "docs/table.csv")["content_type"] == "text/csv"
    images = [r for r in titan.successful() if r.image_format is not None]
    assert {r.image_format for r in images} == {"JPEG"}, "every image reaches Titan as base64 JPEG"
    assert all(max(r.image_size or (0, 0)) <= 1024 for r in images)
    texts = [r for r in titan.successful() if r.text is not None]
    assert any("tripod rental desk" in (r.text or "") for r in texts)


def test_the_bad_input_corpus_lands_where_it_should(
    sqs: Any, s3: Any, landing: Landing, opensearch_url: str, titan: TitanStub
) -> None:
    corpus = cases()
    for case in corpus:
        if case.data is not None and case.declared_size is None:
            landing.put(s3, case.key, case.data)
    # Messages no upload produces: a key that was never uploaded, a size over MAX_FILE_BYTES.
    for case in [c for c in corpus if c.data is None or c.declared_size is not None]:
        sqs.send_message(
            QueueUrl=landing.queues.url,
            MessageBody=s3_body(
                case.key, bucket=landing.bucket, size=case.declared_size or 10, sequencer=None
            ),
        )

    result, stats = run_worker(landing.queues, opensearch_url, PDF_MAX_PAGES="5", TEXT_MAX_CHARS="50000")

    assert result.exit_code == 0
    dead = _dead_letters(sqs, landing.queues)
    for case in corpus:
        if case.expect.startswith("dead_letter:"):
            assert case.key in dead, f"{case.name}: expected in the DLQ"
            assert dead[case.key]["filefleet.error_class"] == case.expect.split(":", 1)[1], case.name
            assert dead[case.key]["filefleet.reason"], case.name
            continue
        assert case.key not in dead, f"{case.name}: dead-lettered: {dead.get(case.key)}"
        if case.expect == "gone":
            continue
        source = _source(opensearch_url, landing.bucket, case.key)
        status = source["extraction"]["status"]
        assert status == ("ok" if case.expect == "indexed" else "metadata_only"), (
            case.name,
            source["extraction"],
        )
        for path, expected in case.fields.items():
            value: Any = source
            for part in path.split("."):
                value = value[part]
            if path == "text":
                assert str(expected) in value, case.name
            else:
                assert value == expected, (case.name, path)
    assert stats.get("by_type|-|gone") == 1  # never fetched: no content type
    assert landing.queues.depth(sqs) == (0, 0), "nothing is left behind"


def test_a_redelivered_event_indexes_once_and_an_older_one_changes_nothing(
    sqs: Any, s3: Any, queues: Queues, opensearch_url: str, titan: TitanStub
) -> None:
    bucket = f"seq-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="report.txt", Body=b"quarterly report")
    newer, older = "0055AED6DCD90281E5", "0055AED6DCD90281E4"
    sqs.send_message(QueueUrl=queues.url, MessageBody=s3_body("report.txt", bucket=bucket, sequencer=newer))
    run_worker(queues, opensearch_url)
    first = _doc(opensearch_url, bucket, "report.txt")

    for sequencer in (newer, older):  # the same event again, then an older one
        sqs.send_message(
            QueueUrl=queues.url, MessageBody=s3_body("report.txt", bucket=bucket, sequencer=sequencer)
        )
    result, _ = run_worker(queues, opensearch_url)

    after = _doc(opensearch_url, bucket, "report.txt")
    assert result.stats["files.stale"] == 2 and result.stats["messages.ack"] == 2
    assert after["_seq_no"] == first["_seq_no"], "the document was not written again"
    assert after["_source"]["s3_sequencer"] == newer


def test_a_removal_after_a_creation_removes_and_a_late_creation_does_not_resurrect(
    sqs: Any, s3: Any, queues: Queues, opensearch_url: str, titan: TitanStub
) -> None:
    bucket = f"rm-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="notes/tripod.txt", Body=b"tripod rental notes")
    create, remove = "00000000000000000000A1", "00000000000000000000B2"
    sqs.send_message(
        QueueUrl=queues.url, MessageBody=s3_body("notes/tripod.txt", bucket=bucket, sequencer=create)
    )
    run_worker(queues, opensearch_url)
    assert _source(opensearch_url, bucket, "notes/tripod.txt")["deleted"] is False

    removal = s3_body("notes/tripod.txt", bucket=bucket, sequencer=remove, event_name="ObjectRemoved:Delete")
    sqs.send_message(QueueUrl=queues.url, MessageBody=removal)
    late_create = s3_body("notes/tripod.txt", bucket=bucket, sequencer=create)  # delivered again, late
    run_worker(queues, opensearch_url)
    sqs.send_message(QueueUrl=queues.url, MessageBody=late_create)
    result, _ = run_worker(queues, opensearch_url)

    tombstone = _source(opensearch_url, bucket, "notes/tripod.txt")
    assert tombstone["deleted"] is True and tombstone["s3_sequencer"] == remove
    assert result.stats["files.stale"] == 1
    client = OpenSearch(hosts=[opensearch_url])
    client.indices.refresh(index=INDEX)
    hits = client.search(index=INDEX, body={"query": {"match": {"text": "tripod"}}})["hits"]["hits"]
    assert [h for h in hits if not h["_source"].get("deleted")] == []


def test_in_a_versioned_bucket_the_document_follows_the_current_version_as_versions_are_deleted(
    sqs: Any, s3: Any, queues: Queues, opensearch_url: str, titan: TitanStub
) -> None:
    """The fleet's bucket is versioned: deleting one version must not drop a file that still exists."""
    bucket = f"ver-{uuid.uuid4().hex[:10]}"
    key = "notes/kit list.txt"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    versions = [
        s3.put_object(Bucket=bucket, Key=key, Body=text.encode())["VersionId"]
        for text in ("alpha tripod", "bravo lens", "charlie strap")
    ]
    sequencers = iter(f"{n:018X}" for n in range(0x10, 0x20))

    def deliver(event_name: str, version_id: str) -> RunResult:
        body = s3_body(
            key, bucket=bucket, event_name=event_name, sequencer=next(sequencers), version_id=version_id
        )
        sqs.send_message(QueueUrl=queues.url, MessageBody=body)
        result, _ = run_worker(queues, opensearch_url)
        assert result.stats["messages.ack"] == 1, result.stats
        return result

    deliver("ObjectCreated:Put", versions[2])
    assert _source(opensearch_url, bucket, key)["text"] == "charlie strap"

    # a noncurrent version goes (a user, or the lifecycle rule): the file is still there
    s3.delete_object(Bucket=bucket, Key=key, VersionId=versions[0])
    deliver("ObjectRemoved:Delete", versions[0])
    source = _source(opensearch_url, bucket, key)
    assert (source["deleted"], source["text"], source["version_id"]) == (False, "charlie strap", versions[2])

    # the current version goes: the one before it is the file now
    s3.delete_object(Bucket=bucket, Key=key, VersionId=versions[2])
    deliver("ObjectRemoved:Delete", versions[2])
    source = _source(opensearch_url, bucket, key)
    assert (source["deleted"], source["text"], source["version_id"]) == (False, "bravo lens", versions[1])

    # a plain DELETE puts a delete marker on top: the file is gone
    marker = s3.delete_object(Bucket=bucket, Key=key)["VersionId"]
    deliver("ObjectRemoved:DeleteMarkerCreated", marker)
    assert _source(opensearch_url, bucket, key)["deleted"] is True

    # removing the delete marker brings the file back ("undelete")
    s3.delete_object(Bucket=bucket, Key=key, VersionId=marker)
    deliver("ObjectRemoved:Delete", marker)
    source = _source(opensearch_url, bucket, key)
    assert (source["deleted"], source["text"]) == (False, "bravo lens")

    # the last version goes: nothing is left
    s3.delete_object(Bucket=bucket, Key=key, VersionId=versions[1])
    result = deliver("ObjectRemoved:Delete", versions[1])
    assert _source(opensearch_url, bucket, key)["deleted"] is True
    assert result.stats["files.removed"] == 1


def test_when_the_sink_is_down_every_message_is_retried_and_none_is_lost(
    sqs: Any, s3: Any, landing: Landing, osmem_clone: Any, titan: TitanStub
) -> None:
    url = str(osmem_clone.url)
    OpenSearch(hosts=[url]).indices.create(index="warmup")  # the clone answers; now take it away
    for i in range(3):
        landing.put(s3, f"docs/{i}.txt", f"document {i}".encode())
    settings_env = {"OPENSEARCH_URL": url}
    settings = Settings.from_env(
        {
            "AWS_REGION": "us-east-1",
            "SQS_QUEUE_URL": landing.queues.url,
            "EMBEDDER": "titan",
            "WAIT_TIME_SECONDS": "1",
            "RETRY_BASE_SECONDS": "60",
            **settings_env,
        }
    )
    clients = AwsClients(region="us-east-1", concurrency=2)
    index = IndexRuntime.open(clients, settings.embedder, settings.sink)
    osmem_clone.close()  # OpenSearch goes away after start-up
    stats = RunStats()
    try:
        worker = build_worker(
            settings, QueueRoutes.resolve(settings.queue, clients), index, drain=DrainSignal(), stats=stats
        )
        result = worker.run(until_idle=1)
    finally:
        index.close()

    assert (
        result.stats["messages.retry"] == 3 and result.stats.get("messages.ack", 0) == 1
    )  # the S3 test event
    assert result.stats.get("messages.dead_letter", 0) == 0
    visible, in_flight = landing.queues.depth(sqs)
    assert (visible, in_flight) == (0, 3), "all three wait for their retry: none deleted, none lost"
