"""The AMI's unit, run for real: packer/files/filefleet.service's own commands on the local Docker engine.

The commands are taken from the unit file and run as systemd would run them, changing only what cannot be
the same on a laptop: the container's name (%N, so nothing of a developer's is removed), the environment
file's path, the image tag (the image built from the Dockerfile) and the docker client's path. The
environment file is the one the launch template's user data writes (packer/files/user-data.yaml), filled
in with this test's values, plus what only a laptop needs (endpoints, fake credentials, no IMDS).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.integration.conftest import Queues, make_queues, notifying_bucket
from tests.packer.conftest import FILES
from tests.packer.systemd_unit import Unit
from tests.support.components import free_port
from tests.support.http import status, wait_until

UNIT_ENV_FILE = "/etc/filefleet/worker.env"
UNIT_IMAGE = "filefleet:current"
UNIT_DOCKER = "/usr/bin/docker"


def rendered_user_data_env(values: dict[str, str]) -> str:
    """The worker.env the user data writes, its CloudFormation ${...} references filled from `values`."""
    (env_file,) = yaml.safe_load((FILES / "user-data.yaml").read_text())["write_files"]
    content: str = env_file["content"]
    references = set(re.findall(r"\$\{([^}]+)\}", content))
    assert references <= set(values), f"give the test a value for {references - set(values)}"
    for name in references:
        content = content.replace("${" + name + "}", values[name])
    return content


@pytest.fixture
def landing(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A bucket whose new objects notify a queue with a DLQ, on moto."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    sqs, s3 = boto3.client("sqs", region_name="us-east-1"), boto3.client("s3", region_name="us-east-1")
    queues = make_queues(sqs)
    bucket = notifying_bucket(s3, queues, prefix="ami")
    return {"sqs": sqs, "s3": s3, "queues": queues, "bucket": bucket}


@pytest.fixture
def env_file(tmp_path: Path, landing: dict[str, Any], moto_endpoint: str) -> tuple[Path, int]:
    queues: Queues = landing["queues"]
    port = free_port()
    from_user_data = rendered_user_data_env(
        {
            "AWS::Region": "us-east-1",
            "FilesQueue": queues.url,
            "FilesDeadLetterQueue": queues.dlq_url,
            "BucketName": landing["bucket"],
            "OpenSearchUrl": "",  # optional settings arrive empty from the stack; empty means unset
            "OpenSearchIndex": "files",
            "Embedder": "local",
            "EmbeddingDimension": "256",
            "BedrockModelId": "amazon.titan-embed-image-v1",
            "WorkerConcurrency": "2",
            "VisibilityTimeout": "60",
            "DrainSeconds": "90",
            "AutoScalingGroupName": "",
            "LifecycleHookName": "",
            "ScaleInProtection": "false",
            "LogLevel": "INFO",
        }
    )
    laptop_only = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata here, and no probe leaving the host
        "INDEX_SINK": "local",  # no OpenSearch either: the image's one-file index in its /tmp
        "HEALTH_PORT": str(port),  # 8080 may be taken on a laptop
        "WAIT_TIME_SECONDS": "1",
    }
    path = tmp_path / "worker.env"
    path.write_text(from_user_data + "".join(f"{key}={value}\n" for key, value in laptop_only.items()))
    return path, port


@pytest.fixture
def unit_commands(docker: str, image: str, env_file: tuple[Path, int]) -> Iterator[dict[str, list[str]]]:
    name = f"filefleet-unit-{uuid.uuid4().hex[:8]}"
    unit = Unit.read()

    def for_this_machine(key: str) -> list[str]:
        argv = unit.command(key, name=name)
        replaced = {UNIT_ENV_FILE: str(env_file[0]), UNIT_IMAGE: image, UNIT_DOCKER: docker}
        script_safe = [word.replace(UNIT_DOCKER, docker) for word in argv]  # inside `sh -c '...'` too
        return [replaced.get(word, word) for word in script_safe]

    commands = {key: for_this_machine(f"Service.{key}") for key in ("ExecStartPre", "ExecStart", "ExecStop")}
    commands["name"] = [name]
    try:
        yield commands
    finally:
        subprocess.run([docker, "rm", "--force", name], capture_output=True, timeout=60, check=False)


def test_the_units_commands_run_the_worker_which_processes_a_file_and_stops_cleanly(
    docker: str,
    unit_commands: dict[str, list[str]],
    env_file: tuple[Path, int],
    landing: dict[str, Any],
    tmp_path: Path,
) -> None:
    (name,) = unit_commands["name"]
    base = f"http://127.0.0.1:{env_file[1]}"
    log = tmp_path / "worker.log"  # StandardOutput=append:/var/log/filefleet/worker.log

    # A container left behind by a crash holds the name: ExecStartPre removes it, quietly.
    subprocess.run(
        [docker, "create", "--name", name, unit_commands["ExecStart"][-1]], capture_output=True, check=True
    )
    pre = subprocess.run(
        unit_commands["ExecStartPre"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (pre.returncode, pre.stdout + pre.stderr) == (0, "")
    again = subprocess.run(
        unit_commands["ExecStartPre"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (again.returncode, again.stdout + again.stderr) == (0, ""), "and says nothing when there is none"

    with log.open("ab") as output:
        started = time.monotonic()
        main = subprocess.Popen(unit_commands["ExecStart"], stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: status(f"{base}/readyz") == 200, timeout=90, what="/readyz 200")
        ready_after = time.monotonic() - started
        print(f"container start to ready: {ready_after:.2f} s")  # the README's boot budget quotes this

        landing["s3"].put_object(
            Bucket=landing["bucket"], Key="notes/tripod.txt", Body=b"tripod and lens cap"
        )
        wait_until(
            lambda: (
                b'"key": "notes/tripod.txt"' in log.read_bytes()
                and landing["queues"].depth(landing["sqs"]) == (0, 0)
            ),
            timeout=60,
            what=f"the file settled; log: {log.read_text()[-2000:]}",
        )
        found = subprocess.run(
            [docker, "exec", name, "filefleet", "search", "tripod"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "notes/tripod.txt" in found.stdout, found.stdout + found.stderr

        stop_started = time.monotonic()
        stop = subprocess.run(
            unit_commands["ExecStop"], capture_output=True, text=True, timeout=130, check=False
        )
        assert stop.returncode == 0, stop.stderr
        assert main.wait(timeout=30) == 0, f"the worker drained and exited 0; log: {log.read_text()[-2000:]}"
        stopped_after = time.monotonic() - stop_started
    finally:
        if main.poll() is None:
            main.kill()
    print(f"started {time.monotonic() - started:.1f} s ago, stopped in {stopped_after:.2f} s")

    # The file the agent ships: the worker's JSON lines, and gunicorn's own few plain lines (its
    # start-up and shutdown), nothing else; in particular nothing from ExecStartPre.
    lines = log.read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    plain = [line for line in lines if not line.startswith("{")]
    assert all(re.match(r"\[[-0-9 :+]+\] \[\d+\] \[[A-Z]+\] ", line) for line in plain), plain
    settled = [event for event in events if event.get("event") == "message.settled" and event.get("key")]
    assert [(event["key"], event["result"]) for event in settled] == [("notes/tripod.txt", "processed")]
    assert {"worker.started", "worker.draining", "worker.stopped"} <= {event["event"] for event in events}
    gone = subprocess.run([docker, "container", "inspect", name], capture_output=True, check=False)
    assert gone.returncode != 0, "--rm: nothing left to hold the name"
