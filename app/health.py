"""/healthz, /readyz and /metrics: the small Flask app `filefleet run` serves with gunicorn beside the worker.

- /healthz is liveness: 200 while the worker's receive loop has gone round within HEALTH_STALE_SECONDS (a
  draining worker is alive: it must not be restarted mid-drain), 503 when the loop is stuck or stopped.
- /readyz is readiness: 200 only when the worker is running and both the queue and the sink answer; the JSON
  body gives each check's state and latency. The checks call AWS, so their results are cached a few seconds:
  a probe storm never becomes an SQS or OpenSearch storm.
- /metrics is the Prometheus text format, from every process of the container.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, jsonify

from app import metrics
from app.state import STATE_FILE_ENV, StateFile

CHECK_CACHE_SECONDS = 5.0  # a healthy answer is reused this long
FAILED_CHECK_CACHE_SECONDS = 0.5  # a failure only this long: readiness must follow recovery at once
CHECK_TIMEOUT_SECONDS = 2


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: float
    error: str | None = None
    checked_at: float = 0.0

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": self.ok, "latency_ms": round(self.latency_ms, 1)}
        if self.error:
            body["error"] = self.error
        return body


class CachedCheck:
    """Runs ``probe`` at most once per ``ttl`` (``failed_ttl`` after a failure); requests share one run."""

    def __init__(
        self,
        probe: Callable[[], object],
        *,
        ttl: float = CHECK_CACHE_SECONDS,
        failed_ttl: float = FAILED_CHECK_CACHE_SECONDS,
    ) -> None:
        self._probe = probe  # raises when the component does not answer; its return value is ignored
        self._ttl = ttl
        self._failed_ttl = failed_ttl
        self._lock = threading.Lock()
        self._last: CheckResult | None = None

    def result(self) -> CheckResult:
        with self._lock:
            last = self._last
            if last is not None and time.monotonic() - last.checked_at < (
                self._ttl if last.ok else self._failed_ttl
            ):
                return last
            started = time.monotonic()
            try:
                self._probe()
                error = None
            except Exception as exc:  # noqa: BLE001 - any failure is the answer "not ready", with its text
                error = f"{type(exc).__name__}: {exc}"[:300]
            now = time.monotonic()
            self._last = CheckResult(error is None, (now - started) * 1000, error, now)
            return self._last


def create_app(*, state_file: StateFile, stale_seconds: float, checks: dict[str, CachedCheck]) -> Flask:
    app = Flask("filefleet")

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        state = state_file.read()
        if state is None:
            return jsonify(status="unknown", reason="the worker has not published its state yet"), 503
        age = state.age()
        alive = state.state != "stopped" and age <= stale_seconds
        body = {
            "status": "ok" if alive else "unhealthy",
            "state": state.state,
            "heartbeat_age_s": round(age, 1),
        }
        if not alive:
            body["reason"] = (
                f"the worker stopped ({state.cause})"
                if state.state == "stopped"
                else "the receive loop is stuck"
            )
        return jsonify(body), 200 if alive else 503

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        state = state_file.read()
        fresh = state is not None and state.age() <= stale_seconds
        worker: dict[str, Any] = {
            "ok": fresh and state is not None and state.state == "running",
            "state": state.state if state else "unknown",
        }
        if state is not None and state.cause:
            worker["cause"] = state.cause
        results = {"worker": worker, **{name: check.result().as_json() for name, check in checks.items()}}
        ready = all(result["ok"] for result in results.values())
        return jsonify(ready=ready, checks=results), 200 if ready else 503

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.exposition(), mimetype="text/plain; version=0.0.4; charset=utf-8")

    return app


def app_from_env() -> Flask:
    """gunicorn's entry point (`app.health:app_from_env()`): the same environment as the worker."""
    import boto3  # noqa: PLC0415 - keep `import app.health` light for the tests

    from app.aws import probe_config  # noqa: PLC0415
    from app.config import Settings  # noqa: PLC0415
    from app.sinks.factory import build_sink  # noqa: PLC0415

    settings = Settings.from_env(os.environ)
    session = boto3.session.Session(region_name=settings.aws_region)
    sqs = session.client("sqs", config=probe_config())
    queue_url = settings.queue.queue_url
    sink = build_sink(settings.sink, dimension=settings.embedder.dimension, session=session)
    checks = {
        "queue": CachedCheck(
            lambda: sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        ),
        "sink": CachedCheck(sink.ping),
    }
    return create_app(
        state_file=StateFile(os.environ[STATE_FILE_ENV]),
        stale_seconds=settings.health.stale_seconds,
        checks=checks,
    )
