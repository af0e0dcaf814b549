"""`filefleet demo`: the real worker and pipeline end to end, on this machine, with no AWS account.

An embedded moto server (S3 and SQS over real HTTP on 127.0.0.1) stands in for AWS; the local embedder and
the one-file local index stand in for Bedrock and OpenSearch. Everything else is the production code path:
S3 → SQS notification → worker → fetch → sniff → extract → embed → index → delete or dead-letter.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.aws import AwsClients
from app.config import Settings
from app.devtools import bootstrap
from app.drain import DrainSignal
from app.events import InvalidMessage, parse_body
from app.logs import configure_logging
from app.runtime import IndexRuntime, QueueRoutes, build_worker
from app.samples import Sample, demo_samples, samples_from_folder
from app.search import print_hits, search
from app.stats import RunStats

BUCKET = "filefleet-demo"
QUEUE = "filefleet-demo-files"
DIMENSION = "256"
IDLE_SECONDS = 1.5
REMOVED_KEY = "docs/obsolete draft.txt"  # uploaded, then deleted: shows a removal reaching the index


def run_demo(*, folder: Path | None, workdir: Path) -> int:
    started = time.monotonic()
    samples = samples_from_folder(folder) if folder else demo_samples()
    if not samples:
        print(f"filefleet demo: {folder} holds no files")
        return 1
    workdir = _fresh(workdir)
    sample_dir = _write_samples(samples, workdir) if folder is None else folder
    with _embedded_aws() as endpoint, (workdir / "worker.log").open("w") as log_file:
        configure_logging("INFO", stream=log_file)
        env = {
            "AWS_REGION": "us-east-1",
            "SQS_QUEUE_URL": f"{endpoint}/123456789012/{QUEUE}",
            "INDEX_SINK": "local",
            "LOCAL_INDEX_PATH": str(workdir / "index.sqlite3"),
            "EMBEDDER": "local",
            "EMBEDDING_DIMENSION": DIMENSION,
            "WORKER_CONCURRENCY": "4",
            "VISIBILITY_TIMEOUT": "60",
            "WAIT_TIME_SECONDS": "1",
            "WORKER_ID": "demo",
        }
        settings = Settings.from_env(env)
        clients = AwsClients(region=settings.aws_region, concurrency=settings.queue.worker_concurrency)
        dlq_url = bootstrap(clients, bucket=BUCKET, queue=QUEUE).dead_letter_queue_url
        uploaded = _upload(clients, samples)
        print(_header(endpoint, workdir, len(samples), uploaded))
        routes = QueueRoutes.resolve(settings.queue, clients)
        index = IndexRuntime.open(clients, settings.embedder, settings.sink)
        try:
            stats = RunStats()
            worker = build_worker(settings, routes, index, drain=DrainSignal(), stats=stats)
            worker_started = time.monotonic()
            result = worker.run(until_idle=IDLE_SECONDS)
            busy = max(time.monotonic() - worker_started - worker.idle_seconds(), 1e-3)
            files = sum(n for name, n in stats.snapshot().items() if name.startswith("by_type|"))
            print(f"\n  processed {files} file events in {busy:.1f} s ({files / busy:.1f} files/s)\n")
            print(_outcome_table(stats.snapshot()))
            print(_dead_letters(clients, dlq_url))
            like = _example_searches(index, sample_dir, samples)
        finally:
            index.close()
    logging.getLogger().handlers.clear()
    print(_try_it_yourself(workdir, like))
    print(f"  demo finished in {time.monotonic() - started:.1f} s; worker log: {workdir / 'worker.log'}")
    return result.exit_code


@contextmanager
def _embedded_aws() -> Iterator[str]:
    """moto's S3 and SQS in this process, on a free 127.0.0.1 port, with throwaway credentials."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - a demo-only dependency

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = dict(os.environ)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="demo",
        AWS_SECRET_ACCESS_KEY="demo",  # noqa: S106 - moto accepts anything
        AWS_REGION="us-east-1",
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    try:
        yield endpoint
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


def _upload(clients: AwsClients, samples: list[Sample]) -> int:
    s3 = clients.s3()
    total = 0
    for sample in samples:
        s3.put_object(Bucket=BUCKET, Key=sample.key, Body=sample.data)
        total += len(sample.data)
    s3.put_object(Bucket=BUCKET, Key=REMOVED_KEY, Body=b"this draft is deleted right after upload")
    s3.delete_object(Bucket=BUCKET, Key=REMOVED_KEY)
    return total


