"""`filefleet enqueue` without AWS: arguments, filters, the message shape, the token bucket, the checkpoint
file, the progress line and the summary."""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.config import ConfigError
from app.enqueue.backfill import Outcome, Plan, _TotalCounter, summary
from app.enqueue.checkpoint import Checkpoint, load, save
from app.enqueue.listing import (
    Filters,
    InputError,
    ListedObject,
    S3Location,
    Skip,
    parse_s3_url,
    parse_since,
    parse_suffixes,
)
from app.enqueue.notification import EVENT_NAME, event_time, notification, outgoing
from app.enqueue.pacing import TokenBucket
from app.enqueue.progress import Progress, duration, human_bytes
from app.events import Action, parse_body
from tests.support.fakes import FakeClock

START = 5_000.0  # where the fake clock starts

WHEN = datetime(2026, 1, 31, 8, 30, 15, 123456, tzinfo=UTC)


def _object(key: str = "a.jpg", **overrides: Any) -> ListedObject:
    fields: dict[str, Any] = {
        "key": key,
        "size": 10,
        "etag": "abc",
        "last_modified": WHEN,
        "storage_class": "STANDARD",
    }
    return ListedObject(**{**fields, **overrides})


# --- arguments ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "bucket", "prefix"),
    [
        ("s3://landing", "landing", ""),
        ("s3://landing/", "landing", ""),
        ("s3://landing/photos/2026/", "landing", "photos/2026/"),
        ("s3://my.bucket-1/a b/c+d%20?#x", "my.bucket-1", "a b/c+d%20?#x"),  # the prefix is taken verbatim
        ("s3://landing/日本語", "landing", "日本語"),
    ],
)
def test_s3_urls(text: str, bucket: str, prefix: str) -> None:
    assert parse_s3_url(text) == S3Location(bucket, prefix)


@pytest.mark.parametrize(
    "text",
    [
        "landing/x",
        "S3://landing",
        "s3:/landing",
        "s3://",
        "s3://ab",
        "s3://Landing",
        "s3://a..b/x",
        "s3:///x",
        "s3://logs--usw2-az1--x-s3/x",
    ],
)
def test_bad_s3_urls_are_input_errors(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_s3_url(text)
    assert isinstance(caught.value, ConfigError) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("2026-01-31T08:00:00", datetime(2026, 1, 31, 8, tzinfo=UTC)),  # no offset: UTC, as S3 keeps time
        ("2026-01-31T08:00:00Z", datetime(2026, 1, 31, 8, tzinfo=UTC)),
        ("2026-01-31T09:00:00+01:00", datetime(2026, 1, 31, 8, tzinfo=UTC)),
        (" 2026-01-31 08:00 ", datetime(2026, 1, 31, 8, tzinfo=UTC)),
    ],
)
def test_since(text: str, expected: datetime) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "31/01/2026", ""])
def test_bad_since(text: str) -> None:
    with pytest.raises(InputError, match="--since"):
        parse_since(text)


def test_suffixes_are_lower_cased_split_on_commas_and_deduplicated() -> None:
    assert parse_suffixes(None) == ()
    assert parse_suffixes([".JPG", ".png,.Jpg", " .pdf "]) == (".jpg", ".png", ".pdf")
    with pytest.raises(InputError, match="empty"):
        parse_suffixes([".jpg,"])


# --- filters ------------------------------------------------------------------------------------------------


def test_filters() -> None:
    filters = Filters(since=WHEN, suffixes=(".jpg", ".pdf"))
    assert filters.skip_reason(_object("folder/", size=0)) is Skip.PLACEHOLDER
    assert filters.skip_reason(_object("a.JPG")) is None
    assert filters.skip_reason(_object("a.jpg", last_modified=WHEN - timedelta(microseconds=1))) is Skip.OLDER
    assert filters.skip_reason(_object("a.jpg", last_modified=WHEN)) is None  # --since is inclusive
    assert filters.skip_reason(_object("a.jpeg")) is Skip.SUFFIX
    assert filters.skip_reason(_object("a.pdf", storage_class="DEEP_ARCHIVE")) is Skip.ARCHIVED
    assert filters.skip_reason(_object("a.pdf", storage_class="GLACIER_IR")) is None  # instant retrieval
    assert Filters(include_archived=True).skip_reason(_object("a", storage_class="GLACIER")) is None
    assert Filters().skip_reason(_object("empty-file", size=0)) is None  # only a trailing "/" is a folder


def test_listed_object_drops_the_quotes_around_the_etag() -> None:
    raw = {"Key": "k", "Size": 3, "ETag": '"9b2cf535f27731c974343645a3985328-2"', "LastModified": WHEN}
    assert ListedObject.from_api(raw) == _object("k", size=3, etag="9b2cf535f27731c974343645a3985328-2")


# --- the message --------------------------------------------------------------------------------------------


_KEY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=200).filter(
    lambda key: not key.endswith("/") and len(key.encode()) <= 1024
)


