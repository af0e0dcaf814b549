"""Heartbeat and settler against a fake of our own SqsQueue seam, with a controlled clock."""

from __future__ import annotations

from typing import Any

from app.consumer.backoff import ExponentialBackoff
from app.consumer.heartbeat import VisibilityHeartbeat
from app.consumer.outcome import Ack, DeadLetter, Release, Retry
from app.consumer.settler import Settler
from app.stats import RunStats
from tests.support.fakes import FakeClock, FakeQueue, message


def _heartbeat(
    queue: FakeQueue, clock: FakeClock, timeout: int = 300
) -> tuple[VisibilityHeartbeat, RunStats]:
    stats = RunStats()
    return VisibilityHeartbeat(queue, visibility_timeout=timeout, stats=stats, clock=clock), stats  # type: ignore[arg-type]


def test_heartbeat_extends_only_messages_past_half_their_timeout() -> None:
    queue, clock = FakeQueue(), FakeClock()
    heartbeat, stats = _heartbeat(queue, clock)
    old, fresh = message(1, received_at=clock.now - 160), message(2, received_at=clock.now - 10)
    heartbeat.track([old, fresh])
    assert heartbeat.extend_due() == 1
    assert queue.calls == [("change_visibility", [("id-1", 300)])]
    assert heartbeat.extend_due() == 0, "the extended message is not due again until half of 300 s passes"
    clock.now += 151
    assert heartbeat.extend_due() == 2
    assert stats.get("visibility.extended") == 3


def test_heartbeat_stops_at_the_sqs_12_hour_limit() -> None:
    queue, clock = FakeQueue(), FakeClock()
    heartbeat, _ = _heartbeat(queue, clock)
    almost = message(1, received_at=clock.now - 43_200 + 100)
    heartbeat.track([almost])
    heartbeat.extend_due()
    assert queue.calls == [("change_visibility", [("id-1", 100)])], "never ask SQS for more than 12 h in all"
    clock.now += 100
    assert heartbeat.extend_due() == 0


def test_heartbeat_drops_a_message_whose_receipt_handle_is_gone() -> None:
    queue, clock = FakeQueue(), FakeClock()
    queue.fail_codes["rh-1"] = ["ReceiptHandleIsInvalid"]
    heartbeat, stats = _heartbeat(queue, clock)
    heartbeat.track([message(1, received_at=clock.now - 200)])
    heartbeat.extend_due()
    assert heartbeat.tracked() == 0 and stats.get("visibility.lost") == 1


def test_heartbeat_keeps_trying_after_a_passing_failure() -> None:
    queue, clock = FakeQueue(), FakeClock()
    queue.fail_codes["rh-1"] = ["InternalError"]
    heartbeat, _ = _heartbeat(queue, clock)
    heartbeat.track([message(1, received_at=clock.now - 200)])
    assert heartbeat.extend_due() == 0
    assert heartbeat.extend_due() == 1


def _settler(source: FakeQueue, dlq: FakeQueue) -> tuple[Settler, VisibilityHeartbeat, RunStats]:
    stats = RunStats()
    heartbeat = VisibilityHeartbeat(source, visibility_timeout=300, stats=stats)  # type: ignore[arg-type]
    settler = Settler(
        source,  # type: ignore[arg-type]
        dlq,  # type: ignore[arg-type]
        heartbeat,
        stats,
        backoff=ExponentialBackoff(10, 900),
        linger_seconds=0.05,
    )
    settler.start()
    return settler, heartbeat, stats


def test_acks_are_deleted_in_batches_of_ten() -> None:
    source, dlq = FakeQueue(), FakeQueue()
    settler, _, stats = _settler(source, dlq)
    for n in range(25):
        settler.settle(message(n), Ack("processed"))
    settler.close()
    deletes = [payload for action, payload in source.calls if action == "delete"]
    assert sorted(len(batch) for batch in deletes) == [5, 10, 10]
    assert stats.get("sqs.delete") == 25


def test_each_message_is_settled_exactly_once() -> None:
    source, dlq = FakeQueue(), FakeQueue()
    settler, _, _ = _settler(source, dlq)
    m = message(1)
    assert settler.settle(m, Release()) is True
    assert settler.settle(m, Ack("processed")) is False
    settler.close()
    assert source.calls == [("change_visibility", [("id-1", 0)])]


def test_retries_and_releases_share_one_visibility_batch() -> None:
    source, dlq = FakeQueue(), FakeQueue()
    settler, _, _ = _settler(source, dlq)
    settler.settle(message(1), Retry(30, "E", "r"))
    settler.settle(message(2), Release())
    settler.flush()
    assert source.calls == [("change_visibility", [("id-1", 30), ("id-2", 0)])]
    settler.close()


def test_a_dead_letter_is_sent_then_deleted_and_untracked_first() -> None:
    source, dlq = FakeQueue(), FakeQueue()
    settler, heartbeat, stats = _settler(source, dlq)
    m = message(1, body="garbage")
    heartbeat.track([m])
    settler.settle(m, DeadLetter("InvalidMessage", "body is not JSON"))
    settler.close()
    assert dlq.actions() == ["send"] and source.actions() == ["delete"]
    (sent,) = dlq.calls[0][1]
    assert sent.body == "garbage"  # type: ignore[attr-defined]
    assert heartbeat.tracked() == 0 and stats.get("dead_letter.sent") == 1


def test_what_the_dlq_refuses_is_retried_never_deleted() -> None:
    source, dlq = FakeQueue(), FakeQueue()
    dlq.fail_codes["garbage"] = ["KMS.DisabledException"]
    settler, _, stats = _settler(source, dlq)
    settler.settle(
        message(1, body="garbage", receive_count=1), DeadLetter("InvalidMessage", "body is not JSON")
    )
    settler.close()
    assert source.actions() == ["change_visibility"]
    ((message_id, delay),) = source.calls[0][1]  # type: ignore[misc]
    assert message_id == "id-1" and 5 <= delay <= 10
    assert stats.get("dead_letter.refused") == 1


def test_a_failed_delete_is_tried_again_and_a_lost_lease_is_not() -> None:
    source, dlq = FakeQueue(), FakeQueue()
    source.fail_codes["rh-1"] = ["InternalError"]
    source.fail_codes["rh-2"] = ["ReceiptHandleIsInvalid"]
    settler, _, stats = _settler(source, dlq)
    settler.settle(message(1), Ack("processed"))
    settler.settle(message(2), Ack("processed"))
    settler.close()
    deleted: list[Any] = [payload for action, payload in source.calls if action == "delete"]
    assert deleted == [["id-1", "id-2"], ["id-1"]]
    assert stats.get("sqs.delete") == 1 and stats.get("settle.lost_lease") == 1


def test_a_delete_that_keeps_failing_is_given_up_after_three_attempts() -> None:
    source, dlq = FakeQueue(), FakeQueue()
    source.fail_codes["rh-1"] = ["InternalError"] * 10
    settler, _, stats = _settler(source, dlq)
    settler.settle(message(1), Ack("processed"))
    settler.close()
    assert source.actions() == ["delete"] * 3
    assert stats.get("settle.failed") == 1
