"""A strict local stand-in for the EC2 Instance Metadata Service, IMDSv2 only, on 127.0.0.1.

It refuses what IMDS refuses (EC2 user guide, "Use IMDSv2"):
- ``PUT /latest/api/token`` needs ``X-aws-ec2-metadata-token-ttl-seconds`` (an integer 1..21600), else 400;
  a PUT carrying ``X-Forwarded-For`` is refused with 403; the answer echoes the TTL header;
- every GET needs a token this stub issued and that has not expired, else 401 (no IMDSv1 fallback);
- an item that does not exist answers 404: the Spot action and the rebalance recommendation until announced,
  and ``autoscaling/target-lifecycle-state`` when ``in_group`` is False.

Announcements take effect ``after`` seconds (0: at once), so a test can schedule one or trigger it on
demand. ``counts`` tallies requests per ``"METHOD path"`` plus ``"401"``; ``expire_tokens`` makes every issued
token stale (the client must fetch a new one on the 401).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
META = "/latest/meta-data"
MAX_TTL = 21_600


@dataclass
class _Timed:
    value: str
    at: float  # monotonic time from which it is served


@dataclass
class ImdsStub:
    """State and knobs of a running stub; obtain one from ``imds_stub()``."""

    url: str = ""
    instance_id: str = "i-0123456789abcdef0"
    in_group: bool = True
    counts: Counter[str] = field(default_factory=Counter)
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> monotonic expiry
    _spot: _Timed | None = None
    _rebalance: _Timed | None = None
    _target_state: list[_Timed] = field(default_factory=lambda: [_Timed("InService", 0.0)])
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- knobs -------------------------------------------------------------------------------------------

    def announce_spot(self, action: str = "terminate", *, after: float = 0.0) -> None:
        at = time.monotonic() + after
        notice = {"action": action, "time": _utc_in(after + 120)}
        with self._lock:
            self._spot = _Timed(json.dumps(notice), at)

    def announce_rebalance(self, *, after: float = 0.0, notice_time: str | None = None) -> None:
        at = time.monotonic() + after
        with self._lock:
            self._rebalance = _Timed(json.dumps({"noticeTime": notice_time or _utc_in(after)}), at)

    def set_target_state(self, state: str = "Terminated", *, after: float = 0.0) -> None:
        with self._lock:
            self._target_state.append(_Timed(state, time.monotonic() + after))

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return self.counts[f"{method} {path}"]

    # -- serving -----------------------------------------------------------------------------------------

    def _issue(self, ttl_header: str | None, forwarded: bool) -> tuple[int, str, dict[str, str]]:
        if forwarded:
            return 403, "Forbidden", {}
        try:
            ttl = int(ttl_header) if ttl_header is not None else 0
        except ValueError:
            ttl = 0
        if not 1 <= ttl <= MAX_TTL:
            return 400, "Bad Request", {}
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl
        return 200, token, {TTL_HEADER: str(ttl)}

    def _authorised(self, token: str | None) -> bool:
        with self._lock:
            expiry = self._tokens.get(token or "")
        return expiry is not None and time.monotonic() < expiry

    def _item(self, path: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            if path == f"{META}/instance-id":
                return self.instance_id
            if path == f"{META}/spot/instance-action":
                return _due(self._spot, now)
            if path == f"{META}/events/recommendations/rebalance":
                return _due(self._rebalance, now)
            if path == f"{META}/autoscaling/target-lifecycle-state" and self.in_group:
                due = [timed.value for timed in self._target_state if timed.at <= now]
                return due[-1] if due else None
        return None


def _due(timed: _Timed | None, now: float) -> str | None:
    return timed.value if timed is not None and timed.at <= now else None


def _utc_in(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


def _handler_for(stub: ImdsStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_PUT(self) -> None:
            with stub._lock:
                stub.counts[f"PUT {self.path}"] += 1
            if self.path != TOKEN_PATH:
                self._answer(405, "Method Not Allowed")
                return
            status, body, headers = stub._issue(
                self.headers.get(TTL_HEADER), forwarded="X-Forwarded-For" in self.headers
            )
            self._answer(status, body, headers)

        def do_GET(self) -> None:
            with stub._lock:
                stub.counts[f"GET {self.path}"] += 1
            if not stub._authorised(self.headers.get(TOKEN_HEADER)):
                with stub._lock:
                    stub.counts["401"] += 1
                self._answer(401, "Unauthorized")
                return
            item = stub._item(self.path)
            if item is None:
                self._answer(404, "Not Found")
            else:
                self._answer(200, item)

        def _answer(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def imds_stub(**knobs: object) -> Iterator[ImdsStub]:
    """A running stub on a free 127.0.0.1 port; the server thread stops when the block ends."""
    stub = ImdsStub(**knobs)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(stub))
    server.daemon_threads = True
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
