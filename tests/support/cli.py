"""`filefleet` run as a user runs it: a separate process, its exit code and its two streams."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping


def run_filefleet(
    *args: str, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m app ARGS`` to completion (bounded by ``timeout``); never raises on a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
