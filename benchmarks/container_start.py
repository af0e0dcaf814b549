"""Container start: the preloaded image, `docker run` to /readyz 200, beside the guide's boot-time install.

Claims measured (both variants on the same Docker engine, the same base image, the same moto server and the
same machine, in one run, their runs interleaved so they share whatever the noisy machine is doing):

- ``image_mib``: the size of the image ``filefleet:bench`` (``docker image inspect`` Size, base layers
  included), built from the Dockerfile exactly as tests/container builds it (BuildKit, ``--network host``,
  the host CA lent as the ``pip-ca`` build secret, ``BASE_IMAGE=filefleet-base:bookworm``). Reported, no
  target. The base image's own size is shown beside it.
- ``start_to_ready_s``: median of ``--runs`` (5) starts of the preloaded image, after one warm-up start that
  is reported apart: the time from just before ``docker run -d`` to the first 200 from /readyz, polled every
  50 ms. The container runs as the tests run it (``--network host --init --read-only --tmpfs /tmp``) against
  a moto server (queue + DLQ behind a RedrivePolicy) with INDEX_SINK=local (LOCAL_INDEX_PATH on the tmpfs)
  and EMBEDDER=local, so no OpenSearch and no Bedrock are needed; /readyz is 200 only when the worker runs
  and both the queue and the sink answer.
- ``userdata_s``: the guide's user data installs the app at every boot (``yum install python3.11
  python3.11-pip``, then ``python3.11 -m pip install -r requirements.txt``). Its dominant step, measured the
  same way from ``docker run`` to /readyz 200, median of ``--userdata-runs`` (3 by default: each run
  downloads every wheel again; pass 5 to match the preloaded side) after one warm-up run reported apart: a
  container of the same base image (``--network host --init``) that runs ``apt-get update``, ``apt-get
  install python3 python3-venv ca-certificates`` (the Dockerfile's build-stage line), copies the app's source
  (mounted read-only; the guide downloads and unpacks it), creates a venv, ``pip install --no-cache-dir -r
  requirements.txt`` from PyPI, and starts ``python -m app run`` from the source directory, as the guide's
  systemd unit starts worker.py. requirements.txt pins every distribution found in the image's venv, so both
  sides run the very same wheels (pyproject.toml's dependency list, resolved once, by the image build). The
  host CA is lent the way the Dockerfile's build lends it (mounted read-only, PIP_CERT); no pip cache, no
  pre-downloaded wheels. Left out, so the figure is a lower bound of the guide's boot: ``yum update -y``,
  the CloudWatch agent's download and install, the app's download from S3.
- ``ratio_userdata_vs_preloaded`` = ``userdata_s`` / ``start_to_ready_s``. Target >= 10.

Each start is broken down from the container's own log (``docker logs -t``): for the preloaded image, when
the supervisor had spawned its children (``run.started``), when gunicorn listened, when the worker's receive
loop started (``worker.started``), when /readyz first answered at all, and which checks a 503 named; for the
user data, the apt, venv, pip and app-start phases.

The image is reused when ``filefleet:bench`` carries the label ``org.filefleet.bench.inputs`` equal to the
SHA-256 of the build's inputs: the Dockerfile, .dockerignore, every file the build context sends
(pyproject.toml, README.md, app/ without __pycache__), the base image's ID and the build arguments.
Otherwise (or with ``--rebuild``) it is built, and BuildKit's own cache decides which layers to redo. The hash
does not see new releases on PyPI; ``--rebuild`` after ``docker builder prune`` builds from scratch. The
image is kept afterwards for the next run (``docker rmi filefleet:bench`` removes it).

Run: ``.venv/bin/python benchmarks/container_start.py [--runs N] [--userdata-runs N] [--rebuild]``. Needs a
running Docker engine (one dockerd; this script starts none), Debian's docker client at /usr/bin/docker
(BuildKit), the base image (``make base-image``), and PyPI and the Debian mirror reachable from a container
with ``--network host``. Every container is removed and the moto server stopped at the end, whatever
happens. The last line printed is ``RESULT {json}``. Exit status 1: a container never answered /readyz 200
within its bound (``--ready-timeout``, ``--userdata-timeout``), exited early, or answered 200 without every
check ok; a missed target is reported, not an error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import REPO, BenchmarkFailure, free_port, print_result, run, running_moto

MIB = 1024 * 1024
IMAGE = "filefleet:bench"
BASE_IMAGE = os.environ.get("BASE_IMAGE", "filefleet-base:bookworm")
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")  # a TLS-intercepting proxy's CA, as the tests lend it
INPUTS_LABEL = "org.filefleet.bench.inputs"
RUN_LABEL = "org.filefleet.bench.run"  # on every container this script starts: cleanup finds them all
BUILD_ARGS = {"BASE_IMAGE": BASE_IMAGE, "REVISION": "test"}  # the tests' build arguments
REGION = "us-east-1"
POLL_SECONDS = 0.05
PROBE_TIMEOUT = 2.0
DOCKER_TIMEOUT = 120.0  # one docker CLI call (run -d, rm -f, logs, inspect)
BUILD_TIMEOUT = 900.0
STATE_CHECK_AFTER = 5.0  # a start not ready by then: check every STATE_CHECK_EVERY that it still runs
STATE_CHECK_EVERY = 2.0
TARGET_RATIO = 10.0
# The user data, in the base image's /bin/sh. PHASE lines mark its steps in `docker logs -t`.
USERDATA_SCRIPT = """\
set -eu
echo "PHASE apt"
apt-get -q update
apt-get -q install -y --no-install-recommends python3 python3-venv ca-certificates
echo "PHASE venv"
cp -R /src /opt/filefleet-app
cd /opt/filefleet-app
python3 -m venv /opt/filefleet
echo "PHASE pip"
/opt/filefleet/bin/pip install --no-cache-dir --progress-bar off -r requirements.txt
echo "PHASE start"
exec /opt/filefleet/bin/python -m app run
"""
USERDATA_PHASES = ("apt", "venv", "pip", "start")
# Log lines of the preloaded image that mark its start-up, by milestone.
MILESTONES = {
    "run.started": re.compile(r'"event": "run\.started"'),
    "listening": re.compile(r"\[INFO\] Listening at: "),
    "worker.started": re.compile(r'"event": "worker\.started"'),
}
_DOCKER_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z (.*)$")


# -- docker ------------------------------------------------------------------------------------------------


def docker_command() -> str:
    """Debian's client (BuildKit), as the tests prefer it; an engine that answers; the base image."""
    command = next((c for c in ("/usr/bin/docker", shutil.which("docker")) if c and Path(c).exists()), None)
    if command is None:
        raise SystemExit("no docker client: apt-get install docker.io")
    if subprocess.run([command, "info"], capture_output=True, timeout=30, check=False).returncode:
        raise SystemExit("no Docker engine answers: start dockerd (one only)")
    if subprocess.run([command, "image", "inspect", BASE_IMAGE], capture_output=True, check=False).returncode:
        raise SystemExit(f"no base image {BASE_IMAGE}: run `make base-image`")
    return command


