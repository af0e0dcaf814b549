"""Health endpoints under probe load: /healthz and /metrics latency, and the worker's throughput beside them.

Claims measured (issue: "drive /healthz and /metrics with a load tool for 20 s while the worker processes a
steady stream, and compare worker throughput with and without the probes, in one run"):

- ``healthz_p99_ms``: p99 latency of /healthz under a steady probe load. Target < 20.
- ``metrics_p99_ms``: p99 latency of /metrics (the Prometheus text of every process, multiprocess mode)
  under the same load. Target < 50.
- ``worker_throughput_ratio_with_probes``: messages the worker settles per second while the probes run,
  divided by the same without them: the median of the with-probe phases over the median of the no-probe
  phases. Target >= 0.95.

Set-up: ONE ``filefleet run`` (``python -m app run``: the worker and gunicorn serving app.health, as the
container runs them) with INDEX_SINK=local, EMBEDDER=local, WORKER_CONCURRENCY=4 and LOG_LEVEL=WARNING (so
one log line per message does not dominate; ``--log-level INFO`` measures it as deployed), SQS from fauxqs
(pinned in benchmarks/package-lock.json, installed with ``npm ci`` into benchmarks/.cache, bound to
127.0.0.1; it stays fast with a deep queue, where moto slows down) and S3 from a moto server. ``--files``
small text files (1-6 KiB of words) are uploaded once; the queue holds S3 notifications whose keys cycle
over them, so every message is a real fetch, sniff, extract, embed and index. After /readyz answers 200
and a warm-up, the queue is topped up to 2.5 times what the warm-up rate would settle over the rest of the
run, so the worker never runs dry (checked at every phase boundary).

Phases of ``--phase-seconds`` (10 s) alternate without and with probes in an ABBA order (``--pairs 4``:
off, on, on, off, off, on, on, off), so a linear drift of the shared machine cancels out, each condition
gets four phases (the median of four shrugs off one phase hit by another user of the machine), and the
probes run in two unbroken windows of 20 s, the issue's load duration. Phases are contiguous: one boundary
reading ends a phase and starts the next. A phase's throughput is the drop of
(ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible) on fauxqs between its two boundaries
(every message the worker deletes, and only those: nothing else sends, receives or deletes meanwhile),
divided by the time between the readings. That reading is one GetQueueAttributes call to fauxqs per
boundary: the worker's own endpoints are not touched at all in a no-probe phase.

The probe load is open-loop and rate-limited, far above real probing (a Docker HEALTHCHECK every ~30 s, a
CloudWatch agent or Prometheus scrape every 15-60 s): ``--healthz-rate`` 50 req/s and ``--metrics-rate``
5 req/s, one thread and one keep-alive HTTP/1.1 connection per endpoint (http.client). Requests are sent
on a fixed schedule. A latency runs from the send to the end of the response body; when the previous
answer came after this request's slot, from the slot instead, so a slow answer that delays the next
request is charged to that one too (no coordinated omission), while the prober's own wake-up lag on a
busy machine is not charged to the server. Percentiles are nearest-rank over every request of the
with-probe phases. Each /healthz body must say ``status ok`` and ``state running``.

Why not a saturating tool for the headline: on a 2-core machine a closed-loop tool such as wrk sends the
next request the moment the last one returns, so gunicorn, wrk and the worker fight for the same two
cores, and the throughput ratio would measure how much CPU the load generator can steal, not what
probing costs. When ``wrk`` (Debian package wrk) is on PATH, a separate ``--wrk-seconds`` phase after the
headline phases runs it on both endpoints at once (2 connections each, as many as gunicorn's 4 threads) to
show the worst case: its latencies, requests/s and the worker's throughput during it, reported apart and
not in ``targets_met``. Without wrk, the output says so and that phase is skipped.

CPU use per phase (worker, gunicorn, moto, fauxqs, this script's probe threads, and the whole machine, from
/proc) is shown so a reader can see where the probes' cost goes and how busy the shared machine was. The
probe client shares the two cores with everything else; its CPU is part of the measured cost, which makes
the ratio conservative (a real scraper runs elsewhere; only a Docker HEALTHCHECK runs in the container).
The ratio of each pair of neighbouring phases is printed too, as a feel for the noise, and phases where
the whole machine was over 85% busy are named.
After the phases: one /metrics scrape must show only acknowledgements (no retry, dead letter, receive
error or settle failure), as many as the queue lost (within the in-flight slack), the DLQ must be empty,
``filefleet run`` must exit 0 on SIGTERM, and the local index must hold every uploaded file.

Run: ``.venv/bin/python benchmarks/health_under_load.py [--phase-seconds 10] [--pairs 4]`` (about two
minutes). The last line printed is ``RESULT {json}``. Exit status 1: a correctness failure (/readyz
never 200, the worker or gunicorn died, a probe answered other than 200 or failed, a message was not
acknowledged, the queue ran dry); a missed target is reported, not an error. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import REPO, BenchmarkFailure, free_port, print_result, run, running_moto, tail
from sqs_throughput import (
    FAUXQS_VERSION,
    REGION,
    install_fauxqs,
    queue_depth,
    running_fauxqs,
    sqs_client,
)

BUCKET = "bench-health-under-load"
CONCURRENCY = 4
MAX_RECEIVE_COUNT = 5
READY_TIMEOUT = 60.0
PROBE_TIMEOUT = 5.0  # seconds: a probe slower than this is a failure, not a latency
STOP_TIMEOUT = 60.0
TOP_UP_MARGIN = 2.5
SETTLE_SECONDS = 3.0
BUSY_MACHINE_PERCENT = 85  # of all cores: above it, other users of the machine weigh on a phase
TARGETS = {"healthz_p99_ms": 20.0, "metrics_p99_ms": 50.0}
TARGET_RATIO = 0.95
CLK_TCK = os.sysconf("SC_CLK_TCK")
WORDS = (
    *("invoice", "receipt", "photo", "scan", "report", "draft", "contract", "minutes", "agenda", "budget"),
    *("forecast", "summary", "review", "schedule", "meeting", "project", "quarter", "annual", "travel"),
    *("expense", "claim", "approval", "policy", "notice", "letter", "memo", "shipment", "order", "audit"),
)


# -- S3 and SQS set-up -----------------------------------------------------------------------------------


def s3_client(endpoint: str) -> Any:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION
    )
    return session.client("s3", endpoint_url=endpoint)


def upload_files(s3: Any, count: int) -> dict[str, int]:
    """``count`` small text files of 1-6 KiB of words; returns their sizes by key."""
    rng = random.Random(20260101)
    s3.create_bucket(Bucket=BUCKET)
    sizes = {}
    for index in range(count):
        key = f"docs/{index:03d}.txt"
        words = [rng.choice(WORDS) for _ in range(rng.randint(150, 900))]
        body = f"document {index}\n{' '.join(words)}\n".encode()
        s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="text/plain")
        sizes[key] = len(body)
    return sizes


@dataclass
class Queues:
    url: str
    dead_letter_url: str


def make_queues(setup: Any) -> Queues:
    dead_letter_url = setup.create_queue(QueueName="health-bench-dlq")["QueueUrl"]
    arn = setup.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = {"deadLetterTargetArn": arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    url = setup.create_queue(QueueName="health-bench", Attributes={"RedrivePolicy": json.dumps(policy)})[
        "QueueUrl"
    ]
    return Queues(url, dead_letter_url)


def s3_notification(key: str, size: int) -> str:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": size}},
    }
    return json.dumps({"Records": [record]}, separators=(",", ":"))


class Filler:
    """Sends S3 notifications whose keys cycle over the uploaded files; counts what it sent."""

    def __init__(self, setup: Any, url: str, sizes: dict[str, int]) -> None:
        self._setup = setup
        self._url = url
        self._files = sorted(sizes.items())
        self.sent = 0

    def send(self, count: int) -> float:
        """Sends ``count`` messages, 10 per SendMessageBatch; returns the seconds it took."""
        started = time.perf_counter()
        remaining = count
        while remaining > 0:
            batch = min(10, remaining)
            entries = []
            for i in range(batch):
                key, size = self._files[(self.sent + i) % len(self._files)]
                entries.append({"Id": str(i), "MessageBody": s3_notification(key, size)})
            response = self._setup.send_message_batch(QueueUrl=self._url, Entries=entries)
            if response.get("Failed"):
                raise BenchmarkFailure(f"SendMessageBatch refused entries: {response['Failed']}")
            self.sent += batch
            remaining -= batch
        return time.perf_counter() - started


# -- filefleet run ---------------------------------------------------------------------------------------


def run_env(
    *, fauxqs: str, moto: str, queues: Queues, workdir: Path, port: int, log_level: str
) -> dict[str, str]:
    """Our environment without AWS_* variables, then filefleet pointed at fauxqs (SQS) and moto (S3)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "PROMETHEUS_"))}
    env.update(
        AWS_ENDPOINT_URL_SQS=fauxqs,
        AWS_ENDPOINT_URL_S3=moto,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        SQS_QUEUE_URL=queues.url,
        INDEX_SINK="local",
        LOCAL_INDEX_PATH=str(workdir / "index.sqlite3"),
        EMBEDDER="local",
        WORKER_CONCURRENCY=str(CONCURRENCY),
        # The queue is never empty, so receives return at once; 1 s only bounds the long poll at shutdown.
        WAIT_TIME_SECONDS="1",
        HEALTH_BIND="127.0.0.1",
        HEALTH_PORT=str(port),
        FILEFLEET_STATE_DIR=str(workdir / "state"),
        LOG_LEVEL=log_level,
        # gunicorn >= 25.1 opens a control socket in $XDG_RUNTIME_DIR, else ~/.gunicorn: keep ours private.
        XDG_RUNTIME_DIR=str(workdir),
    )
    return env


