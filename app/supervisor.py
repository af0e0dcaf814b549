"""`filefleet run`: the worker and the health endpoint side by side, as the container runs them.

Two child processes: `filefleet worker` and gunicorn serving app.health. SIGTERM or SIGINT is passed to the
worker only, which drains; the health endpoint keeps answering meanwhile (/healthz 200 "draining", /readyz
503) and is stopped last. The exit status is the worker's. If either child dies unexpectedly, the other is
stopped and the status is not 0, so Docker or systemd restarts the container.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from app import metrics
from app.config import Settings
from app.state import STATE_FILE_ENV

log = logging.getLogger(__name__)

STATE_DIR_ENV = "FILEFLEET_STATE_DIR"
HEALTH_STOP_SECONDS = 10
# Probes must never take CPU from the files: under contention the endpoint yields to the worker (its answers
# stay in milliseconds; the scheduler still gives it its share when the worker is idle).
HEALTH_NICENESS = 10
EXIT_CHILD_DIED = 1


def run(settings: Settings) -> int:
    env = _children_env()
    signals: queue.SimpleQueue[int] = queue.SimpleQueue()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, _: signals.put(received))
    gunicorn = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:app.gunicorn_config",
        "app.health:app_from_env()",
    ]
    health = _spawn(["nice", "-n", str(HEALTH_NICENESS), *gunicorn], env)
    worker = _spawn([sys.executable, "-m", "app", "worker"], env)
    log.info(
        "run.started",
        extra={"worker_pid": worker.pid, "health_pid": health.pid, "port": settings.health.port},
    )
    stopping = False
    while worker.poll() is None:
        try:
            received = signals.get(timeout=0.2)
        except queue.Empty:
            received = None
        if received is not None and not stopping:
            stopping = True
            log.info("run.stopping", extra={"signal": signal.Signals(received).name})
            worker.send_signal(signal.SIGTERM)
        if health.poll() is not None and not stopping:
            log.error("run.health_died", extra={"returncode": health.returncode})
            stopping = True
            worker.send_signal(signal.SIGTERM)
            worker.wait()
            metrics.forget_process(worker.pid)
            return worker.returncode or EXIT_CHILD_DIED
    metrics.forget_process(worker.pid)
    code = worker.returncode if worker.returncode >= 0 else 128 - worker.returncode
    if code != 0:
        log.error("run.worker_exited", extra={"returncode": code})
    _stop(health)
    log.info("run.stopped", extra={"returncode": code})
    return code


def _children_env() -> dict[str, str]:
    """Both children share the state file and the multiprocess metrics directory, fresh for this run."""
    state_dir = Path(os.environ.get(STATE_DIR_ENV) or tempfile.mkdtemp(prefix="filefleet-"))
    metrics_dir = state_dir / "prometheus"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):  # left by an earlier run in the same directory
        stale.unlink()
    return {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        STATE_FILE_ENV: str(state_dir / "worker.json"),
    }


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A session of its own: a Ctrl-C in the terminal reaches this supervisor only, which decides the order.
    return subprocess.Popen(command, env=env, start_new_session=True)  # noqa: S603 - our own commands


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=HEALTH_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
