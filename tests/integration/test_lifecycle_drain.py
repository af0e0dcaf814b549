"""A real Worker on moto's SQS, drained by the lifecycle package on notices from the IMDSv2 stub.

Each test: WORKER_CONCURRENCY=2 and eight messages. Two quick files come first, because the worker prefetches
nothing until it has timed one; then it holds the other six, two running (slow) and four waiting. The IMDS
stub announces a source at that moment; the worker must drain inside DRAIN_SECONDS with the monitor's cause,
finish what runs, release what has not started (visible again at once: VISIBILITY_TIMEOUT is 60 s) and lose
nothing. The Auto
Scaling client is a real boto3 client under Stubber (moto does not implement the hook calls): parameters are
validated against the real API model and pinned with ``expected_params``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.stub import Stubber

from app.config import LifecycleSettings
from app.lifecycle.facade import Lifecycle
from app.lifecycle.imds import ImdsClient
from app.worker import RunResult, Worker
from tests.integration.conftest import Queues
from tests.support.bodies import s3_body
from tests.support.imds_stub import ImdsStub, imds_stub
from tests.support.workers import RecordingHandler, build_worker

pytestmark = pytest.mark.integration

GROUP = "filefleet-workers"
HOOK = "filefleet-drain"
INSTANCE = "i-0123456789abcdef0"
DRAIN_SECONDS = 10
MESSAGES = 8
WARMUP = 2  # quick files, so that the worker learns a duration and prefetches the rest
HOOK_PARAMS = {"LifecycleHookName": HOOK, "AutoScalingGroupName": GROUP, "InstanceId": INSTANCE}


@dataclass
class SlowFiles:
    """A handler behaviour: each file takes ``seconds``, or (``seconds=None``) until ``release`` is set."""

    seconds: float | None = 2.0
    warmup: int = WARMUP
    release: threading.Event = field(default_factory=threading.Event)
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: Any, attempt: int) -> None:
        with self.lock:
            self.started.append(event.key)
            quick = len(self.started) <= self.warmup
        if quick:
            time.sleep(0.2)
        elif self.seconds is None:
            assert self.release.wait(timeout=20), "the test never released the files"
        else:
            time.sleep(self.seconds)
        with self.lock:
            self.finished.append(event.key)

    def wait_busy(self, worker: Worker, timeout: float = 10.0) -> None:
        """Until both file threads run a slow file and the worker holds every other message, unstarted."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                running = len(self.started) - len(self.finished)
            if running == 2 and worker.stats.get("messages.received") == MESSAGES:
                return
            assert time.monotonic() < deadline, "the worker never got busy"
            time.sleep(0.02)

    def when_busy(self, worker: Worker, announce: Callable[[], None]) -> None:
        self.wait_busy(worker)
        announce()


class Calls:
    """Every Auto Scaling call the client starts, recorded before Stubber can refuse it."""

    def __init__(self, client: Any) -> None:
        self._lock = threading.Lock()
        self._names: list[str] = []
        client.meta.events.register("provide-client-params.auto-scaling.*", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        with self._lock:
            self._names.append(model.name)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._names)

    def wait_for(self, name: str, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.names().count(name) < count:
            assert time.monotonic() < deadline, f"{count} x {name} not seen; calls: {self.names()}"
            time.sleep(0.02)


def _send(sqs: Any, url: str) -> list[str]:
    keys = [f"incoming/{i}.jpg" for i in range(MESSAGES)]
    entries = [{"Id": str(i), "MessageBody": s3_body(key)} for i, key in enumerate(keys)]
    assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")
    return keys


def _visible_keys(sqs: Any, url: str) -> list[str]:
    keys: list[str] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=60
    ).get("Messages", []):
        keys += [_key(m["Body"]) for m in batch]
    return keys


def _key(body: str) -> str:
    return unquote_plus(json.loads(body)["Records"][0]["s3"]["object"]["key"])


def _worker(queues: Queues, files: SlowFiles) -> Worker:
    worker, _ = build_worker(
        queues.url,
        queues.dlq_url,
        RecordingHandler(files),
        WORKER_CONCURRENCY="2",
        DRAIN_SECONDS=str(DRAIN_SECONDS),
        VISIBILITY_TIMEOUT="60",
    )
    return worker