def docker(docker_cmd: str, *args: str, timeout: float = DOCKER_TIMEOUT) -> str:
    """A docker CLI call that must succeed; its stdout."""
    try:
        done = subprocess.run(
            [docker_cmd, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkFailure(f"`docker {' '.join(args[:3])} ...` took over {timeout:.0f} s") from None
    if done.returncode:
        raise BenchmarkFailure(f"`docker {' '.join(args[:3])} ...` failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def inspect_image(docker_cmd: str, image: str) -> dict[str, Any] | None:
    done = subprocess.run(
        [docker_cmd, "image", "inspect", image], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode:
        return None
    found: dict[str, Any] = json.loads(done.stdout)[0]
    return found


PACKAGES = ("app", "provisioning")  # what the image installs (pyproject.toml: packages.find)


def build_inputs_digest(base_id: str) -> str:
    """SHA-256 of what the build reads: Dockerfile, .dockerignore, the context's files, base ID, arguments."""
    digest = hashlib.sha256()

    def add(name: str, data: bytes) -> None:
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)

    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        add(name, (REPO / name).read_bytes())
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                add(path.relative_to(REPO).as_posix(), path.read_bytes())
    add("base-image-id", base_id.encode())
    add("build-args", json.dumps(BUILD_ARGS, sort_keys=True).encode())
    return digest.hexdigest()


@dataclass
class ImageInfo:
    size_bytes: int
    base_size_bytes: int
    inputs: str
    reused: bool
    build_seconds: float | None
    created: str
    layers: list[tuple[str, int]] = field(default_factory=list)  # (created by, bytes), newest first

    @property
    def mib(self) -> float:
        return self.size_bytes / MIB

    @property
    def base_mib(self) -> float:
        return self.base_size_bytes / MIB


def ensure_image(docker_cmd: str, *, rebuild: bool) -> ImageInfo:
    """filefleet:bench from the Dockerfile as tests/container builds it, unless the same inputs built it."""
    base = inspect_image(docker_cmd, BASE_IMAGE)
    if base is None:
        raise SystemExit(f"no base image {BASE_IMAGE}: run `make base-image`")
    inputs = build_inputs_digest(base["Id"])
    existing = inspect_image(docker_cmd, IMAGE)
    labels = ((existing or {}).get("Config") or {}).get("Labels") or {}
    build_seconds = None
    if rebuild or labels.get(INPUTS_LABEL) != inputs:
        why = "--rebuild" if rebuild else ("inputs changed" if existing else "no such image")
        command = [docker_cmd, "build", "--network", "host"]
        if HOST_CA.exists():
            command += ["--secret", f"id=pip-ca,src={HOST_CA}"]
        for name, value in BUILD_ARGS.items():
            command += ["--build-arg", f"{name}={value}"]
        command += ["--label", f"{INPUTS_LABEL}={inputs}", "-t", IMAGE, str(REPO)]
        print(f"building {IMAGE} ({why}): {' '.join(command[1:])} ...", flush=True)
        started = time.monotonic()
        try:
            done = subprocess.run(
                command,
                env={**os.environ, "DOCKER_BUILDKIT": "1"},
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SystemExit(f"docker build took over {BUILD_TIMEOUT:.0f} s") from None
        if done.returncode:
            raise SystemExit(f"docker build failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        build_seconds = time.monotonic() - started
        existing = inspect_image(docker_cmd, IMAGE)
        if existing is None:
            raise SystemExit(f"docker build succeeded but {IMAGE} is not there")
    history = docker(docker_cmd, "history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", IMAGE)
    if existing is None:  # unreachable: the labels matched, or the build made it
        raise SystemExit(f"no image {IMAGE}")
    layers = []
    for line in history.splitlines():
        size, _, created_by = line.partition("\t")
        if size and size != "0B":
            layers.append((created_by, _parse_size(size)))
    return ImageInfo(
        size_bytes=int(existing["Size"]),
        base_size_bytes=int(base["Size"]),
        inputs=inputs,
        reused=build_seconds is None,
        build_seconds=build_seconds,
        created=str(existing.get("Created", ""))[:19],
        layers=layers,
    )


def _parse_size(text: str) -> int:
    """docker history's human sizes (decimal units): 180MB, 1.2kB, 0B."""
    match = re.fullmatch(r"([\d.]+)\s*([kMGT]?B)", text.strip())
    if match is None:
        return 0
    return int(float(match.group(1)) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[match.group(2)])


def image_requirements(docker_cmd: str) -> list[str]:
    """``name==version`` of every distribution in the image's venv but filefleet itself."""
    script = (
        "import importlib.metadata as m, json; "
        "print(json.dumps(sorted({d.metadata['Name']: d.version for d in m.distributions()}.items())))"
    )
    output = docker(docker_cmd, "run", "--rm", "--network", "none", IMAGE, "python3", "-c", script)
    pins = [f"{name}=={version}" for name, version in json.loads(output) if name.lower() != "filefleet"]
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {_normal(pin.split("==")[0]) for pin in pins}
    missing = [dep for dep in declared if _normal(re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0]) not in names]
    if missing:
        raise BenchmarkFailure(f"the image's venv lacks declared dependencies: {missing}")
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def make_source_dir(pins: list[str]) -> Path:
    """What the guide downloads: the app's source, and its requirements.txt (the image's pins)."""
    source = Path(tempfile.mkdtemp(prefix="filefleet-bench-src-"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    (source / "requirements.txt").write_text("\n".join(pins) + "\n")
    source.chmod(0o755)  # mkdtemp makes it 0700: the container's root may not be this user
    return source


# -- moto ----------------------------------------------------------------------------------------------------


def make_queue(endpoint: str) -> str:
    """A queue with a DLQ behind a RedrivePolicy, as the worker insists on; returns the queue's URL."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION
    )
    sqs = session.client("sqs", endpoint_url=endpoint)
    name = f"bench-start-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"})
    url: str = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    return url


def app_env(endpoint: str, queue_url: str, port: int) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "SQS_QUEUE_URL": queue_url,
        "INDEX_SINK": "local",
        "LOCAL_INDEX_PATH": "/tmp/filefleet-index.sqlite3",
        "EMBEDDER": "local",
        "HEALTH_BIND": "127.0.0.1",
        "HEALTH_PORT": str(port),
    }


# -- one start -------------------------------------------------------------------------------------------


@dataclass
class Start:
    variant: str
    label: str  # "warm-up" or the run's number
    seconds: float  # just before `docker run -d` → the first /readyz 200
    run_returned: float  # `docker run -d` returned
    first_answer: float | None  # /readyz first answered anything (gunicorn was listening)
    not_ready: dict[str, float] = field(default_factory=dict)  # a 503's failing check → first seen at
    marks: dict[str, float] = field(default_factory=dict)  # log milestones / phases → seconds from t0


class Containers:
    """Every container this run starts carries RUN_LABEL=<run id>; ``remove_all`` removes them all."""

    def __init__(self, docker_cmd: str) -> None:
        self.docker = docker_cmd
        self.run_id = uuid.uuid4().hex[:8]
        self._count = 0

    def new_name(self, variant: str) -> str:
        self._count += 1
        return f"filefleet-bench-{self.run_id}-{variant}-{self._count}"

    def remove(self, name: str) -> None:
        subprocess.run(
            [self.docker, "rm", "-f", name], capture_output=True, timeout=DOCKER_TIMEOUT, check=False
        )

    def remove_all(self) -> list[str]:
        listed = subprocess.run(
            [self.docker, "ps", "-aq", "--filter", f"label={RUN_LABEL}={self.run_id}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT,
            check=False,
        )
        ids = listed.stdout.split()
        if ids:
            subprocess.run(
                [self.docker, "rm", "-f", *ids], capture_output=True, timeout=DOCKER_TIMEOUT, check=False
            )
        return ids


def _probe(opener: urllib.request.OpenerDirector, url: str) -> tuple[int, bytes] | None:
    try:
        with opener.open(url, timeout=PROBE_TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, ValueError):
        return None  # not listening yet (refused, reset, timed out)


def _failing_checks(body: bytes) -> list[str]:
    try:
        checks = json.loads(body).get("checks", {})
    except ValueError:
        return ["(not JSON)"]
    failing = []
    for name, check in checks.items():
        if not check.get("ok"):
            detail = check.get("error") or check.get("state") or ""
            failing.append(f"{name}: {detail}"[:160])
    return failing


def start_and_wait(
    containers: Containers, variant: str, label: str, *, run_args: list[str], port: int, timeout: float
) -> Start:
    """``docker run -d`` (timed from just before it), then /readyz every 50 ms until 200; then removal."""
    name = containers.new_name(variant)
    command = [containers.docker, "run", "-d", "--name", name, "--label", f"{RUN_LABEL}={containers.run_id}"]
    command += run_args
    url = f"http://127.0.0.1:{port}/readyz"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy for 127.0.0.1
    wall0 = time.time()
    t0 = time.perf_counter()
    try:
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=DOCKER_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            raise BenchmarkFailure(
                f"{variant} {label}: `docker run -d` took over {DOCKER_TIMEOUT:.0f} s"
            ) from None
        if done.returncode:
            raise BenchmarkFailure(
                f"{variant} {label}: `docker run -d` failed: {done.stderr.strip()[-2000:]}"
            )
        start = Start(variant, label, 0.0, time.perf_counter() - t0, None)
        next_state_check = STATE_CHECK_AFTER
        while True:
            elapsed = time.perf_counter() - t0
            if elapsed > timeout:
                raise BenchmarkFailure(
                    f"{variant} {label}: /readyz not 200 within {timeout:.0f} s; failing checks "
                    f"{sorted(start.not_ready)}; log tail:\n{_log_tail(containers.docker, name)}"
                )
            answer = _probe(opener, url)
            now = time.perf_counter() - t0
            if answer is not None:
                status, body = answer
                if start.first_answer is None:
                    start.first_answer = now
                if status == 200:
                    failing = _failing_checks(body)
                    if failing or json.loads(body).get("ready") is not True:
                        raise BenchmarkFailure(
                            f"{variant} {label}: /readyz 200 but not ready: {body[:500]!r}"
                        )
                    start.seconds = now
                    break
                for check in _failing_checks(body) if status == 503 else [f"HTTP {status}"]:
                    start.not_ready.setdefault(check, now)
            if now >= next_state_check:
                next_state_check = now + STATE_CHECK_EVERY
                if not _running(containers.docker, name):
                    raise BenchmarkFailure(
                        f"{variant} {label}: the container exited before /readyz answered 200; log tail:\n"
                        f"{_log_tail(containers.docker, name)}"
                    )
            time.sleep(POLL_SECONDS)
        start.marks = _log_marks(containers.docker, name, wall0, variant)
        return start
    finally:
        containers.remove(name)


def _running(docker_cmd: str, name: str) -> bool:
    done = subprocess.run(
        [docker_cmd, "inspect", "-f", "{{.State.Running}}", name],
        capture_output=True,
        text=True,
        timeout=DOCKER_TIMEOUT,
        check=False,
    )
    return done.stdout.strip() == "true"


def _log_tail(docker_cmd: str, name: str, lines: int = 40) -> str:
    done = subprocess.run(
        [docker_cmd, "logs", "--tail", str(lines), name],
        capture_output=True,
        text=True,
        timeout=DOCKER_TIMEOUT,
        check=False,
    )
    return (done.stdout + done.stderr).strip()[-4000:]


def _log_marks(docker_cmd: str, name: str, wall0: float, variant: str) -> dict[str, float]:
    """Seconds from t0 at which each milestone (preloaded) or phase (user data) appeared in the log."""
    done = subprocess.run(
        [docker_cmd, "logs", "-t", name], capture_output=True, text=True, timeout=DOCKER_TIMEOUT, check=False
    )
    marks: dict[str, float] = {}
    for line in (done.stdout + "\n" + done.stderr).splitlines():
        match = _DOCKER_TIME.match(line)
        if match is None:
            continue
        stamp = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC).timestamp()
        stamp += float(f"0.{match.group(2) or '0'}")
        text = match.group(3)
        if variant == "userdata":
            if text.startswith("PHASE "):
                marks.setdefault(text.split()[1], stamp - wall0)
            continue
        for mark, pattern in MILESTONES.items():
            if mark not in marks and pattern.search(text):
                marks[mark] = stamp - wall0
    return marks


def preloaded_args(endpoint: str, queue_url: str, port: int) -> list[str]:
    """tests/container/test_image.py's `docker run`."""
    args = ["--network", "host", "--init", "--read-only", "--tmpfs", "/tmp"]
    for key, value in app_env(endpoint, queue_url, port).items():
        args += ["-e", f"{key}={value}"]
    return [*args, IMAGE]


def userdata_args(endpoint: str, queue_url: str, port: int, source: Path) -> list[str]:
    args = ["--network", "host", "--init", "-v", f"{source}:/src:ro", "-w", "/"]
    env = {
        "DEBIAN_FRONTEND": "noninteractive",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONPATH": "/opt/filefleet-app",  # the guide runs its worker from the unpacked directory
        **app_env(endpoint, queue_url, port),
    }
    if HOST_CA.exists():
        args += ["-v", f"{HOST_CA}:/etc/filefleet-host-ca.crt:ro"]
        env["PIP_CERT"] = "/etc/filefleet-host-ca.crt"
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    return [*args, BASE_IMAGE, "sh", "-c", USERDATA_SCRIPT]


# -- report ----------------------------------------------------------------------------------------------


def _fmt(value: float | None, width: int = 8, digits: int = 2) -> str:
    return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def print_preloaded(starts: list[Start]) -> None:
    header = (
        f"{'preloaded':<9} {'ready s':>8} {'run -d':>8} {'run.started':>11} {'listening':>9} "
        f"{'worker.started':>14} {'1st answer':>10}  503s before 200 (check: first seen at s)"
    )
    print(header)
    print("-" * len(header))
    for s in starts:
        reasons = _reasons(s)
        print(
            f"{s.label:<9} {s.seconds:>8.3f} {s.run_returned:>8.3f} {_fmt(s.marks.get('run.started'), 11)} "
            f"{_fmt(s.marks.get('listening'), 9)} {_fmt(s.marks.get('worker.started'), 14)} "
            f"{_fmt(s.first_answer, 10)}  {reasons}"
        )


def userdata_phases(start: Start) -> dict[str, float | None]:
    """Seconds each step took: apt (update + install), venv (copy + venv), pip, start (app start → 200)."""
    marks: list[float | None] = [start.marks.get(phase) for phase in USERDATA_PHASES] + [start.seconds]
    phases: dict[str, float | None] = {}
    for phase, begin, end in zip(USERDATA_PHASES, marks, marks[1:], strict=False):
        phases[phase] = end - begin if begin is not None and end is not None else None
    return phases


def print_userdata(starts: list[Start]) -> None:
    header = (
        f"{'user data':<9} {'ready s':>8} {'to apt':>8} {'apt':>8} {'venv':>8} {'pip':>8} {'start':>8} "
        f"{'1st answer':>10}  503s before 200 (check: first seen at s)"
    )
    print(header)
    print("-" * len(header))
    for s in starts:
        phases = userdata_phases(s)
        print(
            f"{s.label:<9} {s.seconds:>8.2f} {_fmt(s.marks.get('apt'))} {_fmt(phases['apt'])} "
            f"{_fmt(phases['venv'])} {_fmt(phases['pip'])} {_fmt(phases['start'])} "
            f"{_fmt(s.first_answer, 10)}  {_reasons(s)}"
        )


def _reasons(start: Start) -> str:
    ordered = sorted(start.not_ready.items(), key=lambda item: item[1])
    return "; ".join(f"{check} @{at:.2f}" for check, at in ordered) or "-"


def _median_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _round(value: float | None, digits: int = 3) -> float | None:
    return round(value, digits) if value is not None else None


@dataclass
class Measured:
    preloaded_warmup: Start
    userdata_warmup: Start
    preloaded: list[Start]
    userdata: list[Start]


def measure(containers: Containers, source: Path, args: argparse.Namespace) -> Measured:
    """A moto server, then the warm-ups, then the starts of both variants interleaved."""
    with running_moto() as endpoint:
        queue_url = make_queue(endpoint)
        print(f"moto on {endpoint} (127.0.0.1 only), queue {queue_url}", flush=True)

        def preloaded_start(label: str) -> Start:
            port = free_port()
            print(f"preloaded {label}: docker run {IMAGE} ...", flush=True)
            run_args = preloaded_args(endpoint, queue_url, port)
            return start_and_wait(
                containers, "preloaded", label, run_args=run_args, port=port, timeout=args.ready_timeout
            )

        def userdata_start(label: str) -> Start:
            port = free_port()
            print(f"user data {label}: docker run {BASE_IMAGE} (apt, venv, pip, app) ...", flush=True)
            run_args = userdata_args(endpoint, queue_url, port, source)
            start = start_and_wait(
                containers, "userdata", label, run_args=run_args, port=port, timeout=args.userdata_timeout
            )
            print(f"  {start.seconds:.1f} s", flush=True)
            return start

        measured = Measured(preloaded_start("warm-up"), userdata_start("warm-up"), [], [])
        # Interleaved, so both sides share the machine's moods: P U P U ... then the rest of the longer side.
        for index in range(max(args.runs, args.userdata_runs)):
            if index < args.runs:
                measured.preloaded.append(preloaded_start(str(index + 1)))
            if index < args.userdata_runs:
                measured.userdata.append(userdata_start(str(index + 1)))
    return measured


def report(measured: Measured, image: ImageInfo, pins: list[str]) -> dict[str, Any]:
    """The tables and notes; returns the RESULT fields of the measurements."""
    preloaded, userdata = measured.preloaded, measured.userdata
    start_to_ready = statistics.median(s.seconds for s in preloaded)
    userdata_s = statistics.median(s.seconds for s in userdata)
    ratio = userdata_s / start_to_ready
    print()
    print_preloaded([measured.preloaded_warmup, *preloaded])
    print(
        "\nseconds from just before `docker run -d`: run -d = the CLI returned; run.started = the supervisor "
        "had spawned gunicorn and the worker; listening = gunicorn's 'Listening at'; worker.started = the "
        "receive loop began; 1st answer = /readyz first answered (any status); ready = its first 200. Log "
        "times are dockerd's (`docker logs -t`)."
    )
    print()
    print_userdata([measured.userdata_warmup, *userdata])
    print(
        "\nto apt = docker run -d → the script's first line; apt = apt-get update + install python3 "
        "python3-venv ca-certificates; venv = copy of the source + python3 -m venv; pip = pip install "
        f"--no-cache-dir -r requirements.txt ({len(pins)} pinned wheels from PyPI); start = `python -m app "
        "run` → /readyz 200."
    )
    print()
    print(
        f"image {IMAGE}: {image.mib:.1f} MiB, of which base {image.base_mib:.1f} MiB; layers, newest first:"
    )
    for created_by, size in image.layers:
        print(f"  {size / MIB:>8.1f} MiB  {created_by[:100] or f'(the base, {BASE_IMAGE})'}")
    fewer = "" if len(userdata) >= len(preloaded) else f" (--userdata-runs {len(userdata)})"
    print(
        f"\npreloaded: median of {len(preloaded)} = {start_to_ready:.3f} s (warm-up "
        f"{measured.preloaded_warmup.seconds:.3f} s, apart); user data: median of {len(userdata)}{fewer} = "
        f"{userdata_s:.1f} s (warm-up {measured.userdata_warmup.seconds:.1f} s, apart); ratio {ratio:.1f}."
    )
    phases = [userdata_phases(s) for s in userdata]
    return {
        "image_mib": round(image.mib, 1),
        "start_to_ready_s": round(start_to_ready, 3),
        "userdata_s": round(userdata_s, 2),
        "ratio_userdata_vs_preloaded": round(ratio, 2),
        "start_to_ready_runs_s": [round(s.seconds, 3) for s in preloaded],
        "start_to_ready_warmup_s": round(measured.preloaded_warmup.seconds, 3),
        "userdata_runs_s": [round(s.seconds, 2) for s in userdata],
        "userdata_warmup_s": round(measured.userdata_warmup.seconds, 2),
        "preloaded_runs": len(preloaded),
        "userdata_runs": len(userdata),
        "preloaded_marks_median_s": {
            **{mark: _round(_median_of([s.marks.get(mark) for s in preloaded])) for mark in MILESTONES},
            "first_answer": _round(_median_of([s.first_answer for s in preloaded])),
        },
        "preloaded_not_ready_checks": sorted(
            {check.split(":")[0] for s in preloaded for check in s.not_ready}
        ),
        "userdata_phases_median_s": {
            phase: _round(_median_of([p[phase] for p in phases]), 2) for phase in USERDATA_PHASES
        },
        "userdata_scope": (
            "end to end: apt-get update + install python3 python3-venv, venv, pip install --no-cache-dir "
            f"-r requirements.txt ({len(pins)} pins = the image's venv) from PyPI, python -m app run, until "
            "/readyz 200; yum update, the CloudWatch agent and the app download left out"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="preloaded starts after the warm-up (default 5)")
    parser.add_argument(
        "--userdata-runs",
        type=int,
        default=3,
        help="user-data starts after the warm-up (default 3: each downloads every wheel again)",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="build the image even if its inputs are the same"
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=120.0, help="bound of one preloaded start, s (default 120)"
    )
    parser.add_argument(
        "--userdata-timeout", type=float, default=600.0, help="bound of one user-data start, s (default 600)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.userdata_runs < 1:
        parser.error("--runs and --userdata-runs must be at least 1")

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise SystemExit(143)  # unwinds through the finally blocks that remove containers and stop moto

    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.monotonic()
    load_before = os.getloadavg()
    docker_cmd = docker_command()
    image = ensure_image(docker_cmd, rebuild=args.rebuild)
    how = f"built in {image.build_seconds:.1f} s" if image.build_seconds is not None else "reused"
    print(
        f"{IMAGE}: {image.mib:.1f} MiB ({how}; created {image.created}; inputs sha256 {image.inputs[:12]}); "
        f"base {BASE_IMAGE}: {image.base_mib:.1f} MiB",
        flush=True,
    )
    containers = Containers(docker_cmd)
    source: Path | None = None
    try:
        pins = image_requirements(docker_cmd)
        source = make_source_dir(pins)
        print(f"user data installs {len(pins)} pinned distributions (the image's venv): {' '.join(pins)}")
        measured = measure(containers, source, args)
    except BenchmarkFailure as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        return 1
    finally:
        leftovers = containers.remove_all()
        if leftovers:
            print(f"removed {len(leftovers)} leftover container(s)", file=sys.stderr)
        if source is not None:
            shutil.rmtree(source, ignore_errors=True)

    result = report(measured, image, pins)
    result.update(
        {
            "base_image_mib": round(image.base_mib, 1),
            "image_reused": image.reused,
            "image_build_s": _round(image.build_seconds, 1),
            "image_inputs_sha256": image.inputs,
            "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "seconds_total": round(time.monotonic() - started, 1),
        }
    )
    met = {"ratio_userdata_vs_preloaded": result["ratio_userdata_vs_preloaded"] >= TARGET_RATIO}
    print_result(result, met)
    return 0


if __name__ == "__main__":
    run(main, stopped="containers removed and moto stopped")