@given(key=_KEY_TEXT, size=st.integers(min_value=0, max_value=5 * 1024**4))
@settings(max_examples=300, deadline=None)
def test_any_key_reaches_the_worker_decoded(key: str, size: int) -> None:
    body = outgoing("landing", _object(key, size=size), region="eu-west-1").body

    (event,) = parse_body(body.encode(), default_bucket=None).events

    assert (event.bucket, event.key, event.size, event.action) == ("landing", key, size, Action.CREATED)
    assert (event.sequencer, event.version_id, event.event_name) == (None, None, EVENT_NAME)


def test_the_record_is_shaped_like_s3s() -> None:
    record = notification("landing", _object("a b+c.jpg"), region="cn-north-1", partition="aws-cn")[
        "Records"
    ][0]
    assert record["eventVersion"] == "2.1" and record["eventSource"] == "aws:s3"
    assert record["eventTime"] == "2026-01-31T08:30:15.123Z"
    assert record["awsRegion"] == "cn-north-1"
    assert record["s3"]["bucket"] == {"name": "landing", "arn": "arn:aws-cn:s3:::landing"}
    assert record["s3"]["object"] == {"key": "a+b%2Bc.jpg", "size": 10, "eTag": "abc"}


def test_event_time_is_utc_with_milliseconds() -> None:
    tokyo = timezone(timedelta(hours=9))
    assert event_time(datetime(2026, 1, 31, 17, 0, 0, 999999, tzinfo=tokyo)) == "2026-01-31T08:00:00.999Z"


def test_fifo_messages_group_by_key_and_deduplicate_by_content() -> None:
    first = outgoing("landing", _object("a"), region="us-east-1", fifo=True)
    again = outgoing("landing", _object("a"), region="us-east-1", fifo=True)
    changed = outgoing("landing", _object("a", etag="def"), region="us-east-1", fifo=True)
    other = outgoing("landing", _object("b"), region="us-east-1", fifo=True)
    assert first.deduplication_id == again.deduplication_id != changed.deduplication_id
    assert first.group_id == changed.group_id != other.group_id
    assert first.group_id is not None and len(first.group_id) <= 128  # the SQS limits of both IDs
    assert outgoing("landing", _object("a"), region="us-east-1").group_id is None


def test_a_message_of_the_longest_key_is_far_below_the_batch_limit() -> None:
    worst = "😀" * 256  # 1024 bytes, each byte percent-encoded
    assert len(outgoing("landing", _object(worst), region="us-east-1").body.encode()) * 10 < 256 * 1024


# --- token bucket -------------------------------------------------------------------------------------------


@given(
    rate=st.floats(min_value=0.1, max_value=10_000),
    batches=st.lists(st.integers(min_value=1, max_value=10), min_size=1, max_size=60),
)
def test_the_bucket_never_lets_more_than_one_batch_plus_the_rate_through(
    rate: float, batches: list[int]
) -> None:
    clock = FakeClock(START)
    bucket = TokenBucket(rate, capacity=10, clock=clock)
    sent: list[tuple[float, int]] = []
    for count in batches:
        bucket.acquire(count)
        sent.append((clock.now, count))
    for first in range(len(sent)):
        for last in range(first, len(sent)):
            window = sent[last][0] - sent[first][0]
            assert sum(n for _, n in sent[first : last + 1]) <= 10 + rate * window + 1e-6
    # and it waits no longer than it must: everything past the first full bucket, at the rate
    assert clock.now - START <= max(0.0, sum(batches) - 10) / rate + 1e-6


def test_the_bucket_refills_while_the_caller_works() -> None:
    clock = FakeClock(START)
    bucket = TokenBucket(5, capacity=10, clock=clock)
    bucket.acquire(10)
    clock.now += 2.0  # sending took two seconds: 10 tokens are back
    assert bucket.acquire(10) == 0.0
    assert bucket.acquire(5) == pytest.approx(1.0)


def test_the_bucket_sleeps_once_even_when_rounding_leaves_a_sliver_short() -> None:
    clock = FakeClock(now=1e15)  # so far from zero that the clock moves in steps of 1/8 s
    bucket = TokenBucket(3, capacity=10, clock=clock)
    for _ in range(20):
        bucket.acquire(10)
    assert len(clock.slept) == 19


def test_the_bucket_refuses_more_than_it_holds() -> None:
    with pytest.raises(ValueError, match="cannot take 11"):
        TokenBucket(100, capacity=10, clock=FakeClock(START)).acquire(11)


# --- checkpoint ---------------------------------------------------------------------------------------------