def _start(
    worker: Worker, stub: ImdsStub, client: Any = None, *, heartbeat: float | None = None, **env: str
) -> Lifecycle:
    lifecycle = Lifecycle.start(
        LifecycleSettings.from_env({"IMDS_POLL_SECONDS": "1", **env}),
        boto3.session.Session(region_name="us-east-1"),
        worker.drain_signal,
        stats=worker.stats,
        worker_idle=worker.idle_seconds,
        imds=ImdsClient(stub.url),
        autoscaling_client=client,
        heartbeat_interval=heartbeat,
    )
    assert lifecycle is not None
    return lifecycle


def _run(worker: Worker, trigger: Callable[[], None]) -> tuple[RunResult, float]:
    """Run the worker; ``trigger`` runs on another thread. Returns the result and seconds since triggered."""
    triggered: list[float] = []

    def fire() -> None:
        trigger()
        triggered.append(time.monotonic())

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    result = worker.run()
    thread.join(timeout=20)
    assert triggered, "the trigger did not finish"
    return result, time.monotonic() - triggered[0]


def _assert_drained_without_loss(
    sqs: Any, queues: Queues, keys: list[str], files: SlowFiles, result: RunResult, elapsed: float
) -> None:
    assert result.abandoned == 0 and result.exit_code == 0
    assert elapsed < DRAIN_SECONDS, f"drained in {elapsed:.1f} s"
    assert sorted(files.started) == sorted(files.finished), "every file that started, finished"
    assert result.stats["messages.ack"] == len(files.finished)
    released = MESSAGES - len(files.finished)
    assert released == MESSAGES - WARMUP - 2, "the messages held but not started"
    assert result.stats["messages.release"] == released
    # Released with visibility 0 under a 60 s timeout: they are receivable right now, and nothing is lost.
    assert sorted(_visible_keys(sqs, queues.url)) == sorted(set(keys) - set(files.finished))
    assert queues.depth(sqs, queues.dlq_url) == (0, 0)


def _autoscaling() -> tuple[Any, Stubber, Calls]:
    client = boto3.client("autoscaling", region_name="us-east-1")
    return client, Stubber(client), Calls(client)


def _expect_describe(stubber: Stubber, heartbeat_timeout: int = 300) -> None:
    stubber.add_response(
        "describe_lifecycle_hooks",
        {
            "LifecycleHooks": [
                {
                    "LifecycleHookName": HOOK,
                    "AutoScalingGroupName": GROUP,
                    "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                    "HeartbeatTimeout": heartbeat_timeout,
                    "DefaultResult": "CONTINUE",
                }
            ]
        },
        {"AutoScalingGroupName": GROUP, "LifecycleHookNames": [HOOK]},
    )


def _expect_complete(stubber: Stubber) -> None:
    stubber.add_response(
        "complete_lifecycle_action", {}, {**HOOK_PARAMS, "LifecycleActionResult": "CONTINUE"}
    )


def test_spot_notice_drains_and_completes_the_hook(sqs: Any, queues: Queues) -> None:
    keys = _send(sqs, queues.url)
    files = SlowFiles(seconds=2.0)
    worker = _worker(queues, files)
    client, stubber, calls = _autoscaling()
    _expect_describe(stubber)
    _expect_complete(stubber)
    with imds_stub() as stub, stubber:
        lifecycle = _start(worker, stub, client, AUTOSCALING_GROUP_NAME=GROUP, LIFECYCLE_HOOK_NAME=HOOK)
        try:
            result, elapsed = _run(worker, lambda: files.when_busy(worker, stub.announce_spot))
            assert lifecycle.after_drain(result.cause) is True
        finally:
            lifecycle.stop()
        stubber.assert_no_pending_responses()

    assert result.cause == "spot:terminate"
    assert result.stats["drains.spot"] == 1
    _assert_drained_without_loss(sqs, queues, keys, files, result, elapsed)
    assert calls.names() == ["DescribeLifecycleHooks", "CompleteLifecycleAction"], (
        "no heartbeat: not Terminated"
    )


def test_rebalance_drains_with_on_rebalance_drain(sqs: Any, queues: Queues) -> None:
    keys = _send(sqs, queues.url)
    files = SlowFiles(seconds=2.0)
    worker = _worker(queues, files)
    with imds_stub() as stub:
        lifecycle = _start(worker, stub, ON_REBALANCE="drain")
        try:
            result, elapsed = _run(worker, lambda: files.when_busy(worker, stub.announce_rebalance))
            assert lifecycle.after_drain(result.cause) is False, "no hook configured"
        finally:
            lifecycle.stop()

    assert result.cause == "rebalance"
    _assert_drained_without_loss(sqs, queues, keys, files, result, elapsed)


