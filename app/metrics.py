"""Every Prometheus metric of filefleet, in one place: names in base units, counters ending in _total.

`filefleet run` serves them from gunicorn while the worker counts in its own process, so prometheus-client
runs in multiprocess mode there (PROMETHEUS_MULTIPROC_DIR, set by `run` for both processes before either
imports this module). Most counts arrive through :func:`record`, which maps the worker's run tally
(app.stats.RunStats) onto these metrics, so nothing is counted twice by hand.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import REGISTRY as _DEFAULT_REGISTRY
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

disable_created_metrics()  # *_created series double the output for no scraper we serve

_STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
WORKER_STATES = ("starting", "running", "draining", "stopped")

MESSAGES = Counter("filefleet_messages", "SQS messages settled, by outcome", ["outcome"])
MESSAGES_RECEIVED = Counter("filefleet_messages_received", "SQS messages received")
MESSAGE_DURATION = Histogram(
    "filefleet_message_duration_seconds", "From receive to settlement, per message", buckets=_STAGE_BUCKETS
)
MESSAGES_IN_FLIGHT = Gauge(
    "filefleet_messages_in_flight",
    "Messages held by the worker (running or waiting)",
    multiprocess_mode="livesum",
)
EVENTS_IGNORED = Counter(
    "filefleet_events_ignored", "Test notifications and content-neutral S3 events", ["kind"]
)
FILES = Counter(
    "filefleet_files", "File events handled, by sniffed content type and result", ["type", "result"]
)
STAGE_DURATION = Histogram(
    "filefleet_stage_duration_seconds", "Time per pipeline stage", ["stage"], buckets=_STAGE_BUCKETS
)
VISIBILITY_EXTENSIONS = Counter(
    "filefleet_visibility_extensions", "Visibility timeouts extended by the heartbeat"
)
VISIBILITY_LOST = Counter(
    "filefleet_visibility_lost", "Messages whose receipt handle expired while in flight"
)
DEAD_LETTERS = Counter(
    "filefleet_dead_letters", "Messages sent to the dead-letter queue, by error class", ["reason"]
)
SETTLE_FAILURES = Counter("filefleet_settle_failures", "SQS settlement calls that failed for good", ["kind"])
RECEIVE_ERRORS = Counter("filefleet_receive_errors", "ReceiveMessage calls that failed")
EMBEDDING_CALLS = Counter(
    "filefleet_embedding_calls", "Embedding model calls, by model and outcome", ["model", "outcome"]
)
EMBEDDING_THROTTLES = Counter(
    "filefleet_embedding_throttles", "Embedding calls refused for throttling", ["model"]
)
DRAINS = Counter(
    "filefleet_drains", "Drains, by cause (signal, spot, rebalance, lifecycle, idle, fatal)", ["cause"]
)
LIFECYCLE_EVENTS = Counter("filefleet_lifecycle_events", "Lifecycle notices seen", ["event"])
WORKER_STATE = Gauge(
    "filefleet_worker_state",
    "1 for the worker's current state, 0 for the others",
    ["state"],
    multiprocess_mode="livemax",
)

# RunStats name prefix → what to do with (rest of the name, amount).
_RECORDERS: dict[str, Callable[[str, int], None]] = {
    "messages.received": lambda _, n: MESSAGES_RECEIVED.inc(n),
    "messages.": lambda outcome, n: MESSAGES.labels(outcome).inc(n),
    "ignored.": lambda kind, n: EVENTS_IGNORED.labels(kind).inc(n),
    "by_type|": lambda rest, n: FILES.labels(*rest.split("|", 1)).inc(n),
    "visibility.extended": lambda _, n: VISIBILITY_EXTENSIONS.inc(n),
    "visibility.lost": lambda _, n: VISIBILITY_LOST.inc(n),
    "dead_letter_reason.": lambda reason, n: DEAD_LETTERS.labels(reason).inc(n),
    "settle.": lambda kind, n: SETTLE_FAILURES.labels(kind).inc(n),
    "dead_letter.refused": lambda _, n: SETTLE_FAILURES.labels("dead_letter_refused").inc(n),
    "receive.errors": lambda _, n: RECEIVE_ERRORS.inc(n),
    "drains.": lambda cause, n: DRAINS.labels(cause).inc(n),
    "lifecycle.": lambda event, n: LIFECYCLE_EVENTS.labels(event).inc(n),
}


def record(name: str, amount: int) -> None:
    """Export one RunStats count, if it is one the metrics carry (longest matching prefix wins)."""
    for prefix, recorder in _RECORDERS.items():
        if name == prefix or (prefix.endswith((".", "|")) and name.startswith(prefix)):
            if amount:
                recorder(name[len(prefix) :], amount)
            return


def set_worker_state(state: str) -> None:
    for candidate in WORKER_STATES:
        WORKER_STATE.labels(candidate).set(1 if candidate == state else 0)


def exposition() -> bytes:
    """The text format for /metrics: every process's metrics in multiprocess mode, else this process's."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(_DEFAULT_REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)


def forget_process(pid: int) -> None:
    """Drop a finished process's live gauges (in-flight, state) from the multiprocess files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
