"""Backoff, the outcome decision, the dead-letter message and prefetch: small policies, pinned down."""

from __future__ import annotations

import random

import pytest

from app.consumer.backoff import ExponentialBackoff
from app.consumer.deadletter import dead_letter_message
from app.consumer.outcome import DeadLetter, Retry, outcome_of_failure
from app.consumer.prefetch import PrefetchPolicy
from app.consumer.queue import OutgoingMessage, _size_bounded_chunks
from app.errors import PermanentError, TransientError
from tests.support.fakes import message


def test_backoff_doubles_with_each_receive_within_equal_jitter() -> None:
    backoff = ExponentialBackoff(base_seconds=10, max_seconds=900, rng=random.Random(7))
    for receive_count, ceiling in [(1, 10), (2, 20), (3, 40), (4, 80), (7, 640)]:
        delays = {backoff.delay_for(receive_count) for _ in range(200)}
        assert min(delays) >= ceiling / 2 and max(delays) <= ceiling
        assert len(delays) > 1, "jitter spreads retries out"


def test_backoff_is_capped_and_never_zero() -> None:
    backoff = ExponentialBackoff(base_seconds=1, max_seconds=900)
    assert all(450 <= backoff.delay_for(count) <= 900 for count in (11, 50, 10_000))
    assert all(backoff.delay_for(count) >= 1 for count in (0, 1, -3))


def test_permanent_errors_dead_letter_at_once() -> None:
    outcome = outcome_of_failure(
        PermanentError("corrupt JPEG", error_class="CorruptImage"),
        message(1),
        backoff=ExponentialBackoff(10, 900),
        max_receive_count=5,
    )
    assert outcome == DeadLetter(error_class="CorruptImage", reason="corrupt JPEG")


def test_transient_errors_retry_until_the_last_delivery_then_dead_letter_with_reason() -> None:
    backoff = ExponentialBackoff(10, 900)
    error = TransientError("503 from OpenSearch", error_class="SinkUnavailable")
    early = outcome_of_failure(error, message(1, receive_count=4), backoff=backoff, max_receive_count=5)
    assert (
        isinstance(early, Retry) and 40 <= early.delay_seconds <= 80 and early.reason == "503 from OpenSearch"
    )
    last = outcome_of_failure(error, message(1, receive_count=5), backoff=backoff, max_receive_count=5)
    assert last == DeadLetter(
        error_class="SinkUnavailable", reason="gave up after 5 attempts: 503 from OpenSearch"
    )


def test_a_dead_letter_keeps_the_body_and_says_why_in_attributes() -> None:
    original = message(3, body='{"Records": []}', receive_count=2)
    original.message_attributes = {
        f"custom{i}": {"DataType": "String", "StringValue": str(i), "StringListValues": []} for i in range(6)
    }
    out = dead_letter_message(
        original, DeadLetter("InvalidMessage", "x" * 5000), source_queue_url="https://q/files", fifo=False
    )
    assert out.body == '{"Records": []}'
    assert len(out.attributes) == 10, "SQS allows 10 attributes: ours first, then the original's"
    assert out.attributes["filefleet.error_class"]["StringValue"] == "InvalidMessage"
    assert len(out.attributes["filefleet.reason"]["StringValue"]) == 1024
    assert out.attributes["filefleet.source_message_id"]["StringValue"] == "id-3"
    assert out.attributes["filefleet.receive_count"] == {"DataType": "Number", "StringValue": "2"}
    assert out.attributes["custom0"] == {"DataType": "String", "StringValue": "0"}
    assert out.group_id is None and out.deduplication_id is None


def test_a_dead_letter_to_a_fifo_queue_keeps_its_group_and_deduplicates_on_the_source_id() -> None:
    original = message(4)
    original.attributes["MessageGroupId"] = "tenant-9"
    out = dead_letter_message(original, DeadLetter("E", "r"), source_queue_url="https://q/f.fifo", fifo=True)
    assert (out.group_id, out.deduplication_id) == ("tenant-9", "id-4")


def test_send_batches_hold_at_most_10_entries_and_256_kib() -> None:
    small = [OutgoingMessage(body="x") for _ in range(23)]
    assert [len(chunk) for _, chunk in _size_bounded_chunks(small)] == [10, 10, 3]
    big = [OutgoingMessage(body="x" * 100_000) for _ in range(5)]
    chunks = list(_size_bounded_chunks(big))
    assert [len(chunk) for _, chunk in chunks] == [2, 2, 1]
    assert [offset for offset, _ in chunks] == [0, 2, 4]
    huge = [OutgoingMessage(body="x" * 300_000)]
    assert [len(chunk) for _, chunk in _size_bounded_chunks(huge)] == [1], (
        "an oversize entry still goes alone"
    )


@pytest.mark.parametrize(
    ("mean_seconds", "allowance"),
    [
        (None, 0),  # nothing observed yet: no prefetch
        (60.0, 5),  # the guide's 1 minute per file: 2 x 150 s / 60 s
        (400.0, 0),  # slower than half a visibility timeout: never hold a waiting message
        (0.05, 10),  # fast files: a full batch, no more
    ],
)
def test_prefetch_holds_only_what_can_start_within_half_a_visibility_timeout(
    mean_seconds: float | None, allowance: int
) -> None:
    policy = PrefetchPolicy(concurrency=2, visibility_timeout=300)
    if mean_seconds is not None:
        policy.observe(mean_seconds)
    assert policy.allowance() == allowance
    assert policy.capacity() == 2 + allowance


def test_prefetch_follows_a_moving_average() -> None:
    policy = PrefetchPolicy(concurrency=4, visibility_timeout=100)
    policy.observe(1000.0)
    assert policy.allowance() == 0
    for _ in range(40):
        policy.observe(1.0)
    assert policy.allowance() == 10
