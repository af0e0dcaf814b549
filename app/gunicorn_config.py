"""gunicorn settings for the health endpoint (`filefleet run` passes `-c python:app.gunicorn_config`)."""

from __future__ import annotations

import os
from typing import Any

from app import metrics

bind = f"{os.environ.get('HEALTH_BIND') or '0.0.0.0'}:{os.environ.get('HEALTH_PORT') or '8080'}"  # noqa: S104
# One process with a few threads: the app only reads a file, runs cached checks and renders metrics.
workers = 1
worker_class = "gthread"
threads = 4
accesslog = None  # probes every few seconds would drown the worker's own log lines
errorlog = "-"
graceful_timeout = 5
timeout = 30
# gunicorn >= 25 opens a control socket in $HOME that can add and kill workers, and two instances on one
# host would share (and delete) it; nothing here uses it. Older versions ignore unknown settings.
control_socket_disable = True


def child_exit(server: Any, worker: Any) -> None:
    metrics.forget_process(worker.pid)
