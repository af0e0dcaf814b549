"""The image, built from the Dockerfile on the local base, on the real Docker engine.

Needs a running engine, Debian's docker client (BuildKit) and the base image `make base-image` makes. In CI
(CI=true) a missing piece fails the run; elsewhere the tests skip, saying which piece is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.components import component_missing

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("BASE_IMAGE", "filefleet-base:bookworm")
# A TLS-intercepting proxy's CA (this machine has one): lent to the build as a secret, never in a layer.
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def docker_command() -> str:
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).exists():
            return candidate
    component_missing("no docker client (apt-get install docker.io)")
    raise AssertionError  # unreachable: component_missing fails or skips


@pytest.fixture(scope="session")
def docker() -> str:
    command = docker_command()
    if subprocess.run([command, "info"], capture_output=True, timeout=30, check=False).returncode != 0:
        component_missing("no Docker engine answers (start dockerd)")
    if subprocess.run([command, "image", "inspect", BASE_IMAGE], capture_output=True, check=False).returncode:
        component_missing(f"no base image {BASE_IMAGE} (run `make base-image`)")
    return command


@pytest.fixture(scope="session")
def image(docker: str) -> Iterator[str]:
    tag = f"filefleet:test-{uuid.uuid4().hex[:8]}"
    command = [docker, "build", "--network", "host", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    command += ["--build-arg", "REVISION=test", "-t", tag, str(ROOT)]
    if HOST_CA.exists():
        command[2:2] = ["--secret", f"id=pip-ca,src={HOST_CA}"]
    result = subprocess.run(
        command,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    yield tag
    subprocess.run([docker, "rmi", "-f", tag], capture_output=True, check=False)