def test_ignored_rebalance_is_counted_and_the_worker_carries_on(sqs: Any, queues: Queues) -> None:
    keys = _send(sqs, queues.url)
    files = SlowFiles(seconds=0.1)
    worker = _worker(queues, files)
    with imds_stub() as stub:
        stub.announce_rebalance()
        lifecycle = _start(worker, stub, ON_REBALANCE="ignore")
        try:
            result = worker.run(until_idle=2.5)
        finally:
            lifecycle.stop()

    assert result.cause == "idle"
    assert sorted(files.finished) == sorted(keys)
    assert result.stats["lifecycle.rebalance_ignored"] == 1, "once per recommendation, not per poll"
    assert queues.depth(sqs) == (0, 0)


def test_terminated_state_drains_heartbeats_and_completes_the_hook_once(sqs: Any, queues: Queues) -> None:
    keys = _send(sqs, queues.url)
    files = SlowFiles(seconds=None)  # the files run until the test has seen two heartbeats
    worker = _worker(queues, files)
    client, stubber, calls = _autoscaling()
    _expect_describe(stubber, heartbeat_timeout=30)
    for _ in range(2):
        stubber.add_response("record_lifecycle_action_heartbeat", {}, HOOK_PARAMS)
    _expect_complete(stubber)

    def scale_in() -> None:
        files.wait_busy(worker)
        stub.set_target_state("Terminated")
        # The drain lasts longer than the heartbeat interval: one heartbeat at once, one 3 s later.
        calls.wait_for("RecordLifecycleActionHeartbeat", 2)
        files.release.set()

    with imds_stub() as stub, stubber:
        lifecycle = _start(
            worker, stub, client, AUTOSCALING_GROUP_NAME=GROUP, LIFECYCLE_HOOK_NAME=HOOK, heartbeat=3.0
        )
        try:
            result, elapsed = _run(worker, scale_in)
            assert lifecycle.after_drain(result.cause) is True
        finally:
            lifecycle.stop()
        stubber.assert_no_pending_responses()

    assert result.cause == "lifecycle:terminated"
    assert worker.stats.get("lifecycle.heartbeats") == 2
    assert worker.stats.get("lifecycle.hook_completed") == 1, "after_drain runs after the result's snapshot"
    _assert_drained_without_loss(sqs, queues, keys, files, result, elapsed)
    assert calls.names() == [
        "DescribeLifecycleHooks",
        "RecordLifecycleActionHeartbeat",
        "RecordLifecycleActionHeartbeat",
        "CompleteLifecycleAction",
    ]


def test_sigterm_drain_followed_by_terminated_state_completes_the_hook(sqs: Any, queues: Queues) -> None:
    keys = _send(sqs, queues.url)
    files = SlowFiles(seconds=None)
    worker = _worker(queues, files)
    client, stubber, calls = _autoscaling()
    _expect_describe(stubber, heartbeat_timeout=300)
    stubber.add_response("record_lifecycle_action_heartbeat", {}, HOOK_PARAMS)
    _expect_complete(stubber)

    def sigterm_then_scale_in() -> None:
        files.wait_busy(worker)
        worker.drain_signal.request("signal:SIGTERM")  # what the CLI's signal handler does
        stub.set_target_state("Terminated")
        calls.wait_for("RecordLifecycleActionHeartbeat", 1)
        files.release.set()

    with imds_stub() as stub, stubber:
        lifecycle = _start(worker, stub, client, AUTOSCALING_GROUP_NAME=GROUP, LIFECYCLE_HOOK_NAME=HOOK)
        try:
            result, elapsed = _run(worker, sigterm_then_scale_in)
            assert lifecycle.after_drain(result.cause) is True
        finally:
            lifecycle.stop()
        stubber.assert_no_pending_responses()

    assert result.cause == "signal:SIGTERM"
    _assert_drained_without_loss(sqs, queues, keys, files, result, elapsed)
    assert calls.names() == [
        "DescribeLifecycleHooks",
        "RecordLifecycleActionHeartbeat",
        "CompleteLifecycleAction",
    ]
