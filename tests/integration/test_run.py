"""`filefleet run`, the container's command, as a subprocess: real HTTP to its endpoints, real signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Queues, notifying_bucket
from tests.support.components import component_missing, free_port
from tests.support.http import get, wait_until
from tests.support.slow_proxy import slow_proxy


@contextmanager
def _run(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "run"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


@pytest.fixture
def landing(s3: Any, queues: Queues) -> str:
    bucket = notifying_bucket(s3, queues, prefix="run")
    return bucket


def _env(queues: Queues, tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SQS_QUEUE_URL": queues.url,
        "INDEX_SINK": "local",
        "LOCAL_INDEX_PATH": str(tmp_path / "index.sqlite3"),
        "EMBEDDER": "local",
        "HEALTH_BIND": "127.0.0.1",
        "HEALTH_PORT": str(port),
        "WAIT_TIME_SECONDS": "1",
        "WORKER_CONCURRENCY": "2",
        "FILEFLEET_STATE_DIR": str(tmp_path / "state"),
        **extra,
    }


def _events(log: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in log.read_text().splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def test_run_serves_health_ready_and_metrics_then_drains_on_sigterm_and_exits_0(
    sqs: Any, s3: Any, queues: Queues, landing: str, moto_endpoint: str, tmp_path: Path
) -> None:
    for i in range(6):
        s3.put_object(Bucket=landing, Key=f"slow/{i}.txt", Body=f"file {i}".encode())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    slow_get = lambda method, path: method == "GET" and path.startswith(f"/{landing}/")  # noqa: E731
    with (
        slow_proxy(moto_endpoint, delay_seconds=3, slow=slow_get) as slow_s3,
        _run(_env(queues, tmp_path, port, AWS_ENDPOINT_URL_S3=slow_s3), tmp_path / "run.log") as process,
    ):
        wait_until(lambda: get(f"{base}/healthz")[0] == 200, timeout=60, what="/healthz 200")
        _, body = wait_until(lambda: (r := get(f"{base}/readyz"))[0] == 200 and r, timeout=30, what="ready")
        ready = json.loads(body)
        assert ready["ready"] is True and set(ready["checks"]) == {"worker", "queue", "sink"}
        wait_until(
            lambda: b"filefleet_messages_in_flight 2.0" in get(f"{base}/metrics")[1], timeout=20, what="busy"
        )
        exposition = get(f"{base}/metrics")[1]
        assert b'filefleet_worker_state{state="running"} 1.0' in exposition

        process.send_signal(signal.SIGTERM)
        draining = wait_until(
            lambda: (h := get(f"{base}/healthz"))[0] == 200 and json.loads(h[1])["state"] == "draining" and h,
            timeout=10,
            what="/healthz 200 while draining",
        )
        assert draining
        assert get(f"{base}/readyz")[0] == 503, "a draining worker takes no new work"
        assert process.wait(timeout=60) == 0

    with pytest.raises(urllib.error.URLError):  # gunicorn stopped last, and it is gone
        urllib.request.urlopen(f"{base}/healthz", timeout=2)
    lines = _events(tmp_path / "run.log")
    (stopped,) = [line for line in lines if line["event"] == "worker.stopped"]
    assert stopped["cause"] == "signal:SIGTERM" and stopped["abandoned"] == 0
    visible, in_flight = queues.depth(sqs)
    assert in_flight == 0, "released or done: nothing left invisible"
    assert stopped["counts"].get("files.processed", 0) + visible == 6, "no file lost"
    promtool = shutil.which("promtool")
    if promtool is None:
        component_missing("promtool (Debian package prometheus) is not installed")
    check = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=30, check=False
    )
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


@pytest.mark.parametrize("victim", ["health", "worker"])
def test_if_either_process_dies_the_other_is_stopped_and_the_exit_is_not_0(
    queues: Queues, tmp_path: Path, victim: str
) -> None:
    port = free_port()
    with _run(_env(queues, tmp_path, port), tmp_path / "run.log") as process:
        wait_until(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, timeout=60, what="/healthz 200")
        (started,) = [line for line in _events(tmp_path / "run.log") if line["event"] == "run.started"]
        os.kill(started[f"{victim}_pid"], signal.SIGKILL)
        assert process.wait(timeout=60) != 0
    survivor = started["worker_pid" if victim == "health" else "health_pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(survivor, 0)