@contextmanager
def running_filefleet(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`filefleet run` as the container runs it; SIGTERM (it drains) and a bounded wait on the way out."""
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "run"],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C reaches us, and we stop it in order
        )
        try:
            yield process
        finally:
            stop_filefleet(process)


def stop_filefleet(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            # The supervisor starts the worker and gunicorn in sessions of their own: kill each, then it.
            for pid in descendants(process.pid):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait(timeout=10)
    return process.returncode


def http_get(port: int, path: str, timeout: float = PROBE_TIMEOUT) -> tuple[int, bytes]:
    with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)) as conn:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()


def wait_ready(process: subprocess.Popen[bytes], port: int) -> float:
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < READY_TIMEOUT:
        if process.poll() is not None:
            raise BenchmarkFailure(
                f"filefleet run exited with {process.returncode} before /readyz answered 200"
            )
        try:
            status, body = http_get(port, "/readyz", timeout=2)
            if status == 200:
                return time.monotonic() - started
            last = f"{status} {body[:300]!r}"
        except (OSError, http.client.HTTPException) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)
    raise BenchmarkFailure(f"/readyz not 200 within {READY_TIMEOUT:.0f} s (last: {last})")


def check_alive(process: subprocess.Popen[bytes], procs: dict[str, list[int]]) -> None:
    if process.poll() is not None:
        raise BenchmarkFailure(f"filefleet run exited with {process.returncode} during the measurement")
    for name in ("worker", "gunicorn"):
        for pid in procs.get(name, []):
            if cpu_ticks(pid) is None:
                raise BenchmarkFailure(f"the {name} process {pid} died during the measurement")


# -- processes and CPU (Linux /proc) ---------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in path.read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def find_processes(run_pid: int) -> dict[str, list[int]]:
    """The worker, gunicorn (master and workers), moto and fauxqs, by their command lines."""
    procs: dict[str, list[int]] = {"worker": [], "gunicorn": [], "moto": [], "fauxqs": []}
    for pid in children(run_pid):
        command = cmdline(pid)
        if b"-m app worker" in command:
            procs["worker"].append(pid)
        elif b"gunicorn" in command:
            procs["gunicorn"] += [pid, *children(pid)]
    for pid in children(os.getpid()):
        command = cmdline(pid)
        if b"moto.server" in command:
            procs["moto"].append(pid)
        elif b"fauxqs" in command:
            procs["fauxqs"].append(pid)
    if not procs["worker"] or len(procs["gunicorn"]) < 2:
        raise BenchmarkFailure(f"could not find the worker and gunicorn under filefleet run: {procs}")
    return procs


def cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == "Z":
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs."""
    # user nice system idle iowait irq softirq steal (guest time is already in user and nice)
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class CpuSnapshot:
    at: float
    ticks: dict[str, int]
    machine: tuple[int, int]


def cpu_snapshot(procs: dict[str, list[int]]) -> CpuSnapshot:
    ticks = {name: sum(cpu_ticks(pid) or 0 for pid in pids) for name, pids in procs.items()}
    return CpuSnapshot(time.perf_counter(), ticks, machine_ticks())


def cpu_percent(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """Per process group in % of one core; "machine" in % of all cores."""
    seconds = after.at - before.at
    result = {
        name: 100.0 * (after.ticks[name] - before.ticks[name]) / CLK_TCK / seconds for name in before.ticks
    }
    busy = after.machine[0] - before.machine[0]
    total = after.machine[1] - before.machine[1]
    result["machine"] = 100.0 * busy / total if total else 0.0
    return result


# -- the probe client ------------------------------------------------------------------------------------


@dataclass
class ProbeRecord:
    path: str
    rate: float
    latencies_ms: list[float] = field(default_factory=list)  # send (or the missed slot) → end of the body
    service_ms: list[float] = field(default_factory=list)  # actual send time → end of the body
    behind: int = 0  # requests sent late because the previous answer came after their slot
    failures: list[str] = field(default_factory=list)
    max_heartbeat_age: float = 0.0
    response_bytes: int = 0
    reconnects: int = 0
    cpu_seconds: float = 0.0


class Prober(threading.Thread):
    """GETs ``path`` at ``rate`` per second on a fixed schedule over one keep-alive connection."""

    def __init__(self, port: int, path: str, rate: float, stop: threading.Event) -> None:
        super().__init__(name=f"probe{path}", daemon=True)
        self._port = port
        self._stop_event = stop
        self._conn: http.client.HTTPConnection | None = None
        self._used = False
        self.record = ProbeRecord(path, rate)

    def run(self) -> None:
        cpu_started = time.thread_time()
        started = time.perf_counter()
        interval = 1.0 / self.record.rate
        sent = 0
        last_answer = -math.inf
        try:
            while True:
                scheduled = started + sent * interval
                delay = scheduled - time.perf_counter()
                if self._stop_event.wait(delay) if delay > 0 else self._stop_event.is_set():
                    return
                sent += 1
                # Behind schedule (the last answer came after this request's slot): the server made it
                # wait, so its latency counts from the slot. On time: from the send, so that this thread's
                # own wake-up lag on a busy machine is not charged to the server.
                last_answer = self._probe_once(scheduled if last_answer > scheduled else None)
        finally:
            if self._conn is not None:
                self._conn.close()
            self.record.cpu_seconds = time.thread_time() - cpu_started

    def _probe_once(self, behind_since: float | None) -> float:
        """One request; returns when its answer ended."""
        record = self.record
        sent_at = time.perf_counter()
        try:
            status, body = self._get()
        except (OSError, http.client.HTTPException) as exc:
            record.failures.append(f"{type(exc).__name__}: {exc}")
            return time.perf_counter()
        done = time.perf_counter()
        record.latencies_ms.append((done - (sent_at if behind_since is None else behind_since)) * 1000)
        record.behind += behind_since is not None
        record.service_ms.append((done - sent_at) * 1000)
        record.response_bytes = len(body)
        if status != 200:
            record.failures.append(f"HTTP {status}: {body[:200]!r}")
        elif record.path == "/healthz":
            answer = json.loads(body)
            record.max_heartbeat_age = max(record.max_heartbeat_age, float(answer.get("heartbeat_age_s", 0)))
            if answer.get("status") != "ok" or answer.get("state") != "running":
                record.failures.append(f"/healthz said {answer}")
        return done

    def _get(self) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=PROBE_TIMEOUT)
                self._used = False
            try:
                self._conn.request("GET", self.record.path)
                response = self._conn.getresponse()
                body = response.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                # A keep-alive connection the server closed between two requests: reconnect once.
                self._conn.close()
                self._conn = None
                if attempt == 2 or not self._used:
                    raise
                self.record.reconnects += 1
                continue
            self._used = True
            if response.will_close:
                self._conn.close()
                self._conn = None
            return response.status, body
        raise AssertionError("unreachable")


@contextmanager
def probing(port: int, rates: dict[str, float]) -> Iterator[list[ProbeRecord]]:
    """Probers on every path of ``rates`` while inside; their records once they have stopped."""
    stop = threading.Event()
    probers = [Prober(port, path, rate, stop) for path, rate in rates.items()]
    records = [prober.record for prober in probers]
    for prober in probers:
        prober.start()
    try:
        yield records
    finally:
        stop.set()
        for prober in probers:
            prober.join(timeout=PROBE_TIMEOUT * 2 + 1)
            if prober.is_alive():
                raise BenchmarkFailure(f"the {prober.record.path} prober did not stop")


def percentile(values: list[float], q: float) -> float:
    """Nearest rank."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# -- wrk (optional, saturating) --------------------------------------------------------------------------

_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _WRK_UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for percent in ("50", "75", "90", "99"):
        if match := re.search(rf"^\s+{percent}%\s+(\S+)", output, re.MULTILINE):
            result[f"p{percent}_ms"] = round(_wrk_ms(match.group(1)), 2)
    if match := re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", output, re.MULTILINE):
        result["max_ms"] = round(_wrk_ms(match.group(1)), 2)
    if match := re.search(r"(\d+) requests in", output):
        result["requests"] = int(match.group(1))
    if match := re.search(r"Requests/sec:\s+([\d.]+)", output):
        result["requests_per_s"] = round(float(match.group(1)), 1)
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(match.group(1)) if match else 0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = sum(int(n) for n in match.groups()) if match else 0
    if "requests" not in result or "p99_ms" not in result:
        raise ValueError(f"could not read wrk's output: {output[-300:]!r}")
    return result


@contextmanager
def running_wrk(wrk: str, port: int, seconds: float) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """wrk on /healthz and /metrics at once, 2 connections each (gunicorn serves 4 threads)."""
    processes: dict[str, subprocess.Popen[str]] = {}
    base = f"http://127.0.0.1:{port}"
    try:
        for path in ("/healthz", "/metrics"):
            processes[path] = subprocess.Popen(
                [wrk, "-t1", "-c2", f"-d{seconds:g}s", "--latency", "--timeout", "5s", f"{base}{path}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


# -- phases ----------------------------------------------------------------------------------------------


@dataclass
class Boundary:
    at: float
    visible: int
    in_flight: int

    @property
    def held(self) -> int:
        return self.visible + self.in_flight


@dataclass
class Phase:
    label: str
    probes: str  # off | on | wrk
    start: Boundary
    end: Boundary
    cpu: dict[str, float]
    records: list[ProbeRecord] = field(default_factory=list)
    wrk: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.end.at - self.start.at

    @property
    def settled(self) -> int:
        return self.start.held - self.end.held

    @property
    def rate(self) -> float:
        return self.settled / self.seconds


class Bench:
    def __init__(self, setup: Any, queues: Queues, run: subprocess.Popen[bytes], port: int) -> None:
        self.setup = setup
        self.queues = queues
        self.run = run
        self.port = port
        self.procs: dict[str, list[int]] = {}
        self.low_water = CONCURRENCY + 10  # the worker holds at most concurrency + a prefetched batch

    def boundary(self) -> Boundary:
        visible, in_flight = queue_depth(self.setup, self.queues.url)
        at = time.perf_counter()
        dead_visible, dead_in_flight = queue_depth(self.setup, self.queues.dead_letter_url)
        if dead_visible or dead_in_flight:
            raise BenchmarkFailure(f"{dead_visible + dead_in_flight} messages went to the DLQ")
        if visible < self.low_water:
            raise BenchmarkFailure(
                f"the queue ran low ({visible} visible): it may have run dry; the figures mean nothing"
            )
        return Boundary(at, visible, in_flight)

    def wait(self, until: float) -> None:
        while (left := until - time.perf_counter()) > 0:
            time.sleep(min(0.25, left))
            check_alive(self.run, self.procs)

    def phase(self, label: str, start: Boundary, seconds: float, rates: dict[str, float] | None) -> Phase:
        cpu_before = cpu_snapshot(self.procs)
        records: list[ProbeRecord] = []
        if rates:
            with probing(self.port, rates) as records:
                self.wait(start.at + seconds)
        else:
            self.wait(start.at + seconds)
        end = self.boundary()
        cpu = cpu_percent(cpu_before, cpu_snapshot(self.procs))
        check_alive(self.run, self.procs)
        for record in records:
            if record.failures:
                raise BenchmarkFailure(
                    f"{record.path} failed {len(record.failures)} times in phase {label} (the worker "
                    f"running), e.g. {record.failures[:3]}"
                )
        return Phase(label, "on" if rates else "off", start, end, cpu, records)

    def wrk_phase(self, wrk: str, start: Boundary, seconds: float) -> Phase | str:
        """The saturating phase; a problem with wrk itself is returned as a note, not raised."""
        cpu_before = cpu_snapshot(self.procs)
        outputs = {}
        with running_wrk(wrk, self.port, seconds) as processes:
            self.wait(start.at + seconds)
            for path, process in processes.items():
                try:
                    outputs[path], _ = process.communicate(timeout=seconds + 15)
                except subprocess.TimeoutExpired:
                    return f"failed: wrk on {path} did not finish"
                if process.returncode != 0:
                    return f"failed: wrk on {path} exited with {process.returncode}: {outputs[path][-300:]!r}"
        end = self.boundary()
        cpu = cpu_percent(cpu_before, cpu_snapshot(self.procs))
        check_alive(self.run, self.procs)
        try:
            parsed = {path: parse_wrk(output) for path, output in outputs.items()}
        except ValueError as exc:
            return f"failed: {exc}"
        for path, figures in parsed.items():
            if figures["non_2xx"]:
                raise BenchmarkFailure(f"{path} answered {figures['non_2xx']} non-2xx responses under wrk")
        return Phase("wrk", "wrk", start, end, cpu, wrk=parsed)


def phase_order(pairs: int) -> list[bool]:
    """ABBA...: off, on, on, off, off, on, ... (True = probes on)."""
    order = []
    for pair in range(pairs):
        order += [False, True] if pair % 2 == 0 else [True, False]
    return order


# -- final checks ----------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$")


def parse_metrics(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if match := _SAMPLE.match(line):
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def check_metrics(samples: dict[str, float], deleted_before: int, deleted_after: int) -> int:
    """Only acknowledgements, as many as the queue lost around the scrape; returns the ack count."""
    problems = []
    acks = int(samples.get('filefleet_messages_total{outcome="ack"}', 0))
    others = {
        name: value
        for name, value in samples.items()
        if value
        and (
            (
                name.startswith("filefleet_messages_total")
                and name != 'filefleet_messages_total{outcome="ack"}'
            )
            or name.startswith(
                (
                    "filefleet_receive_errors_total",
                    "filefleet_settle_failures_total",
                    "filefleet_dead_letters_total",
                    "filefleet_visibility_lost_total",
                )
            )
        )
    }
    if others:
        problems.append(f"outcomes other than ack: {others}")
    # An ack is counted just after it is handed to the settler, and the queue loses the message once the
    # DeleteMessageBatch returns: in between, the settler holds up to a batch of 10 plus what the file
    # threads hand it meanwhile, and a file thread may not have counted a message the settler deleted.
    slack = 10 + CONCURRENCY
    if not deleted_before - CONCURRENCY <= acks <= deleted_after + slack:
        problems.append(f"{acks} acks counted, but the queue lost {deleted_before}..{deleted_after} messages")
    if samples.get('filefleet_worker_state{state="running"}') != 1.0:
        problems.append("filefleet_worker_state is not running")
    if problems:
        raise BenchmarkFailure("/metrics after the phases: " + "; ".join(problems))
    return acks


def check_index(path: Path, keys: set[str]) -> None:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
        rows = conn.execute("SELECT source FROM documents WHERE deleted = 0").fetchall()
    indexed = {json.loads(source)["key"] for (source,) in rows}
    if indexed != keys:
        raise BenchmarkFailure(
            f"the local index holds {len(indexed)} live documents, expected the {len(keys)} uploaded files "
            f"(missing e.g. {sorted(keys - indexed)[:3]})"
        )


# -- report ----------------------------------------------------------------------------------------------


_COLUMNS = (
    ("phase", 5), ("probes", 6), ("seconds", 7), ("settled", 7), ("msg/s", 6),
    ("hz n", 6), ("hz p50", 7), ("hz p99", 7), ("hz max", 7),
    ("met n", 6), ("met p50", 7), ("met p99", 7), ("met max", 7),
    ("worker", 6), ("gunicorn", 8), ("moto", 5), ("fauxqs", 6), ("client", 6), ("machine", 7),
)  # fmt: skip


def _probe_cells(phase: Phase, path: str) -> list[str]:
    if phase.wrk:
        figures = phase.wrk[path]
        return [str(figures["requests"]), *(f"{figures[k]:.2f}" for k in ("p50_ms", "p99_ms", "max_ms"))]
    for record in phase.records:
        if record.path == path:
            lat = record.latencies_ms
            return [
                str(len(lat)),
                *(f"{v:.2f}" for v in (percentile(lat, 50), percentile(lat, 99), max(lat))),
            ]
    return ["-"] * 4


def print_table(phases: list[Phase]) -> None:
    """hz = /healthz, met = /metrics (latencies in ms); CPU in % of one core, machine in % of all cores."""
    print(" ".join(f"{name:>{width}}" for name, width in _COLUMNS))
    print(" ".join("-" * width for _, width in _COLUMNS))
    for phase in phases:
        cpu = phase.cpu
        client = (
            "wrk" if phase.wrk else f"{sum(r.cpu_seconds for r in phase.records) / phase.seconds * 100:.1f}"
        )
        cells = [
            phase.label,
            phase.probes,
            f"{phase.seconds:.2f}",
            str(phase.settled),
            f"{phase.rate:.1f}",
            *_probe_cells(phase, "/healthz"),
            *_probe_cells(phase, "/metrics"),
            *(f"{cpu[name]:.1f}" for name in ("worker", "gunicorn", "moto", "fauxqs")),
            client if phase.probes != "off" else "-",
            f"{cpu['machine']:.0f}",
        ]
        print(" ".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, _COLUMNS, strict=True)))


def summarise(records: list[ProbeRecord], path: str) -> dict[str, Any]:
    mine = [r for r in records if r.path == path]
    latencies = [v for r in mine for v in r.latencies_ms]
    service = [v for r in mine for v in r.service_ms]
    summary: dict[str, Any] = {
        "requests": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "send_to_answer_p99_ms": round(percentile(service, 99), 2),
        "sent_behind_schedule": sum(r.behind for r in mine),
        "reconnects": sum(r.reconnects for r in mine),
        "response_bytes": mine[-1].response_bytes if mine else 0,
    }
    if path == "/healthz":  # the worker's receive-loop heartbeat, as /healthz reported it
        summary["max_heartbeat_age_s"] = max(r.max_heartbeat_age for r in mine)
    return summary


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0912 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--phase-seconds", type=float, default=10.0, help="length of each phase (10)")
    parser.add_argument(
        "--pairs", type=int, default=4, help="pairs of phases in ABBA order: 2 = off, on, on, off (4)"
    )
    parser.add_argument("--warmup-seconds", type=float, default=10.0, help="after /readyz, unmeasured (10)")
    parser.add_argument("--healthz-rate", type=float, default=50.0, help="/healthz requests per second (50)")
    parser.add_argument("--metrics-rate", type=float, default=5.0, help="/metrics requests per second (5)")
    parser.add_argument("--files", type=int, default=100, help="text files uploaded to S3 (100)")
    parser.add_argument(
        "--wrk-seconds", type=float, default=10.0, help="the saturating wrk phase, if wrk is on PATH; 0: skip"
    )
    parser.add_argument("--log-level", choices=("INFO", "WARNING"), default="WARNING", help="filefleet's")
    args = parser.parse_args(argv)
    if args.phase_seconds < 2 or args.pairs < 1 or args.files < 1 or args.warmup_seconds < 2:
        parser.error(
            "--phase-seconds and --warmup-seconds must be at least 2, --pairs and --files at least 1"
        )
    if args.healthz_rate <= 0 or args.metrics_rate <= 0:
        parser.error("the probe rates must be above 0")
    rates = {"/healthz": args.healthz_rate, "/metrics": args.metrics_rate}
    wrk = shutil.which("wrk") if args.wrk_seconds > 0 else None
    wrk_note = (
        "skipped (--wrk-seconds 0)"
        if args.wrk_seconds <= 0
        else "skipped: wrk is not on PATH (Debian: apt-get install wrk)"
        if wrk is None
        else f"{wrk}"
    )

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise SystemExit(143)  # unwinds through the finally blocks that stop everything

    signal.signal(signal.SIGTERM, on_sigterm)
    install_fauxqs()
    from botocore.config import Config

    workdir = Path(tempfile.mkdtemp(prefix="filefleet-health-bench-"))
    log_path = workdir / "run.log"
    phases: list[Phase] = []
    acks = 0
    try:
        with ExitStack() as stack:
            fauxqs = stack.enter_context(running_fauxqs())
            moto = stack.enter_context(running_moto())
            print(f"fauxqs {FAUXQS_VERSION} on {fauxqs}, moto on {moto} (both on 127.0.0.1)", flush=True)
            setup = sqs_client(fauxqs, Config(retries={"mode": "standard"}, read_timeout=10))
            sizes = upload_files(s3_client(moto), args.files)
            queues = make_queues(setup)
            filler = Filler(setup, queues.url, sizes)
            initial = max(4000, int(args.warmup_seconds * 400))  # the start-up and warm-up, on a fast machine
            fill_seconds = filler.send(initial)
            print(f"{args.files} files uploaded; {initial} messages queued ({initial / fill_seconds:.0f}/s)")
            port = free_port()
            env = run_env(
                fauxqs=fauxqs, moto=moto, queues=queues, workdir=workdir, port=port, log_level=args.log_level
            )
            try:
                run = stack.enter_context(running_filefleet(env, log_path))
                ready_after = wait_ready(run, port)
                bench = Bench(setup, queues, run, port)
                bench.procs = find_processes(run.pid)
                print(
                    f"filefleet run ready after {ready_after:.1f} s (worker pid {bench.procs['worker'][0]}, "
                    f"gunicorn pids {bench.procs['gunicorn']}, port {port}); warming up "
                    f"{args.warmup_seconds:g} s",
                    flush=True,
                )
                for path in rates:  # first requests (imports, first connection) belong to the warm-up
                    for _ in range(3):
                        status, body = http_get(port, path)
                        if status != 200:
                            raise BenchmarkFailure(f"{path} answered {status} in the warm-up: {body[:200]!r}")
                warm_start = bench.boundary()
                bench.wait(warm_start.at + args.warmup_seconds)
                warm_end = bench.boundary()
                warm_rate = (warm_start.held - warm_end.held) / (warm_end.at - warm_start.at)
                if warm_rate <= 0:
                    raise BenchmarkFailure("the worker settled nothing in the warm-up")
                planned = len(phase_order(args.pairs)) * args.phase_seconds + (args.wrk_seconds if wrk else 0)
                wanted = math.ceil(warm_rate * (planned + 10) * TOP_UP_MARGIN) + bench.low_water
                top_up = max(0, wanted - warm_end.visible)
                top_up_seconds = filler.send(top_up) if top_up else 0.0
                print(
                    f"warm-up: {warm_rate:.1f} msg/s; queue topped up by {top_up} to ~{wanted} visible "
                    f"({TOP_UP_MARGIN}x the {planned + 10:.0f} s still to run) in {top_up_seconds:.1f} s",
                    flush=True,
                )
                bench.wait(time.perf_counter() + SETTLE_SECONDS)  # the top-up's own load out of phase 1
                boundary = bench.boundary()
                for index, with_probes in enumerate(phase_order(args.pairs), start=1):
                    label = str(index)
                    print(f"phase {label}: probes {'on' if with_probes else 'off'} ...", flush=True)
                    phase = bench.phase(label, boundary, args.phase_seconds, rates if with_probes else None)
                    phases.append(phase)
                    boundary = phase.end
                if wrk is not None:
                    print(f"phase wrk: wrk on /healthz and /metrics, {args.wrk_seconds:g} s ...", flush=True)
                    wrk_phase = bench.wrk_phase(wrk, boundary, args.wrk_seconds)
                    if isinstance(wrk_phase, str):
                        wrk_note = wrk_phase
                    else:
                        phases.append(wrk_phase)
                # Correctness, after the measurement: /metrics, then the drain on SIGTERM, then the index.
                held_before = bench.boundary().held
                status, body = http_get(port, "/metrics")
                held_after = bench.boundary().held
                if status != 200:
                    raise BenchmarkFailure(f"/metrics answered {status} after the phases")
                total = filler.sent
                acks = check_metrics(parse_metrics(body.decode()), total - held_before, total - held_after)
                code = stop_filefleet(run)
                if code != 0:
                    raise BenchmarkFailure(f"filefleet run exited with {code} after SIGTERM, expected 0")
                check_index(workdir / "index.sqlite3", set(sizes))
                dead_letters = sum(queue_depth(setup, queues.dead_letter_url))
                if dead_letters:
                    raise BenchmarkFailure(f"{dead_letters} messages in the DLQ after the drain")
            except BenchmarkFailure:
                print(f"filefleet run's output (tail):\n{tail(log_path)}", file=sys.stderr)
                raise
    except BenchmarkFailure as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    report(args, rates, phases, acks, wrk_note)
    return 0


def report(
    args: argparse.Namespace, rates: dict[str, float], phases: list[Phase], acks: int, wrk_note: str
) -> None:
    measured = [p for p in phases if p.probes in ("off", "on")]
    off = [p.rate for p in measured if p.probes == "off"]
    on = [p.rate for p in measured if p.probes == "on"]
    records = [r for p in measured for r in p.records]
    healthz, metrics = summarise(records, "/healthz"), summarise(records, "/metrics")
    median_on, median_off = statistics.median(on), statistics.median(off)
    ratio = median_on / median_off
    print()
    print_table(phases)
    probe_seconds = sum(p.seconds for p in measured if p.probes == "on")
    client_cpu = sum(r.cpu_seconds for r in records) / probe_seconds * 100
    print(
        "\nmsg/s: messages the worker deleted in the phase (the drop of visible + in flight on fauxqs) over "
        "the seconds between the two readings.\n"
        f"Probes: /healthz {rates['/healthz']:g}/s (hz) and /metrics {rates['/metrics']:g}/s (met), open "
        "loop, one keep-alive connection each; latency in ms from the send (from the missed slot when sent "
        "behind schedule) to the end of the body, nearest rank.\n"
        "CPU from /proc, in % of one core: worker, gunicorn (master and worker), moto, fauxqs, client "
        f"(this script's probe threads); machine: all {os.cpu_count()} cores, other users included.\n"
        f"With probes / without: median {median_on:.1f} / {median_off:.1f} msg/s = {ratio:.3f}. "
        f"/healthz p99 {healthz['p99_ms']:.2f} ms over {healthz['requests']} requests "
        f"({healthz['sent_behind_schedule']} sent behind schedule); /metrics p99 {metrics['p99_ms']:.2f} ms "
        f"over {metrics['requests']} requests ({metrics['sent_behind_schedule']}) of "
        f"{metrics['response_bytes']} bytes. {acks} messages acknowledged in all, no other outcome."
    )
    # Each pair of neighbouring phases (off, on) or (on, off), as a feel for the noise of the ratio.
    pair_ratios = [
        (b.rate / a.rate if a.probes == "off" else a.rate / b.rate)
        for a, b in zip(measured[::2], measured[1::2], strict=True)
    ]
    busy = [p.label for p in measured if p.cpu["machine"] > BUSY_MACHINE_PERCENT]
    print(f"Per pair of neighbouring phases, with / without: {', '.join(f'{r:.3f}' for r in pair_ratios)}.")
    if busy:
        print(
            f"Note: the machine was over {BUSY_MACHINE_PERCENT}% busy in phase(s) {', '.join(busy)}: other "
            "users of it weigh on these figures; compare runs."
        )
    wrk_result: dict[str, Any] | None = None
    wrk_phase = next((p for p in phases if p.probes == "wrk"), None)
    if wrk_phase is not None:
        wrk_ratio = wrk_phase.rate / median_off
        wrk_result = {
            "seconds": round(wrk_phase.seconds, 2),
            "connections_per_endpoint": 2,
            "healthz": wrk_phase.wrk["/healthz"],
            "metrics": wrk_phase.wrk["/metrics"],
            "worker_msg_per_s": round(wrk_phase.rate, 1),
            "worker_throughput_ratio_vs_median_off": round(wrk_ratio, 3),
            "gunicorn_cpu_percent": round(wrk_phase.cpu["gunicorn"], 1),
        }
        hz, met = wrk_phase.wrk["/healthz"], wrk_phase.wrk["/metrics"]
        print(
            "wrk (closed loop, saturating: the worst case, not a target): /healthz "
            f"{hz['requests_per_s']:.0f} req/s, p99 {hz['p99_ms']} ms; /metrics "
            f"{met['requests_per_s']:.0f} req/s, p99 {met['p99_ms']} ms; the worker meanwhile "
            f"{wrk_phase.rate:.1f} msg/s = {wrk_ratio:.3f} of the median no-probe "
            "phase (a later phase: drift not cancelled)."
        )
    else:
        print(f"wrk: {wrk_note}")
    result: dict[str, Any] = {
        "healthz_p99_ms": healthz["p99_ms"],
        "metrics_p99_ms": metrics["p99_ms"],
        "worker_throughput_ratio_with_probes": round(ratio, 3),
        "healthz_rate_per_s": rates["/healthz"],
        "metrics_rate_per_s": rates["/metrics"],
        "healthz": healthz,
        "metrics": metrics,
        "msg_per_s_without_probes": [round(r, 1) for r in off],
        "msg_per_s_with_probes": [round(r, 1) for r in on],
        "phase_order": [p.probes for p in measured],
        "phase_seconds": args.phase_seconds,
        "probe_client_cpu_percent": round(client_cpu, 1),
        "gunicorn_cpu_percent_with_probes": round(
            statistics.median(p.cpu["gunicorn"] for p in measured if p.probes == "on"), 1
        ),
        "pair_ratios": [round(r, 3) for r in pair_ratios],
        "machine_busy_percent": [round(p.cpu["machine"]) for p in measured],
        "messages_acknowledged": acks,
        "worker_concurrency": CONCURRENCY,
        "files": args.files,
        "log_level": args.log_level,
        "fauxqs": FAUXQS_VERSION,
        "wrk": wrk_result if wrk_result is not None else wrk_note,
    }
    met = {name: result[name] < target for name, target in TARGETS.items()}
    met["worker_throughput_ratio_with_probes"] = ratio >= TARGET_RATIO
    print_result(result, met)


if __name__ == "__main__":
    run(main, stopped="filefleet run, moto and fauxqs stopped")
