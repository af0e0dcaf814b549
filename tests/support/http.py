"""Plain HTTP to the endpoints the tests start, and bounded waiting for them."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any


def get(url: str) -> tuple[int, bytes]:
    """(status, body) of a GET; an error status is an answer too. Connection errors raise OSError."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def status(url: str) -> int:
    """The status of a GET, 0 when nothing answers."""
    try:
        return get(url)[0]
    except OSError:
        return 0


def wait_until(predicate: Any, *, timeout: float, what: str, interval: float = 0.1) -> Any:
    """The predicate's first truthy value within ``timeout`` seconds (connection errors count as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if value := predicate():
                return value
        except OSError:
            pass
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {what}")
