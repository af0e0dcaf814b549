"""Every metric in one module; the exposition must pass promtool's own lint."""

from __future__ import annotations

import shutil
import subprocess

from prometheus_client import REGISTRY

from app import metrics
from app.stats import RunStats
from tests.support.components import component_missing


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    result = REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if result is None else result


def test_the_run_tally_feeds_the_metrics() -> None:
    before = {
        "ack": _sample("filefleet_messages_total", {"outcome": "ack"}),
        "files": _sample("filefleet_files_total", {"type": "image/jpeg", "result": "processed"}),
        "drains": _sample("filefleet_drains_total", {"cause": "spot"}),
        "dead": _sample("filefleet_dead_letters_total", {"reason": "CorruptImage"}),
        "ext": _sample("filefleet_visibility_extensions_total"),
    }
    stats = RunStats()
    stats.add("messages.ack", 3)
    stats.add("by_type|image/jpeg|processed", 2)
    stats.add("drains.spot")
    stats.add("dead_letter_reason.CorruptImage")
    stats.add("visibility.extended", 4)
    stats.add("sqs.delete", 3)  # a count the metrics do not carry: ignored, not an error
    assert _sample("filefleet_messages_total", {"outcome": "ack"}) == before["ack"] + 3
    assert (
        _sample("filefleet_files_total", {"type": "image/jpeg", "result": "processed"}) == before["files"] + 2
    )
    assert _sample("filefleet_drains_total", {"cause": "spot"}) == before["drains"] + 1
    assert _sample("filefleet_dead_letters_total", {"reason": "CorruptImage"}) == before["dead"] + 1
    assert _sample("filefleet_visibility_extensions_total") == before["ext"] + 4


def test_the_exposition_passes_promtool_check_metrics() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        component_missing("promtool (Debian package prometheus) is not installed")
    stats = RunStats()
    for name in ("messages.ack", "messages.received", "ignored.s3:TestEvent", "by_type|text/plain|processed"):
        stats.add(name)
    metrics.STAGE_DURATION.labels("fetch").observe(0.2)
    metrics.EMBEDDING_CALLS.labels("amazon.titan-embed-image-v1", "ok").inc()
    metrics.set_worker_state("running")
    result = subprocess.run(
        [str(promtool), "check", "metrics"],
        input=metrics.exposition(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
