"""`filefleet enqueue` against moto server over real HTTP: counts, filters, paging, the messages the worker
parses, checkpoint resume after a crash, per-entry failures, the rate limit (on a fake clock), bad input."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.aws import AwsClients
from app.enqueue import add_enqueue_parser
from app.enqueue.backfill import Outcome, Plan, run
from app.enqueue.checkpoint import load
from app.enqueue.listing import Filters, S3Location, Skip
from app.enqueue.notification import EVENT_NAME
from app.events import Action, FileEvent, Source, parse_body
from tests.integration.conftest import Queues
from tests.support.bodies import s3_record
from tests.support.fakes import FakeClock

pytestmark = pytest.mark.integration

REGION = "us-east-1"
# Keys the URL encoding of S3 notifications can get wrong: spaces, plus signs, percent signs, Unicode.
AWKWARD_KEYS = [
    "plain.txt",
    "with space.txt",
    "a+b.txt",
    "both + and space.txt",
    "100%.txt",
    "%2B stays literal.txt",
    "日本語/写真 1.JPG",
    "emoji 😀.png",
    "q?x#y&z=1;a,b@c$.txt",
    "tab\there.txt",
    "trailing space ",
    "über/naïve café.pdf",
]


class Crash(BaseException):
    """Stands for the process dying (kill -9, a lost instance): nothing of ours catches it."""


class SqsSpy:
    """The real moto client, with a hook around SendMessageBatch to observe calls and inject failures."""

    def __init__(self, real: Any, hook: Callable[[int, dict[str, Any], Callable[[], Any]], Any]) -> None:
        self.real = real
        self.hook = hook
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def send_message_batch(self, **request: Any) -> Any:
        self.calls += 1
        return self.hook(self.calls, request, lambda: self.real.send_message_batch(**request))


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The command configures the root logger, as every filefleet command does: give it back."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], root.level = saved


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"landing-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


def _put(s3: Any, bucket: str, keys: list[str], *, size: int = 3) -> None:
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x" * size)


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="filefleet")
    add_enqueue_parser(parser.add_subparsers(required=True))
    args = parser.parse_args(["enqueue", *argv])
    return int(args.command(args))


def _drain(sqs: Any, url: str) -> list[FileEvent]:
    """Every message in the queue, parsed the way the worker parses it, and deleted."""
    events: list[FileEvent] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    ):
        for message in batch:
            parsed = parse_body(message["Body"], default_bucket=None)
            assert parsed.ignored == ()
            events.extend(parsed.events)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return events


def _plan(bucket: str, queues: Queues | None, **overrides: Any) -> Plan:
    settings: dict[str, Any] = {
        "location": S3Location(bucket, overrides.pop("prefix", "")),
        "filters": Filters(),
        "queue_url": None if queues is None else queues.url,
        "region": REGION,
        "dry_run": queues is None,
        "count_total": False,
    }
    return Plan(**{**settings, **overrides})


def _run(plan: Plan, s3: Any, sqs: Any, **kwargs: Any) -> Outcome:
    return run(plan, s3=s3, sqs=sqs, clock=kwargs.pop("clock", FakeClock()), **kwargs)


# --- counts and filters -----------------------------------------------------------------------------------


def test_sends_one_parseable_message_per_object_under_the_prefix(
    s3: Any, sqs: Any, queues: Queues, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _put(s3, bucket, [f"in/{i}.jpg" for i in range(23)] + ["out/0.jpg", "inside.jpg"], size=5)
    _put(s3, bucket, ["in/", "in/sub/"], size=0)  # console "folders": no file behind them

    assert _cli(f"s3://{bucket}/in/", "--queue-url", queues.url) == 0

    events = _drain(sqs, queues.url)
    assert sorted(e.key for e in events) == sorted(f"in/{i}.jpg" for i in range(23))
    assert {(e.bucket, e.size, e.action, e.event_name, e.sequencer) for e in events} == {
        (bucket, 5, Action.CREATED, EVENT_NAME, None)
    }
    out = capsys.readouterr().out
    assert "objects   23, 115 bytes" in out
    assert "messages  23 in 3 SendMessageBatch requests" in out
    assert "2 folder placeholders" in out


def test_suffixes_are_case_insensitive_and_repeatable(s3: Any, sqs: Any, queues: Queues, bucket: str) -> None:
    _put(s3, bucket, ["a.jpg", "b.JPG", "c.Jpeg", "d.png", "e.pdf", "f.jpg.txt", "jpg"])

    code = _cli(f"s3://{bucket}", "--queue-url", queues.url, "--suffix", ".jpg", "--suffix", ".JPEG,.png")

    assert code == 0
    assert sorted(e.key for e in _drain(sqs, queues.url)) == ["a.jpg", "b.JPG", "c.Jpeg", "d.png"]


def test_since_compares_last_modified(s3: Any, sqs: Any, queues: Queues, bucket: str) -> None:
    _put(s3, bucket, ["old/1", "old/2"])
    newest_old = max(o["LastModified"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    since = newest_old + timedelta(seconds=1)  # LastModified has whole seconds
    time.sleep(max(0.0, since.timestamp() - time.time()) + 0.05)
    _put(s3, bucket, ["new/1", "new/2"])

    assert _cli(f"s3://{bucket}", "--queue-url", queues.url, "--since", since.isoformat()) == 0

    assert sorted(e.key for e in _drain(sqs, queues.url)) == ["new/1", "new/2"]
    assert _cli(f"s3://{bucket}", "--queue-url", queues.url, "--since", "2000-01-01") == 0
    assert len(_drain(sqs, queues.url)) == 4


def test_crosses_listing_pages_with_more_than_1000_objects(
    s3: Any, sqs: Any, queues: Queues, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [f"bulk/{i:05d}" for i in range(1_003)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))

    assert _cli(f"s3://{bucket}/bulk/", "--dry-run") == 0  # the default page: 1000 keys, then 3
    assert "would enqueue  1,003 objects, 1,003 bytes" in capsys.readouterr().out

    received: list[FileEvent] = []

    def drain_as_we_go(call: int, request: dict[str, Any], send: Callable[[], Any]) -> Any:
        response = send()
        received.extend(_drain(sqs, queues.url))  # moto slows down badly as a queue grows: keep it shallow
        return response

    outcome = _run(_plan(bucket, queues, prefix="bulk/"), s3, SqsSpy(sqs, drain_as_we_go))

    assert outcome.complete and outcome.objects == outcome.messages == 1_003 and outcome.requests == 101
    assert sorted(e.key for e in received) == keys and len(received) == len(keys)  # each once


def test_small_pages_and_filters_skip_without_losing_any(
    s3: Any, sqs: Any, queues: Queues, bucket: str
) -> None:
    keys = [f"k/{i:03d}.{'jpg' if i % 3 else 'txt'}" for i in range(100)]
    _put(s3, bucket, keys)
    s3.put_object(Bucket=bucket, Key="k/cold.jpg", Body=b"1", StorageClass="GLACIER")

    outcome = _run(_plan(bucket, queues, page_size=7, filters=Filters(suffixes=(".jpg",))), s3, sqs)

    wanted = [k for k in keys if k.endswith(".jpg")]
    assert sorted(e.key for e in _drain(sqs, queues.url)) == wanted
    assert outcome.complete and outcome.objects == len(wanted)
    assert outcome.skipped == Counter({Skip.SUFFIX: 100 - len(wanted), Skip.ARCHIVED: 1})


# --- the messages ------------------------------------------------------------------------------------------


def test_awkward_keys_reach_the_worker_decoded(s3: Any, sqs: Any, queues: Queues, bucket: str) -> None:
    _put(s3, bucket, AWKWARD_KEYS, size=4)
    listed = {o["Key"]: o for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}

    assert _cli(f"s3://{bucket}", "--queue-url", queues.url) == 0

    events = {e.key: e for e in _drain(sqs, queues.url)}
    assert sorted(events) == sorted(AWKWARD_KEYS)
    for key, event in events.items():
        assert event == FileEvent(
            action=Action.CREATED,
            bucket=bucket,
            key=key,
            source=Source.S3,
            event_name=EVENT_NAME,
            size=4,
            etag=hashlib.md5(b"xxxx").hexdigest(),  # S3: the MD5 of a single-part upload
            version_id=None,
            sequencer=None,
            event_time=listed[key]["LastModified"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        )


def test_message_has_only_fields_a_real_s3_notification_has(
    s3: Any, sqs: Any, queues: Queues, bucket: str
) -> None:
    _put(s3, bucket, ["photos/a b.jpg"])
    assert _cli(f"s3://{bucket}", "--queue-url", queues.url) == 0
    message = sqs.receive_message(QueueUrl=queues.url)["Messages"][0]
    record = json.loads(message["Body"])["Records"][0]
    real = s3_record("photos/a b.jpg", bucket=bucket)

    assert set(record) <= set(real)
    assert set(record["s3"]) <= set(real["s3"])
    assert set(record["s3"]["object"]) <= set(real["s3"]["object"])
    assert set(record["s3"]["bucket"]) <= set(real["s3"]["bucket"])
    assert record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["object"]["key"] == "photos/a+b.jpg"
    assert "sequencer" not in record["s3"]["object"]
    assert record["awsRegion"] == REGION


# --- dry run ------------------------------------------------------------------------------------------------


def test_dry_run_counts_and_sends_nothing(
    s3: Any, sqs: Any, queues: Queues, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _put(s3, bucket, [f"d/{i}" for i in range(12)], size=1000)
    _put(s3, bucket, ["d/"], size=0)

    assert _cli(f"s3://{bucket}/d/", "--queue-url", queues.url, "--dry-run") == 0

    assert "would enqueue  12 objects, 12,000 bytes (11.7 KiB)" in capsys.readouterr().out
    assert queues.depth(sqs) == (0, 0)
    assert _drain(sqs, queues.url) == []


def test_dry_run_needs_no_queue_and_writes_no_checkpoint(
    s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SQS_QUEUE_URL", raising=False)
    _put(s3, bucket, ["x"])
    checkpoint = tmp_path / "ckpt.json"

    assert _cli(f"s3://{bucket}", "--dry-run", "--checkpoint", str(checkpoint)) == 0
    assert not checkpoint.exists()


# --- checkpoint and resume ----------------------------------------------------------------------------------


@pytest.mark.parametrize("crash_after_ack", [True, False], ids=["after-ack", "before-ack"])
def test_resume_after_a_crash_enqueues_everything_with_at_most_one_batch_twice(
    s3: Any, sqs: Any, queues: Queues, bucket: str, tmp_path: Path, crash_after_ack: bool
) -> None:
    keys = [f"r/{i:03d}" for i in range(57)]
    _put(s3, bucket, keys)
    checkpoint = tmp_path / "ckpt.json"
    crash_on = 4

    def crash(call: int, request: dict[str, Any], send: Callable[[], Any]) -> Any:
        if call == crash_on:
            if crash_after_ack:
                send()  # SQS has the batch; the process dies before the checkpoint records it
            raise Crash
        return send()

    plan = _plan(bucket, queues, checkpoint_path=checkpoint, page_size=8)
    with pytest.raises(Crash):
        _run(plan, s3, SqsSpy(sqs, crash))

    saved = load(checkpoint)
    assert saved is not None and not saved.complete
    assert saved.last_key == keys[(crash_on - 1) * 10 - 1]  # three batches acknowledged and recorded
    assert saved.objects == 30

    resumed = _run(plan, s3, sqs)

    assert resumed.complete and resumed.resumed_after == keys[29]
    counts = Counter(e.key for e in _drain(sqs, queues.url))
    assert set(counts) == set(keys), "nothing skipped"
    twice = sorted(k for k, n in counts.items() if n > 1)
    assert twice == (keys[30:40] if crash_after_ack else []), "at most the batch in flight, once more"
    final = load(checkpoint)
    assert final is not None and final.complete and final.objects == 57


def test_a_completed_checkpoint_sends_nothing_more(
    s3: Any, sqs: Any, queues: Queues, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _put(s3, bucket, ["a", "b"])
    checkpoint = str(tmp_path / "ckpt.json")
    assert _cli(f"s3://{bucket}", "--queue-url", queues.url, "--checkpoint", checkpoint) == 0
    assert len(_drain(sqs, queues.url)) == 2
    capsys.readouterr()

    assert _cli(f"s3://{bucket}", "--queue-url", queues.url, "--checkpoint", checkpoint) == 0

    assert "already finished (2 objects" in capsys.readouterr().out
    assert _drain(sqs, queues.url) == []


def test_a_checkpoint_of_another_run_is_refused(
    s3: Any, queues: Queues, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _put(s3, bucket, ["a"])
    checkpoint = str(tmp_path / "ckpt.json")
    assert _cli(f"s3://{bucket}/a", "--queue-url", queues.url, "--checkpoint", checkpoint) == 0
    capsys.readouterr()

    code = _cli(f"s3://{bucket}/b", "--queue-url", queues.url, "--checkpoint", checkpoint, "--suffix", ".x")

    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and "belongs to another run" in err[0] and "source" in err[0] and "suffixes" in err[0]
    )


def test_ctrl_c_keeps_the_checkpoint_and_exits_130(
    s3: Any,
    sqs: Any,
    queues: Queues,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = [f"i/{i:02d}" for i in range(25)]
    _put(s3, bucket, keys)

    def interrupt_second(call: int, request: dict[str, Any], send: Callable[[], Any]) -> Any:
        if call == 2:
            raise KeyboardInterrupt
        return send()

    real_sqs = AwsClients.sqs
    monkeypatch.setattr(AwsClients, "sqs", lambda self: SqsSpy(real_sqs(self), interrupt_second))
    checkpoint = str(tmp_path / "ckpt.json")
    argv = (f"s3://{bucket}", "--queue-url", queues.url, "--checkpoint", checkpoint)

    assert _cli(*argv) == 130
    captured = capsys.readouterr()
    assert "objects   10," in captured.out and "at 'i/09'" in captured.out
    assert "interrupted; run the same command again to resume" in captured.err

    monkeypatch.setattr(AwsClients, "sqs", real_sqs)
    assert _cli(*argv) == 0
    assert Counter(e.key for e in _drain(sqs, queues.url)) == Counter(keys)


def test_a_fifo_queue_drops_the_batch_a_resume_sends_again(
    s3: Any, sqs: Any, bucket: str, tmp_path: Path
) -> None:
    url = sqs.create_queue(QueueName=f"files-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    keys = [f"q/{i:02d}" for i in range(25)]
    _put(s3, bucket, keys)

    def crash_after_second_ack(call: int, request: dict[str, Any], send: Callable[[], Any]) -> Any:
        response = send()
        if call == 2:
            raise Crash
        return response

    plan = _plan(bucket, None, queue_url=url, dry_run=False, checkpoint_path=tmp_path / "ckpt.json")
    with pytest.raises(Crash):
        _run(plan, s3, SqsSpy(sqs, crash_after_second_ack))
    assert _run(plan, s3, sqs).complete

    assert Counter(e.key for e in _drain(sqs, url)) == Counter(keys), "SQS deduplicated the re-sent batch"


# --- failures -----------------------------------------------------------------------------------------------


def _refuse(
    sqs: Any,
    request: dict[str, Any],
    ids: set[str],
    *,
    code: str = "InternalError",
    sender_fault: bool = False,
) -> dict[str, Any]:
    """What SQS answers when it takes a batch but refuses some entries: the others are really sent."""
    accepted = [entry for entry in request["Entries"] if entry["Id"] not in ids]
    if accepted:
        sqs.send_message_batch(QueueUrl=request["QueueUrl"], Entries=accepted)
    failed = [
        {"Id": i, "Code": code, "Message": "injected", "SenderFault": sender_fault} for i in sorted(ids)
    ]
    return {"Successful": [{"Id": e["Id"]} for e in accepted], "Failed": failed}


def test_entries_sqs_refuses_are_retried_until_accepted(
    s3: Any, sqs: Any, queues: Queues, bucket: str
) -> None:
    keys = [f"f/{i:02d}" for i in range(20)]
    _put(s3, bucket, keys)

    def flaky(call: int, request: dict[str, Any], send: Callable[[], Any]) -> Any:
        if call in (1, 2):  # the first batch: entries 3 and 7 refused, then the second of those again
            return _refuse(sqs, request, {"3", "7"} if call == 1 else {"1"})
        return send()

    clock = FakeClock()
    spy = SqsSpy(sqs, flaky)
    outcome = _run(_plan(bucket, queues), s3, spy, clock=clock)

    assert outcome.complete and outcome.error is None
    assert outcome.retried_entries == 3 and outcome.requests == spy.calls == 4
    assert Counter(e.key for e in _drain(sqs, queues.url)) == Counter(keys), "each exactly once"
    assert clock.slept == [0.5, 1.0]  # backoff on the fake clock


def test_a_batch_that_keeps_failing_stops_the_run_at_the_checkpoint_before_it(
    s3: Any, sqs: Any, queues: Queues, bucket: str, tmp_path: Path
) -> None:
    keys = [f"s/{i:02d}" for i in range(35)]
    _put(s3, bucket, keys)
    checkpoint = tmp_path / "ckpt.json"

    def s20_always_refused(call: int, request: dict[str, Any], send: Callable[[], Any]) -> Any:
        if '"key": "s/20"' in request["Entries"][0]["MessageBody"]:
            return _refuse(sqs, request, {"0"})  # throttled, over and over; the rest of its batch goes
        return send()

    plan = _plan(bucket, queues, checkpoint_path=checkpoint)
    failed = _run(plan, s3, SqsSpy(sqs, s20_always_refused))

    assert not failed.complete and failed.objects == 20
    assert failed.error is not None and "still after 5 attempts" in failed.error and "'s/20'" in failed.error
    saved = load(checkpoint)
    assert saved is not None and saved.last_key == "s/19"

    assert _run(plan, s3, sqs).complete
    counts = Counter(e.key for e in _drain(sqs, queues.url))
    assert set(counts) == set(keys)
    assert sorted(k for k, n in counts.items() if n > 1) == [f"s/{i}" for i in range(21, 30)]


def test_an_entry_sqs_calls_malformed_stops_at_once(
    s3: Any, sqs: Any, queues: Queues, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _put(s3, bucket, ["m/1", "m/2"])

    def refuse(call: int, request: dict[str, Any], send: Callable[[], Any]) -> Any:
        return _refuse(sqs, request, {"1"}, code="InvalidMessageContents", sender_fault=True)

    spy = SqsSpy(sqs, refuse)
    outcome = _run(_plan(bucket, queues), s3, spy)

    assert spy.calls == 1, "a sender fault is not retried"
    assert (
        outcome.error is not None and "InvalidMessageContents" in outcome.error and "'m/2'" in outcome.error
    )


def test_cli_failure_prints_the_summary_then_one_line_and_exits_1(
    s3: Any,
    sqs: Any,
    queues: Queues,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _put(s3, bucket, [f"c/{i:02d}" for i in range(15)])

    def second_call_denied(call: int, request: dict[str, Any], send: Callable[[], Any]) -> Any:
        if call == 2:
            return _refuse(sqs, request, {"0", "1"}, code="AccessDenied", sender_fault=True)
        return send()

    real_sqs = AwsClients.sqs
    monkeypatch.setattr(AwsClients, "sqs", lambda self: SqsSpy(real_sqs(self), second_call_denied))
    checkpoint = str(tmp_path / "ckpt.json")

    assert _cli(f"s3://{bucket}", "--queue-url", queues.url, "--checkpoint", checkpoint) == 1

    captured = capsys.readouterr()
    assert "objects   10, 30 bytes" in captured.out and "stopped" in captured.out
    error = [line for line in captured.err.splitlines() if line.startswith("filefleet: ")]
    assert len(error) == 1 and "AccessDenied" in error[0] and "checkpoint is before 'c/10'" in error[0]


def test_a_missing_queue_is_exit_2_before_anything_is_listed(
    s3: Any, sqs: Any, queues: Queues, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _put(s3, bucket, ["a"])
    sqs.delete_queue(QueueUrl=queues.url)

    assert _cli(f"s3://{bucket}", "--queue-url", queues.url) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]


# --- rate limit ---------------------------------------------------------------------------------------------


def test_max_per_second_is_honoured_on_a_fake_clock(s3: Any, sqs: Any, queues: Queues, bucket: str) -> None:
    keys = [f"p/{i:03d}" for i in range(95)]
    _put(s3, bucket, keys)
    clock = FakeClock()
    sent_at: list[tuple[float, int]] = []

    def record(call: int, request: dict[str, Any], send: Callable[[], Any]) -> Any:
        sent_at.append((clock.now, len(request["Entries"])))
        return send()

    outcome = _run(_plan(bucket, queues, max_per_second=4.0), s3, SqsSpy(sqs, record), clock=clock)

    assert outcome.complete and outcome.messages == 95
    for first in range(len(sent_at)):  # in every window: at most one batch plus rate x its length
        for last in range(first, len(sent_at)):
            sent = sum(count for _, count in sent_at[first : last + 1])
            assert sent <= 10 + 4.0 * (sent_at[last][0] - sent_at[first][0]) + 1e-6
    start = sent_at[0][0]
    assert clock.now - start == pytest.approx((95 - 10) / 4.0)  # and no slower than asked
    assert outcome.rate <= 4.0 * 95 / 85 + 1e-9
    assert len(_drain(sqs, queues.url)) == 95


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["landing/prefix", "s3:/landing", "https://landing.s3.amazonaws.com/x", "s3://", "s3://Bad_Bucket/x"],
)
def test_a_bad_url_is_one_line_and_exit_2(
    url: str, queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(url, "--queue-url", queues.url) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("filefleet: ") and "s3://" in err[0]


def test_a_missing_bucket_is_named(queues: Queues, aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("s3://no-such-bucket-here/x", "--queue-url", queues.url) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "filefleet: s3://no-such-bucket-here: no such bucket (check the name, the account of the credentials "
        "and AWS_ENDPOINT_URL)"
    ]


def test_no_queue_is_one_line_and_exit_2(
    aws: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SQS_QUEUE_URL", raising=False)
    assert _cli("s3://landing/x") == 2
    assert "pass --queue-url or set SQS_QUEUE_URL" in capsys.readouterr().err


def test_queue_url_defaults_to_the_environment(
    s3: Any, sqs: Any, queues: Queues, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put(s3, bucket, ["e"])
    monkeypatch.setenv("SQS_QUEUE_URL", queues.url)
    assert _cli(f"s3://{bucket}") == 0
    assert [e.key for e in _drain(sqs, queues.url)] == ["e"]


def test_a_bad_since_is_one_line_and_exit_2(
    queues: Queues, aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli("s3://landing/x", "--queue-url", queues.url, "--since", "last tuesday") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--since 'last tuesday'" in err[0]
