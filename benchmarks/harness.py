"""What every benchmark here shares: the repository's place, a local moto, a free port, the RESULT line.

The benchmarks run as scripts (``python benchmarks/NAME.py``), so this directory is on ``sys.path`` and
they import this module by its bare name.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the app, and the tests' component helpers the benchmarks reuse

from tests.support.components import free_port, moto_server, stop_process  # noqa: E402

# free_port and stop_process are the tests' own, passed on: the benchmarks take every helper from here.
__all__ = [
    "BENCH_DIR",
    "CACHE_DIR",
    "REPO",
    "BenchmarkFailure",
    "free_port",
    "print_result",
    "run",
    "running_moto",
    "stop_process",
    "tail",
]


class BenchmarkFailure(Exception):
    """A correctness check failed: the figures of this run mean nothing."""


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` of a log file, for a failure message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


@contextmanager
def running_moto(scratch: Path | None = None) -> Iterator[str]:
    """The tests' moto server (tests.support.components, bound to 127.0.0.1); yields its endpoint.

    With ``scratch``, moto spools its objects there (its TMPDIR) rather than under the system's /tmp.
    """
    saved = os.environ.get("TMPDIR")
    if scratch is not None:
        os.environ["TMPDIR"] = str(scratch)  # inherited by the moto process only: ours has chosen its own
    try:
        server = moto_server()
        endpoint = server.__enter__()
    finally:
        if saved is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved
    try:
        yield endpoint
    finally:
        server.__exit__(None, None, None)


def print_result(result: dict[str, Any], met: Mapping[str, bool]) -> None:
    """Says each missed target, then prints ``RESULT {json}`` as the last line (with ``targets_met``)."""
    result["targets_met"] = dict(met)
    for name, ok in met.items():
        if not ok:
            print(f"target missed: {name} = {result.get(name)}")
    sys.stdout.flush()
    print(f"RESULT {json.dumps(result, sort_keys=False)}")


def run(main: Callable[[], int | None], *, stopped: str) -> None:
    """Runs ``main`` as the script's entry point; Ctrl-C says what was cleaned up (``stopped``), exits 130."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(f"interrupted; {stopped}", file=sys.stderr)
        sys.exit(130)
