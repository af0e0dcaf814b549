"""The worker against moto server over real HTTP: batching, heartbeat, retry, dead-letter, S3 events."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from app.errors import PermanentError, TransientError
from app.handler import FileResult
from tests.integration.conftest import Queues, make_queues, notifying_bucket
from tests.support.bodies import S3_TEST_EVENT, s3_body
from tests.support.workers import CallCounter, RecordingHandler, build_worker


def _send(sqs: Any, queue_url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        assert not sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")


def _receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
    ).get("Messages", []):
        messages += batch
    return messages


def test_batches_receive_and_delete_and_handles_every_message_once(sqs: Any, queues: Queues) -> None:
    keys = [f"photos/{i}.jpg" for i in range(25)]
    _send(sqs, queues.url, [s3_body(key) for key in keys])
    handler = RecordingHandler()
    worker, client = build_worker(queues.url, queues.dlq_url, handler, WORKER_CONCURRENCY="16")
    calls = CallCounter(client)

    result = worker.run(until_idle=1)

    assert sorted(handler.keys()) == sorted(keys)
    assert result.exit_code == 0
    assert result.stats["messages.ack"] == 25
    assert queues.depth(sqs) == (0, 0)
    assert "DeleteMessage" not in calls.counts, "one delete per message is the guide's defect"
    assert calls.counts["DeleteMessageBatch"] <= 5  # 25 messages: 3 full batches, a little slack
    assert calls.counts["ReceiveMessage"] <= 8


def test_long_job_is_never_redelivered_while_the_heartbeat_extends_it(sqs: Any, queues: Queues) -> None:
    _send(sqs, queues.url, [s3_body("big/video.mov")])
    handler = RecordingHandler(lambda event, attempt: time.sleep(5) or None)
    worker, _ = build_worker(queues.url, queues.dlq_url, handler, VISIBILITY_TIMEOUT="2")
    stolen: list[str] = []
    stop_spy = threading.Event()

    def spy() -> None:  # another consumer: once the job runs, it must never see the message
        while not handler.calls and not stop_spy.is_set():
            time.sleep(0.05)
        while not stop_spy.is_set():
            response = sqs.receive_message(QueueUrl=queues.url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            stolen.extend(m["MessageId"] for m in response.get("Messages", []))
            stop_spy.wait(0.3)

    spy_thread = threading.Thread(target=spy)
    spy_thread.start()
    try:
        result = worker.run(until_idle=1)
    finally:
        stop_spy.set()
        spy_thread.join()

    assert stolen == []
    assert handler.keys() == ["big/video.mov"]
    assert result.stats["visibility.extended"] >= 2
    assert result.stats["messages.ack"] == 1
    assert queues.depth(sqs) == (0, 0)


def test_transient_failure_is_hidden_for_its_backoff_then_retried(sqs: Any, queues: Queues) -> None:
    _send(sqs, queues.url, [s3_body("flaky.jpg")])

    def fail_first(event: Any, attempt: int) -> str | None:
        if attempt == 1:
            raise TransientError("OpenSearch answered 503", error_class="SinkUnavailable")
        return None

    handler = RecordingHandler(fail_first)
    worker, _ = build_worker(
        queues.url,
        queues.dlq_url,
        handler,
        RETRY_BASE_SECONDS="4",
        RETRY_MAX_SECONDS="4",
        WORKER_CONCURRENCY="1",
    )
    seen_during_backoff: list[str] = []

    def spy_after_first_failure() -> None:
        deadline = time.monotonic() + 10
        while not handler.calls and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the retry's visibility change is sent within the settler's linger
        response = sqs.receive_message(QueueUrl=queues.url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        seen_during_backoff.extend(m["MessageId"] for m in response.get("Messages", []))

    spy = threading.Thread(target=spy_after_first_failure)
    spy.start()
    result = worker.run(until_idle=6)
    spy.join()

    assert handler.keys() == ["flaky.jpg", "flaky.jpg"]
    assert seen_during_backoff == [], "the message came back before its backoff"
    first, second = handler.calls[0][0], handler.calls[1][0]
    assert second - first >= 2  # equal jitter keeps at least half of the 4 s backoff
    assert result.stats["messages.retry"] == 1
    assert result.stats["messages.ack"] == 1
    assert queues.depth(sqs) == (0, 0)
    assert queues.depth(sqs, queues.dlq_url) == (0, 0)


def test_permanent_failure_goes_to_the_dlq_with_its_reason_and_leaves_the_queue(
    sqs: Any, queues: Queues
) -> None:
    body = s3_body("corrupt.jpg")
    _send(sqs, queues.url, [body])

    def corrupt(event: Any, attempt: int) -> str:
        raise PermanentError(
            "image file is truncated (JPEG ends before its EOI marker)", error_class="CorruptImage"
        )

    worker, _ = build_worker(queues.url, queues.dlq_url, RecordingHandler(corrupt))
    result = worker.run(until_idle=1)

    assert result.stats["messages.dead_letter"] == 1
    assert queues.depth(sqs) == (0, 0)
    (dead,) = _receive_all(sqs, queues.dlq_url)
    assert dead["Body"] == body, "the original body is kept untouched for a redrive"
    attributes = {name: value["StringValue"] for name, value in dead["MessageAttributes"].items()}
    assert attributes["filefleet.error_class"] == "CorruptImage"
    assert "truncated" in attributes["filefleet.reason"]
    assert attributes["filefleet.receive_count"] == "1"
    assert attributes["filefleet.source_message_id"]


def test_transient_failure_on_the_last_delivery_is_dead_lettered_with_its_reason(sqs: Any) -> None:
    queues = make_queues(sqs, max_receive_count=2)
    _send(sqs, queues.url, [s3_body("always-throttled.jpg")])

    def throttled(event: Any, attempt: int) -> str:
        raise TransientError("Bedrock ThrottlingException", error_class="ThrottlingException")

    handler = RecordingHandler(throttled)
    worker, _ = build_worker(
        queues.url,
        queues.dlq_url,
        handler,
        max_receive_count=2,
        RETRY_BASE_SECONDS="1",
        RETRY_MAX_SECONDS="1",
    )
    result = worker.run(until_idle=3)

    assert len(handler.calls) == 2
    assert result.stats["messages.retry"] == 1
    assert result.stats["messages.dead_letter"] == 1
    (dead,) = _receive_all(sqs, queues.dlq_url)
    reason = dead["MessageAttributes"]["filefleet.reason"]["StringValue"]
    assert reason.startswith("gave up after 2 attempts: Bedrock ThrottlingException")


def test_a_poison_body_never_blocks_the_messages_around_it(sqs: Any, queues: Queues) -> None:
    good = [f"ok/{i}.png" for i in range(6)]
    bodies = (
        [s3_body(key) for key in good[:3]]
        + ["{not json", '{"Records": "nope"}']
        + [s3_body(k) for k in good[3:]]
    )
    _send(sqs, queues.url, bodies)
    handler = RecordingHandler()
    worker, _ = build_worker(queues.url, queues.dlq_url, handler, WORKER_CONCURRENCY="4")

    result = worker.run(until_idle=1)

    assert sorted(handler.keys()) == sorted(good)
    assert result.stats["messages.dead_letter"] == 2
    assert queues.depth(sqs) == (0, 0)
    reasons = sorted(
        m["MessageAttributes"]["filefleet.reason"]["StringValue"] for m in _receive_all(sqs, queues.dlq_url)
    )
    assert reasons[0].startswith("Records must be a non-empty list")
    assert reasons[1].startswith("body is not JSON")


def test_an_s3_upload_reaches_the_handler_with_its_decoded_key(sqs: Any, s3: Any, queues: Queues) -> None:
    bucket = notifying_bucket(s3, queues, prefix="landing", removals=True)
    s3.put_object(Bucket=bucket, Key="a b+c/ü.jpg", Body=b"\xff\xd8\xff")
    s3.delete_object(Bucket=bucket, Key="a b+c/ü.jpg")
    handler = RecordingHandler()
    worker, _ = build_worker(queues.url, queues.dlq_url, handler)

    result = worker.run(until_idle=1)

    events = [event for _, event in handler.calls]
    assert [(e.bucket, e.key, e.action.value) for e in events] == [
        (bucket, "a b+c/ü.jpg", "created"),
        (bucket, "a b+c/ü.jpg", "removed"),
    ]
    assert result.stats["ignored.s3:TestEvent"] == 1  # S3 sends one when the notification is configured
    assert queues.depth(sqs) == (0, 0)


def test_test_notifications_are_acknowledged_not_retried(sqs: Any, queues: Queues) -> None:
    _send(sqs, queues.url, [S3_TEST_EVENT])
    worker, _ = build_worker(queues.url, queues.dlq_url, RecordingHandler())
    result = worker.run(until_idle=1)
    assert result.stats["messages.ack"] == 1
    assert queues.depth(sqs) == (0, 0)
    assert queues.depth(sqs, queues.dlq_url) == (0, 0)


def test_the_guide_format_uses_the_configured_bucket(sqs: Any, queues: Queues) -> None:
    _send(sqs, queues.url, [json.dumps({"s3Key": "uploads/report.pdf", "fileSize": 2048})])
    handler = RecordingHandler(lambda event, attempt: FileResult.PROCESSED)
    worker, _ = build_worker(queues.url, queues.dlq_url, handler, S3_BUCKET="guide-bucket")
    worker.run(until_idle=1)
    ((_, event),) = handler.calls
    assert (event.bucket, event.key, event.size) == ("guide-bucket", "uploads/report.pdf", 2048)
