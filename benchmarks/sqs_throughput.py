"""SQS throughput: filefleet's Worker, the guide's loop and a bare batched loop, side by side on fauxqs.

Claims measured (each as a ratio of two figures taken in the same run, on the same fauxqs process):

- ``ratio_io_50ms``: with a handler that waits 50 ms per file (I/O bound, like an S3 GET or a Bedrock call),
  filefleet (WORKER_CONCURRENCY=16, batched receive and delete) drains a queue at least 10 times as fast as
  the guide's loop (one message per receive, processed in turn, one DeleteMessage each). Target >= 10.
- ``ratio_noop_vs_ceiling``: with a handler that does nothing, filefleet's own overhead (threads, parsing,
  settling, logging) keeps at least half the speed of a bare boto3 receive(10) + DeleteMessageBatch loop
  that does no processing at all. Target >= 0.5.
- ``api_calls_per_message_filefleet``: SQS calls per message, so per-request cost, from the 50 ms run.
  Target <= 0.25 (the guide's loop makes 2).

"seconds" is the time from the start of a drain to the return of the delete call that acknowledged the last
message; the idle tail (the empty receive that tells a loop the queue is empty, and filefleet's
``until_idle`` window and shutdown) is shown apart as "wall s" and is not in msg/s. The guide's loop with the
50 ms handler runs on a subset (``--seed-messages``, 300 by default; 2000 would take over 100 s): compare
msg/s, not seconds. Both the guide's loop and filefleet log at INFO per message, as deployed, into /dev/null
(``--log-level WARNING`` leaves that cost out).

Run: ``.venv/bin/python benchmarks/sqs_throughput.py [--messages N]``. It installs fauxqs (pinned in
benchmarks/package-lock.json) into benchmarks/.cache with ``npm ci`` on first use, starts it on a free port
of 127.0.0.1, and stops it at the end. The last line printed is ``RESULT {json}``. Exit status 1: some
message was not processed exactly once, or a queue was not empty afterwards.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from harness import (
    BENCH_DIR,
    CACHE_DIR,
    BenchmarkFailure,
    free_port,
    print_result,
    run,
    stop_process,
    tail,
)

FAUXQS_VERSION = "1.9.2"  # 2.x needs Node >= 22.5 (node:sqlite); this machine has Node 20
FAUXQS_APP = CACHE_DIR / "node_modules" / "fauxqs" / "dist" / "app.js"
FAUXQS_LOG = CACHE_DIR / "fauxqs.log"
REGION = "us-east-1"
BUCKET = "bench-bucket"
WORK_SECONDS = 0.05
CONCURRENCY = 16
UNTIL_IDLE = 0.5  # filefleet's idle window; with it the worker long-polls 1 s, like the other loops
MAX_RECEIVE_COUNT = 5
VISIBILITY_TIMEOUT = 300  # the guide's: long enough that nothing is delivered twice by expiry here
TARGETS = {"ratio_io_50ms": 10.0, "ratio_noop_vs_ceiling": 0.5}
TARGET_API_CALLS_PER_MESSAGE = 0.25

# fauxqs's CLI (dist/cli.js) always listens on 0.0.0.0 (1.9.2 and 2.4.1 alike: FAUXQS_HOST only names the
# host in queue URLs). Its documented programmatic API, buildApp, lets us listen on 127.0.0.1 instead. The
# server also exits when its stdin closes, so it cannot outlive this script even if the script is killed.
_LAUNCHER = """
const [appUrl, port] = process.argv.slice(-2);
const { buildApp } = await import(appUrl);
const app = buildApp({ logger: false });
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  app.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
await app.listen({ port: Number(port), host: "127.0.0.1" });
console.log(`fauxqs listening on 127.0.0.1:${port}`);
"""


# -- fauxqs ----------------------------------------------------------------------------------------------


def install_fauxqs() -> None:
    """``npm ci`` of benchmarks/package-lock.json into benchmarks/.cache, unless that exact tree is there."""
    lock = BENCH_DIR / "package-lock.json"
    installed_lock = CACHE_DIR / "package-lock.json"
    installed_manifest = CACHE_DIR / "node_modules" / "fauxqs" / "package.json"
    if (
        installed_manifest.exists()
        and json.loads(installed_manifest.read_text()).get("version") == FAUXQS_VERSION
        and installed_lock.exists()
        and installed_lock.read_bytes() == lock.read_bytes()
    ):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not on PATH: install Node.js >= 20 and npm to run this benchmark")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BENCH_DIR / "package.json", CACHE_DIR / "package.json")
    shutil.copyfile(lock, installed_lock)
    print(f"installing fauxqs {FAUXQS_VERSION} into {CACHE_DIR} (npm ci) ...", flush=True)
    subprocess.run(
        [npm, "ci", "--prefix", str(CACHE_DIR), "--no-audit", "--no-fund", "--loglevel=error"],
        check=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    version = json.loads(installed_manifest.read_text()).get("version")
    if version != FAUXQS_VERSION:
        raise SystemExit(
            f"npm installed fauxqs {version}, expected {FAUXQS_VERSION}: check package-lock.json"
        )


@contextmanager
def running_fauxqs(startup_timeout: float = 20.0) -> Iterator[str]:
    """fauxqs on a free port of 127.0.0.1, stopped on the way out whatever happens; yields its endpoint."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not on PATH: install Node.js >= 20 to run this benchmark")
    proc: subprocess.Popen[bytes] | None = None
    with FAUXQS_LOG.open("wb") as log_file:
        try:
            for _attempt in range(3):  # the free port may be taken between the probe and the listen
                port = free_port()
                proc = subprocess.Popen(
                    [node, "--input-type=module", "-e", _LAUNCHER, FAUXQS_APP.as_uri(), str(port)],
                    stdin=subprocess.PIPE,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=CACHE_DIR,
                    start_new_session=True,  # a Ctrl-C reaches us, and we stop it in order
                )
                endpoint = f"http://127.0.0.1:{port}"
                if _wait_until_healthy(proc, endpoint, startup_timeout):
                    break
                _stop(proc)
                proc = None
            else:
                raise SystemExit(f"fauxqs did not start; its output:\n{tail(FAUXQS_LOG)}")
            yield endpoint
        finally:
            if proc is not None:
                _stop(proc)


