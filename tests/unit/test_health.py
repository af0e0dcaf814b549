"""/healthz and /readyz in every state the worker can be in, through Flask's own test client."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from app.health import CachedCheck, create_app
from app.state import StateFile, WorkerStatus


class Probe:
    def __init__(self) -> None:
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error


@pytest.fixture
def state_file(tmp_path: Path) -> StateFile:
    return StateFile(tmp_path / "worker.json")


@pytest.fixture
def sink() -> Probe:
    return Probe()


@pytest.fixture
def client(state_file: StateFile, sink: Probe) -> FlaskClient:
    checks = {"queue": CachedCheck(Probe(), ttl=0), "sink": CachedCheck(sink, ttl=0)}
    return create_app(state_file=state_file, stale_seconds=30, checks=checks).test_client()


def _publish(state_file: StateFile, state: str, *, age: float = 0.0, cause: str | None = None) -> None:
    state_file.write(WorkerStatus(state, time.time() - age, cause, 0, 123))


def test_before_the_worker_publishes_anything_nothing_is_healthy(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 503
    assert client.get("/readyz").status_code == 503


def test_starting_is_alive_but_not_ready(client: FlaskClient, state_file: StateFile) -> None:
    _publish(state_file, "starting")
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["worker"] == {"ok": False, "state": "starting"}  # type: ignore[index]


def test_running_with_queue_and_sink_answering_is_ready(client: FlaskClient, state_file: StateFile) -> None:
    _publish(state_file, "running")
    assert client.get("/healthz").json == {"heartbeat_age_s": 0.0, "state": "running", "status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json["ready"] is True  # type: ignore[index]
    checks = response.json["checks"]  # type: ignore[index]
    assert checks["queue"]["ok"] and checks["sink"]["ok"] and checks["sink"]["latency_ms"] >= 0


def test_a_stuck_receive_loop_fails_liveness(client: FlaskClient, state_file: StateFile) -> None:
    _publish(state_file, "running", age=31)
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json["reason"] == "the receive loop is stuck"  # type: ignore[index]
    assert client.get("/readyz").status_code == 503


def test_draining_stays_alive_so_nothing_restarts_it_but_is_not_ready(
    client: FlaskClient, state_file: StateFile
) -> None:
    _publish(state_file, "draining", cause="spot:terminate")
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["worker"] == {"ok": False, "state": "draining", "cause": "spot:terminate"}  # type: ignore[index]


def test_sink_down_is_not_ready_and_says_why(client: FlaskClient, state_file: StateFile, sink: Probe) -> None:
    _publish(state_file, "running")
    sink.error = ConnectionError("connection refused by 127.0.0.1:9200")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["sink"]["ok"] is False  # type: ignore[index]
    assert "connection refused" in response.json["checks"]["sink"]["error"]  # type: ignore[index]
    assert client.get("/healthz").status_code == 200, "a sink outage is not a reason to restart the worker"


def test_a_stopped_worker_is_not_alive(client: FlaskClient, state_file: StateFile) -> None:
    _publish(state_file, "stopped", cause="fatal")
    assert client.get("/healthz").status_code == 503


def test_checks_are_cached_so_probes_never_storm_aws() -> None:
    probe = Probe()
    check = CachedCheck(probe, ttl=60)
    for _ in range(50):
        assert check.result().ok
    assert probe.calls == 1


def test_a_failed_check_is_retried_soon_so_readiness_follows_recovery() -> None:
    probe = Probe()
    probe.error = ConnectionError("not yet")
    check = CachedCheck(probe, ttl=60, failed_ttl=0.05)
    assert not check.result().ok
    probe.error = None
    time.sleep(0.1)
    assert check.result().ok, "a failure is not served for the healthy answer's whole cache time"
    assert probe.calls == 2