def test_checkpoint_round_trip_with_a_unicode_key(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.json"
    assert load(path) is None
    checkpoint = Checkpoint(run={"source": "s3://landing/"}).advanced(
        last_key="日本語/a b+c", objects=10, size=100, messages=10
    )
    save(path, checkpoint)
    assert load(path) == checkpoint
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.json"]  # no temporary left behind


def test_a_failed_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ckpt.json"
    before = Checkpoint(run={}, last_key="a", objects=1)
    save(path, before)

    def full_disk(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        save(path, before.advanced(last_key="b", objects=1, size=1, messages=1))

    assert load(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.json"]


@pytest.mark.parametrize(
    "text", ["", "{", "[]", '{"format": "other"}', '{"format": "filefleet-enqueue-checkpoint/1"}']
)
def test_a_file_that_is_not_a_checkpoint_is_an_input_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ckpt.json"
    path.write_text(text)
    with pytest.raises(InputError, match="not a checkpoint"):
        load(path)


def test_mismatch_names_each_difference() -> None:
    saved = Checkpoint(run={"source": "s3://a/", "suffixes": [".jpg"]})
    assert saved.mismatch({"source": "s3://a/", "suffixes": [".jpg"]}) == []
    assert saved.mismatch({"source": "s3://b/", "suffixes": [".jpg"]}) == ["source 's3://a/' → 's3://b/'"]


# --- progress and summary -----------------------------------------------------------------------------------


def test_progress_on_a_terminal_redraws_one_line() -> None:
    stream, clock = io.StringIO(), FakeClock(START)
    progress = Progress(stream, tty=True, clock=clock)
    progress.set_total(200, 2000, final=True)
    clock.now += 1
    progress.update(50, 500)
    progress.update(60, 600)  # within 0.1 s: not drawn
    clock.now += 1
    progress.finish(100, 1000)

    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "[######------------------]  25%  50/200 objects  500 B  50/s  ETA 0:00:03\x1b[K" in text
    assert "50%  100/200 objects" in text


def test_progress_in_a_log_writes_a_plain_line_every_ten_seconds() -> None:
    stream, clock = io.StringIO(), FakeClock(START)
    progress = Progress(stream, tty=False, clock=clock)
    progress.set_total(1000, 0, final=False)
    for _ in range(30):
        clock.now += 1
        progress.update(int(clock.now - START) * 10, 0)
    progress.finish(300, 0)

    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    assert lines[0] == "filefleet enqueue: enqueued 10/≥1,000 objects (counting)  0 B  10/s"
    assert len(lines) == 4  # at 1 s, 11 s, 21 s, and the last one


def test_the_counting_thread_gives_the_bar_its_total() -> None:
    progress = Progress(io.StringIO(), tty=False, clock=FakeClock(START))
    objects = [_object(f"k{i}", size=i) for i in range(25)] + [_object("dir/", size=0)]
    counter = _TotalCounter(lambda: iter(objects), Filters(), progress, report_every=10)
    counter.start()
    counter.join(5)
    assert "25/25 objects" in progress.line(25, 0, now=5_001.0)


def test_a_failing_count_leaves_the_bar_without_a_total() -> None:
    progress = Progress(io.StringIO(), tty=False, clock=FakeClock(START))

    def broken() -> Any:
        raise RuntimeError("listing failed")

    counter = _TotalCounter(broken, Filters(), progress)
    counter.start()
    counter.join(5)
    assert progress.line(3, 0, now=5_001.0).startswith("enqueued 3 objects")


def test_summary_of_a_run_and_of_a_dry_run() -> None:
    plan = Plan(
        location=S3Location("landing", "in/"),
        filters=Filters(),
        queue_url="https://sqs.us-east-1.amazonaws.com/1/files",
        region="us-east-1",
        checkpoint_path=Path("ckpt.json"),
    )
    outcome = Outcome(
        objects=25,
        bytes=3 * 1024**3,
        messages=25,
        requests=4,
        retried_entries=2,
        skipped=Counter({Skip.PLACEHOLDER: 2, Skip.SUFFIX: 5}),
        seconds=2.0,
        complete=True,
        checkpoint=Checkpoint(run={}, last_key="in/z", complete=True, objects=25, bytes=3 * 1024**3),
    )
    text = summary(plan, outcome)
    assert text.splitlines() == [
        "enqueue: s3://landing/in/ → https://sqs.us-east-1.amazonaws.com/1/files",
        "  objects   25, 3,221,225,472 bytes (3.0 GiB)",
        "  messages  25 in 4 SendMessageBatch requests (2 entries retried)",
        "  skipped   2 folder placeholders, 5 not matching --suffix",
        "  time      2.0 s, 12.5 objects/s",
        "  checkpoint ckpt.json: complete; all runs: 25 objects, 3,221,225,472 bytes (3.0 GiB)",
    ]
    dry = summary(
        Plan(location=plan.location, filters=Filters(), queue_url=None, region="us-east-1", dry_run=True),
        Outcome(objects=7, bytes=7, seconds=0.5, complete=True),
    )
    assert dry.splitlines()[:2] == [
        "dry run: s3://landing/in/ (nothing sent)",
        "  would enqueue  7 objects, 7 bytes (7 B)",
    ]


def test_human_sizes_and_durations() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1024, 5 * 1024**4, 3 * 1024**5)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "5.0 TiB",
        "3072.0 TiB",
    ]
    assert [duration(s) for s in (0, 59.6, 3600 * 30 + 61)] == ["0:00:00", "0:01:00", "30:01:01"]


def test_the_command_module_imports_no_boto3() -> None:
    import subprocess
    import sys

    code = "import sys, app.enqueue; print('boto3' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_messages_are_json_objects_with_one_record() -> None:
    body = json.loads(outgoing("landing", _object(), region="us-east-1").body)
    assert list(body) == ["Records"] and len(body["Records"]) == 1
