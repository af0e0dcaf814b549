"""`filefleet worker` as a real subprocess: signals, exit codes, and what it writes to stdout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.integration.conftest import Queues, notifying_bucket
from tests.support.cli import run_filefleet
from tests.support.imds_stub import imds_stub
from tests.support.slow_proxy import slow_proxy

FILES = 8


def _worker_env(queues: Queues, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQS_", "WORKER_", "DEAD_LETTER"))}
    index = Path(tempfile.mkdtemp(prefix="filefleet-test-")) / "index.sqlite3"
    env.update(
        SQS_QUEUE_URL=queues.url,
        WAIT_TIME_SECONDS="1",
        INDEX_SINK="local",
        LOCAL_INDEX_PATH=str(index),
        EMBEDDER="local",
        **extra,
    )
    return env


class _Output:
    """Collects the worker's JSON log lines as they arrive."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._lock = threading.Lock()
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._lock:
                self.raw.append(line)
                self.lines.append(json.loads(line))

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [line for line in self.lines if line["event"] == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(found := self.events(name)) < count:
            assert time.monotonic() < deadline, f"no {count} x {name} within {timeout} s: {self.raw[-5:]}"
            time.sleep(0.05)
        return found

    def join(self) -> None:
        self._thread.join(timeout=10)


@contextmanager
def _worker(env: dict[str, str], *args: str) -> Iterator[tuple[subprocess.Popen[str], _Output]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "worker", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process, _Output(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def _put_objects(s3: Any, queues: Queues) -> str:
    """FILES objects in a new bucket that notifies ``queues``; returns the bucket."""
    bucket = notifying_bucket(s3, queues, prefix="drain")
    for i in range(FILES):
        s3.put_object(Bucket=bucket, Key=f"batch/{i}.jpg", Body=b"jpeg")
    return bucket


def test_sigterm_mid_batch_finishes_running_work_releases_the_rest_and_exits_0(
    sqs: Any, s3: Any, queues: Queues, moto_endpoint: str
) -> None:
    bucket = _put_objects(s3, queues)
    slow_download = lambda method, path: method == "GET" and path.startswith(f"/{bucket}/")  # noqa: E731
    with (
        slow_proxy(moto_endpoint, delay_seconds=2, slow=slow_download) as slow_s3,
        _worker(_worker_env(queues, WORKER_CONCURRENCY="2", AWS_ENDPOINT_URL_S3=slow_s3)) as (process, out),
    ):
        # After the first files finish, the worker prefetches; stop it while two run and others wait.
        out.wait_for("message.settled", count=3)
        out.wait_for("message.settled", count=4)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        (draining,) = out.wait_for("worker.draining")
        visible_right_after_release, _ = queues.depth(sqs)
        assert process.wait(timeout=30) == 0
        out.join()

    settled = [line for line in out.events("message.settled") if line["outcome"] == "ack" and "key" in line]
    released = [line for line in out.events("message.settled") if line["outcome"] == "release"]
    assert draining["cause"] == "signal:SIGTERM"
    assert draining["running"] >= 1, "the signal should land mid-batch"
    assert len(released) == draining["released"] >= 1, "some received messages had not started"
    assert visible_right_after_release >= len(released), "released messages are visible again at once"
    processed_keys = {line["key"] for line in settled}
    assert len(processed_keys) == len(settled), "no file was processed twice"
    visible, in_flight = queues.depth(sqs)
    assert in_flight == 0, "nothing is left invisible after the worker exits"
    assert len(processed_keys) + visible == FILES, "every file is either done or back in the queue"


def test_logs_are_json_lines_and_never_contain_credentials(sqs: Any, queues: Queues) -> None:
    sqs.send_message(QueueUrl=queues.url, MessageBody="not json")
    env = _worker_env(queues, LOG_LEVEL="DEBUG")
    with _worker(env, "--until-idle", "1") as (process, out):
        assert process.wait(timeout=60) == 0
        out.join()
    text = "".join(out.raw)
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in text
    assert os.environ["AWS_SESSION_TOKEN"] not in text
    assert "Authorization" not in text and "Signature=" not in text
    for line in out.lines:
        assert {"timestamp", "level", "event"} <= line.keys()
    (dead,) = [line for line in out.events("message.settled") if line["outcome"] == "dead_letter"]
    assert dead["message_id"] and dead["duration_ms"] >= 0 and dead["error_class"] == "InvalidMessage"


def test_a_worker_without_a_dead_letter_queue_refuses_to_start(sqs: Any, queues: Queues) -> None:
    bare = sqs.create_queue(QueueName=queues.url.rsplit("/", 1)[-1] + "-bare")["QueueUrl"]
    env = _worker_env(queues)
    env["SQS_QUEUE_URL"] = bare
    result = run_filefleet("worker", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "no dead-letter queue" in result.stderr and "DEAD_LETTER_QUEUE_URL" in result.stderr


def test_a_missing_queue_is_named_on_one_line_with_status_2(queues: Queues) -> None:
    env = _worker_env(queues)
    env["SQS_QUEUE_URL"] = queues.url + "-does-not-exist"
    result = run_filefleet("worker", env=env)
    assert result.returncode == 2
    assert "does-not-exist" in result.stderr and "NonExistentQueue" in result.stderr


def test_on_ec2_a_spot_notice_drains_the_worker_process_and_it_exits_0(sqs: Any, queues: Queues) -> None:
    with imds_stub() as imds:
        env = _worker_env(
            queues,
            AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.url,
            AWS_EC2_METADATA_DISABLED="false",
            IMDS_POLL_SECONDS="1",
        )
        with _worker(env) as (process, out):
            out.wait_for("worker.started")
            imds.announce_spot("terminate", after=1)
            (draining,) = out.wait_for("worker.draining", timeout=20)
            assert process.wait(timeout=30) == 0
    assert draining["cause"] == "spot:terminate"


def test_after_a_rebalance_drain_the_worker_holds_until_the_instance_really_goes(
    sqs: Any, queues: Queues
) -> None:
    with imds_stub() as imds:
        env = _worker_env(
            queues,
            AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.url,
            AWS_EC2_METADATA_DISABLED="false",
            IMDS_POLL_SECONDS="1",
            ON_REBALANCE="drain",
        )
        with _worker(env) as (process, out):
            out.wait_for("worker.started")
            imds.announce_rebalance()
            out.wait_for("worker.holding_after_rebalance", timeout=20)
            time.sleep(2)
            assert process.poll() is None, "exiting now would mean a restart and a drain again, in a loop"
            imds.announce_spot("terminate")
            assert process.wait(timeout=30) == 0