def _header(endpoint: str, workdir: Path, count: int, size: int) -> str:
    return (
        "filefleet demo: S3 → SQS → worker → local index, all on this machine\n"
        f"  S3 and SQS   moto on {endpoint} (in this process)\n"
        f"  embedder     local, {DIMENSION} dimensions (finds look-alikes, not meaning: Titan's job)\n"
        f"  index        {workdir / 'index.sqlite3'}\n"
        f"  uploaded     {count} files ({size / 1024 / 1024:.1f} MiB) to s3://{BUCKET}/, "
        "and one more deleted at once"
    )


def _outcome_table(counts: dict[str, int]) -> str:
    rows = [
        (name.split("|")[1], name.split("|")[2], n)
        for name, n in counts.items()
        if name.startswith("by_type|")
    ]
    lines = [f"  {'content type':<34}{'outcome':<18}files"]
    lines += [f"  {kind:<34}{outcome:<18}{n:>5}" for kind, outcome, n in sorted(rows)]
    messages = {name.split(".", 1)[1]: n for name, n in counts.items() if name.startswith("messages.")}
    ignored = sum(n for name, n in counts.items() if name.startswith("ignored."))
    lines.append(
        f"\n  messages: {messages.get('received', 0)} received, {messages.get('ack', 0)} deleted, "
        f"{messages.get('dead_letter', 0)} dead-lettered, {messages.get('retry', 0)} retried"
        f" ({ignored} S3 test event{'s' if ignored != 1 else ''} acknowledged)"
    )
    return "\n".join(lines)


def _dead_letters(clients: AwsClients, dlq_url: str) -> str:
    sqs = clients.sqs()
    messages: list[Any] = []
    while batch := sqs.receive_message(
        QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
    ).get("Messages", []):
        messages += batch
    if not messages:
        return "\n  dead-lettered: none"
    lines = [f"\n  dead-lettered ({len(messages)}), with the reason an operator sees in the DLQ:"]
    for message in messages:
        attributes = {
            name: value.get("StringValue", "") for name, value in message["MessageAttributes"].items()
        }
        reason = attributes.get("filefleet.reason", "?")
        lines.append(
            f"    {_key_of(message['Body']):<30} {attributes.get('filefleet.error_class', '?')}: {reason}"
        )
    return "\n".join(lines)


def _key_of(body: str) -> str:
    try:
        events = parse_body(body, default_bucket=BUCKET).events
    except InvalidMessage:
        return "(unparseable body)"
    return events[0].key if events else "(no file)"


def _example_searches(index: IndexRuntime, sample_dir: Path, samples: list[Sample]) -> Path | None:
    print('\n  search "invoice" (words in keys, texts and PDFs):')
    print_hits(search(index, text="invoice", like=None, k=3), indent="    ")
    photos = [
        s
        for s in samples
        if s.key.lower().endswith((".jpg", ".jpeg", ".png")) and not s.key.startswith("bad/")
    ]
    if not photos:
        return None
    like = sample_dir / photos[1 if len(photos) > 1 else 0].key
    print(f"\n  search --like '{like}' (look-alike images):")
    print_hits(search(index, text=None, like=like, k=3), indent="    ")
    return like


def _try_it_yourself(workdir: Path, like: Path | None) -> str:
    env = (
        f"INDEX_SINK=local LOCAL_INDEX_PATH={workdir / 'index.sqlite3'} "
        f"EMBEDDER=local EMBEDDING_DIMENSION={DIMENSION}"
    )
    lines = ["\n  try it yourself:", f"    {env} .venv/bin/filefleet search tripod"]
    if like is not None:
        lines.append(f"    {env} .venv/bin/filefleet search --like '{like}'")
    return "\n".join(lines) + "\n"


def _fresh(workdir: Path) -> Path:
    """Each demo starts from an empty index; the samples are rewritten too."""
    for stale in ("index.sqlite3", "index.sqlite3-wal", "index.sqlite3-shm", "samples"):
        path = workdir / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def _write_samples(samples: list[Sample], workdir: Path) -> Path:
    root = workdir / "samples"
    for sample in samples:
        path = root / sample.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sample.data)
    return root