def _wait_until_healthy(proc: subprocess.Popen[bytes], endpoint: str, timeout: float) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy for 127.0.0.1
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with opener.open(f"{endpoint}/health", timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()  # the launcher exits when its stdin closes
    stop_process(proc, timeout=5)


# -- SQS plumbing ----------------------------------------------------------------------------------------


def sqs_client(endpoint: str, config: Any = None) -> Any:
    """A fresh client with dummy credentials; never built at import."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION
    )
    return session.client("sqs", endpoint_url=endpoint, config=config)


class ApiCounter:
    """Counts SQS API calls and HTTP attempts per operation while armed, and notes when the last ack returned.

    Registered on the client's event system, so it sees every call whatever code makes it.
    """

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()  # HTTP requests, botocore's retries included
        self.last_ack: float | None = None
        self._armed = False
        self._lock = threading.Lock()
        events = client.meta.events
        events.register("before-call.sqs", self._before_call)
        events.register("before-send.sqs", self._before_send)
        events.register("after-call.sqs.DeleteMessage", self._after_delete)
        events.register("after-call.sqs.DeleteMessageBatch", self._after_delete)

    def arm(self) -> None:
        with self._lock:
            self.calls.clear()
            self.attempts.clear()
            self.last_ack = None
            self._armed = True

    def disarm(self) -> None:
        with self._lock:
            self._armed = False

    def _before_call(self, event_name: str, **_: Any) -> None:
        with self._lock:
            if self._armed:
                self.calls[event_name.rsplit(".", 1)[-1]] += 1

    def _before_send(self, event_name: str, **_: Any) -> None:
        with self._lock:
            if self._armed:
                self.attempts[event_name.rsplit(".", 1)[-1]] += 1

    def _after_delete(self, http_response: Any, parsed: Any, **_: Any) -> None:
        if getattr(http_response, "status_code", 0) != 200:
            return
        if "Successful" in parsed and not parsed["Successful"]:
            return
        now = time.perf_counter()
        with self._lock:
            if self._armed:
                self.last_ack = now


def s3_notification(index: int) -> str:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": f"f/{index}.jpg", "size": 123}},
    }
    return json.dumps({"Records": [record]}, separators=(",", ":"))


@dataclass
class Queues:
    url: str
    dead_letter_url: str
    expected_keys: set[str]
    message_ids: set[str]


def make_queues(setup: Any, name: str, messages: int) -> Queues:
    """A fresh queue with a DLQ behind a RedrivePolicy, filled with ``messages`` S3 notifications."""
    dead_letter_url = setup.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = setup.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = {"deadLetterTargetArn": arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    url = setup.create_queue(
        QueueName=name,
        Attributes={"RedrivePolicy": json.dumps(policy), "VisibilityTimeout": str(VISIBILITY_TIMEOUT)},
    )["QueueUrl"]
    message_ids: set[str] = set()
    for start in range(0, messages, 10):
        entries = [
            {"Id": str(i), "MessageBody": s3_notification(i)} for i in range(start, min(start + 10, messages))
        ]
        response = setup.send_message_batch(QueueUrl=url, Entries=entries)
        if response.get("Failed"):
            raise BenchmarkFailure(f"{name}: SendMessageBatch refused entries: {response['Failed']}")
        message_ids.update(entry["MessageId"] for entry in response["Successful"])
    depth = queue_depth(setup, url)
    if depth != (messages, 0) or len(message_ids) != messages:
        raise BenchmarkFailure(f"{name}: filled {messages} messages but the queue holds {depth}")
    return Queues(url, dead_letter_url, {f"f/{i}.jpg" for i in range(messages)}, message_ids)


def queue_depth(setup: Any, url: str) -> tuple[int, int]:
    attributes = setup.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def check_drained(setup: Any, name: str, queues: Queues, seen: Counter[str], expected: set[str]) -> None:
    """Every expected item seen exactly once, nothing else, and the queue and its DLQ empty."""
    problems = []
    missing = expected - seen.keys()
    extra = seen.keys() - expected
    twice = sorted(item for item, count in seen.items() if count > 1)
    if missing:
        problems.append(f"{len(missing)} never processed, e.g. {sorted(missing)[:3]}")
    if extra:
        problems.append(f"{len(extra)} unexpected, e.g. {sorted(extra)[:3]}")
    if twice:
        problems.append(f"{len(twice)} processed more than once, e.g. {twice[:3]}")
    for label, url in (("queue", queues.url), ("DLQ", queues.dead_letter_url)):
        visible, in_flight = queue_depth(setup, url)
        if visible or in_flight:
            problems.append(f"{label} not empty afterwards: {visible} visible, {in_flight} in flight")
    if problems:
        raise BenchmarkFailure(f"{name}: " + "; ".join(problems))
    setup.delete_queue(QueueUrl=queues.url)
    setup.delete_queue(QueueUrl=queues.dead_letter_url)


class Tally:
    """What the handlers processed, by key, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.keys: Counter[str] = Counter()

    def record(self, key: str) -> None:
        with self._lock:
            self.keys[key] += 1

    @property
    def calls(self) -> int:
        with self._lock:
            return sum(self.keys.values())


# -- the scenarios ---------------------------------------------------------------------------------------


@dataclass
class Measurement:
    scenario: str
    handler: str
    messages: int
    seconds: float  # start of the drain → return of the delete that acknowledged the last message
    wall: float  # start → the loop returned, idle tail included
    calls: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def calls_per_message(self) -> float:
        return sum(self.calls.values()) / self.messages


def _timed(counter: ApiCounter, drain: Callable[[], None]) -> tuple[float, float]:
    counter.arm()
    start = time.perf_counter()
    try:
        drain()
    finally:
        end = time.perf_counter()
        counter.disarm()
    if counter.last_ack is None:
        raise BenchmarkFailure("no message was acknowledged")
    return counter.last_ack - start, end - start


def _deadline_for(messages: int, work_seconds: float) -> float:
    return time.monotonic() + 60 + messages * (work_seconds + 0.01) * 2


def guide_logger() -> logging.Logger:
    """The guide's ``basicConfig`` format and level, into /dev/null, apart from filefleet's root logger."""
    logger = logging.getLogger("bench.guide_worker")
    if not logger.handlers:
        handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
        handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def run_seed(endpoint: str, setup: Any, messages: int, work_seconds: float) -> Measurement:
    """The guide's worker.py loop, faithfully, except that it stops at the first empty receive.

    Differences from the guide, all in the loop's favour or neutral: WaitTimeSeconds=1 instead of 20 (only
    the tail waits); the key is read from the S3 notification (the guide reads ``body['s3Key']``, which these
    bodies do not have); no S3/Bedrock/OpenSearch calls, the handler sleeps instead; an exception ends the
    benchmark instead of being logged and retried after 5 s.
    """
    name = f"seed-{uuid.uuid4().hex[:8]}"
    queues = make_queues(setup, name, messages)
    sqs = sqs_client(endpoint)  # the guide's boto3.client('sqs', region_name=...): default config
    counter = ApiCounter(sqs)
    tally = Tally()
    logger = guide_logger()
    deadline = _deadline_for(messages, work_seconds)

    def process_message(message: dict[str, Any]) -> bool:
        try:
            body = json.loads(message["Body"])
            s3_key = body["Records"][0]["s3"]["object"]["key"]
            logger.info("Processing file: %s", s3_key)
            if work_seconds:
                time.sleep(work_seconds)
            tally.record(s3_key)
            logger.info("Successfully processed: %s", s3_key)
            return True
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            logger.error("Error processing message: %s", exc)
            return False

    def drain() -> None:
        while True:
            if time.monotonic() > deadline:
                raise BenchmarkFailure(f"{name}: not drained before its deadline")
            response = sqs.receive_message(
                QueueUrl=queues.url,
                MaxNumberOfMessages=1,
                WaitTimeSeconds=1,
                VisibilityTimeout=VISIBILITY_TIMEOUT,
            )
            batch = response.get("Messages", [])
            if not batch:
                return  # the guide `continue`s forever; the benchmark ends at the first empty receive
            for message in batch:
                if process_message(message):
                    sqs.delete_message(QueueUrl=queues.url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    logger.warning("Message processing failed, will retry")

    seconds, wall = _timed(counter, drain)
    check_drained(setup, name, queues, tally.keys, queues.expected_keys)
    return Measurement(
        "seed (guide loop)",
        _handler_label(work_seconds),
        messages,
        seconds,
        wall,
        counter.calls,
        counter.attempts,
    )


class BenchHandler:
    """A FileHandler: waits ``work_seconds`` (an I/O-bound file) or nothing, then reports it processed."""

    def __init__(self, work_seconds: float, tally: Tally) -> None:
        self._work_seconds = work_seconds
        self._tally = tally

    def handle(self, event: Any) -> str:
        if self._work_seconds:
            time.sleep(self._work_seconds)
        self._tally.record(event.key)
        return "processed"


class _Interrupts:
    """While a Worker runs, Ctrl-C or SIGTERM asks it to drain (as `filefleet worker` does), then we stop."""

    def __init__(self) -> None:
        self.received: int | None = None

    @contextmanager
    def draining(self, worker: Any) -> Iterator[None]:
        def on_signal(signum: int, _frame: Any) -> None:
            self.received = signum
            worker.drain_signal.request(f"signal:{signal.Signals(signum).name}")

        previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if self.received == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received == signal.SIGTERM:
            raise SystemExit(143)


def run_filefleet(endpoint: str, setup: Any, messages: int, work_seconds: float) -> Measurement:
    """filefleet's real Worker, wired as `filefleet worker --until-idle` wires it, with a stand-in handler."""
    from app.aws import client_config
    from app.config import QueueSettings
    from app.consumer.queue import SqsQueue
    from app.worker import Worker

    name = f"filefleet-{uuid.uuid4().hex[:8]}"
    queues = make_queues(setup, name, messages)
    # The Worker takes the queue section of filefleet's settings, read as `filefleet worker` reads it.
    settings = QueueSettings.from_env(
        {
            "SQS_QUEUE_URL": queues.url,
            "S3_BUCKET": BUCKET,
            "WORKER_CONCURRENCY": str(CONCURRENCY),
            "WAIT_TIME_SECONDS": "1",
            "VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        }
    )
    sqs = sqs_client(endpoint, client_config(pool_size=settings.worker_concurrency + 4))  # as AwsClients
    counter = ApiCounter(sqs)
    source = SqsQueue(sqs, settings.queue_url)
    route = source.dead_letter_route()  # the CLI's start-up check: not part of the drain, not counted
    if route is None:
        raise BenchmarkFailure(f"{name}: the queue's RedrivePolicy was not found")
    tally = Tally()
    worker = Worker(
        settings,
        source=source,
        dead_letter=SqsQueue(sqs, route.url),
        max_receive_count=route.max_receive_count or MAX_RECEIVE_COUNT,
        handler=BenchHandler(work_seconds, tally),
    )
    timeout = max(0.0, _deadline_for(messages, work_seconds) - time.monotonic())
    watchdog = threading.Timer(timeout, worker.drain_signal.request, args=("benchmark-timeout",))
    watchdog.daemon = True
    results = []

    def drain() -> None:
        with _Interrupts().draining(worker):
            results.append(worker.run(until_idle=UNTIL_IDLE))

    watchdog.start()
    try:
        seconds, wall = _timed(counter, drain)
    finally:
        watchdog.cancel()
    result = results[0]
    stats = result.stats
    problems = []
    if result.cause != "idle" or result.exit_code != 0:
        problems.append(f"run ended with cause={result.cause} exit={result.exit_code} fatal={result.fatal}")
    if stats.get("messages.ack", 0) != messages or stats.get("files.processed", 0) != messages:
        problems.append(f"{stats.get('messages.ack', 0)} acks for {messages} messages")
    unexpected = {
        k: v
        for k, v in stats.items()
        if v
        and (
            k.split(".")[0] in ("settle", "dead_letter", "visibility")
            or k in ("receive.errors", "messages.retry", "messages.dead_letter", "messages.release")
        )
    }
    if unexpected:
        problems.append(f"unexpected outcomes: {unexpected}")
    if problems:
        raise BenchmarkFailure(f"{name}: " + "; ".join(problems))
    check_drained(setup, name, queues, tally.keys, queues.expected_keys)
    return Measurement(
        "filefleet Worker",
        _handler_label(work_seconds),
        messages,
        seconds,
        wall,
        counter.calls,
        counter.attempts,
        note=f"concurrency {CONCURRENCY}, until_idle {UNTIL_IDLE} s",
    )


def run_ceiling(endpoint: str, setup: Any, messages: int) -> Measurement:
    """The most a single sequential client gets: receive(10) + DeleteMessageBatch, no processing."""
    name = f"ceiling-{uuid.uuid4().hex[:8]}"
    queues = make_queues(setup, name, messages)
    sqs = sqs_client(endpoint)
    counter = ApiCounter(sqs)
    seen: Counter[str] = Counter()
    deadline = _deadline_for(messages, 0.0)

    def drain() -> None:
        while True:
            if time.monotonic() > deadline:
                raise BenchmarkFailure(f"{name}: not drained before its deadline")
            batch = sqs.receive_message(QueueUrl=queues.url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
            if not batch:
                return
            response = sqs.delete_message_batch(
                QueueUrl=queues.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
            if response.get("Failed"):
                raise BenchmarkFailure(f"{name}: DeleteMessageBatch refused entries: {response['Failed']}")
            seen.update(m["MessageId"] for m in batch)

    seconds, wall = _timed(counter, drain)
    check_drained(setup, name, queues, seen, queues.message_ids)
    return Measurement(
        "ceiling (bare boto3)", "none", messages, seconds, wall, counter.calls, counter.attempts
    )


def _handler_label(work_seconds: float) -> str:
    return f"sleep {work_seconds * 1000:g} ms" if work_seconds else "no-op"


# -- report ----------------------------------------------------------------------------------------------


def print_table(rows: list[Measurement]) -> None:
    header = f"{'scenario':<22} {'handler':<12} {'messages':>8} {'seconds':>8} {'wall s':>7} {'msg/s':>9} "
    header += f"{'api calls/msg':>13}  calls by operation"
    print(header)
    print("-" * len(header))
    for row in rows:
        by_operation = ", ".join(f"{op} {n}" for op, n in sorted(row.calls.items()))
        retries = sum(row.attempts.values()) - sum(row.calls.values())
        if retries:
            by_operation += f" (+{retries} HTTP retries)"
        print(
            f"{row.scenario:<22} {row.handler:<12} {row.messages:>8} {row.seconds:>8.2f} {row.wall:>7.2f} "
            f"{row.rate:>9.1f} {row.calls_per_message:>13.3f}  {by_operation}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per scenario (default 2000)")
    parser.add_argument(
        "--seed-messages",
        type=int,
        default=300,
        help="messages for the guide's loop with the 50 ms handler (default 300; capped at --messages)",
    )
    parser.add_argument(
        "--log-level",
        choices=("INFO", "WARNING"),
        default="INFO",
        help="log level of filefleet and the guide's loop, both into /dev/null (default INFO, as deployed)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of the no-op pair (ceiling, filefleet no-op); the median is reported (default 3)",
    )
    args = parser.parse_args(argv)
    if args.messages < 10 or args.seed_messages < 10:
        parser.error("--messages and --seed-messages must be at least 10")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    seed_io_messages = min(args.seed_messages, args.messages)

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise SystemExit(143)  # unwinds through the finally blocks that stop fauxqs

    signal.signal(signal.SIGTERM, on_sigterm)
    install_fauxqs()

    from botocore.config import Config

    from app.logs import configure_logging

    # filefleet's JSON lines and the guide's text lines, at the level they run with, unprinted. The stream
    # stays open for the life of the process: worker threads may still log while an interrupt unwinds.
    configure_logging(args.log_level, stream=open(os.devnull, "w"))  # noqa: SIM115
    guide_logger().setLevel(args.log_level)
    with running_fauxqs() as endpoint:
        print(f"fauxqs {FAUXQS_VERSION} on {endpoint} (bound to 127.0.0.1 only)", flush=True)
        setup = sqs_client(endpoint, Config(retries={"mode": "standard"}, read_timeout=10))
        try:
            # Warm-up, not reported: Node's JIT and the first connections.
            run_ceiling(endpoint, setup, min(500, args.messages))
            run_seed(endpoint, setup, 50, 0.0)
            noop_pairs = []
            # Each claim's pair runs back to back, to share whatever the noisy machine is doing. The
            # no-op pair is short and the noisiest: it runs --rounds times, in alternating order, and
            # the round with the median ratio is reported.
            for round_index in range(args.rounds):
                pair = {}
                order = ["ceiling", "filefleet"] if round_index % 2 == 0 else ["filefleet", "ceiling"]
                for which in order:
                    print(f"running no-op pair, round {round_index + 1}: {which} ...", flush=True)
                    pair[which] = (
                        run_ceiling(endpoint, setup, args.messages)
                        if which == "ceiling"
                        else run_filefleet(endpoint, setup, args.messages, 0.0)
                    )
                noop_pairs.append((pair["ceiling"], pair["filefleet"]))
            print("running seed no-op ...", flush=True)
            seed_noop = run_seed(endpoint, setup, args.messages, 0.0)
            print("running filefleet 50 ms ...", flush=True)
            ff_io = run_filefleet(endpoint, setup, args.messages, WORK_SECONDS)
            print(f"running seed 50 ms ({seed_io_messages} messages) ...", flush=True)
            seed_io = run_seed(endpoint, setup, seed_io_messages, WORK_SECONDS)
        except BenchmarkFailure as exc:
            print(f"FAIL {exc}", file=sys.stderr)
            return 1
    round_ratios = [f.rate / c.rate for c, f in noop_pairs]
    ceiling, ff_noop = sorted(noop_pairs, key=lambda pair: pair[1].rate / pair[0].rate)[
        (len(noop_pairs) - 1) // 2
    ]
    print()
    print_table([ceiling, ff_noop, seed_noop, ff_io, seed_io])
    print(
        f"\nseconds = start of the drain to the last acknowledging delete; wall s adds the idle tail. "
        f"The guide's loop with the 50 ms handler ran {seed_io.messages} messages, the rest "
        f"{args.messages}: compare msg/s. filefleet: {ff_io.note}. No-op pair: median of "
        f"{len(noop_pairs)} rounds, filefleet/ceiling per round "
        + ", ".join(f"{ratio:.3f}" for ratio in round_ratios)
        + "."
    )
    result: dict[str, Any] = {
        "ratio_io_50ms": round(ff_io.rate / seed_io.rate, 2),
        "ratio_noop_vs_ceiling": round(ff_noop.rate / ceiling.rate, 3),
        "api_calls_per_message_seed": round(seed_io.calls_per_message, 3),
        "api_calls_per_message_filefleet": round(ff_io.calls_per_message, 3),
        "msg_per_s_seed_50ms": round(seed_io.rate, 1),
        "msg_per_s_seed_noop": round(seed_noop.rate, 1),
        "msg_per_s_filefleet_50ms": round(ff_io.rate, 1),
        "msg_per_s_filefleet_noop": round(ff_noop.rate, 1),
        "msg_per_s_ceiling": round(ceiling.rate, 1),
        "ratio_noop_vs_ceiling_rounds": [round(ratio, 3) for ratio in round_ratios],
        "messages": args.messages,
        "seed_50ms_messages": seed_io.messages,
        "fauxqs": FAUXQS_VERSION,
        "log_level": args.log_level,
    }
    met = {name: result[name] >= target for name, target in TARGETS.items()}
    met["api_calls_per_message_filefleet"] = (
        result["api_calls_per_message_filefleet"] <= TARGET_API_CALLS_PER_MESSAGE
    )
    print_result(result, met)
    return 0


if __name__ == "__main__":
    run(main, stopped="fauxqs stopped")
