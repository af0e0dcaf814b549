"""A minimal IMDSv2 client: a session token first, then token-bearing GETs; nothing else.

The contract (EC2 user guide, "Use the Instance Metadata Service to access instance metadata"):
``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds`` (1 to 21600) returns a token; every
GET carries it in ``X-aws-ec2-metadata-token``. A missing, wrong or expired token answers 401, and an item
that does not exist (no Spot notice yet, not in an Auto Scaling group) answers 404, which is why ``get`` maps
404 to None. IMDSv1 (token-less GETs) is deliberately not supported: instances should require IMDSv2.

Hop limit: the token PUT's response is sent with an IP TTL of the instance's ``HttpPutResponseHopLimit``.
A container on a Docker bridge network is one hop further away, so it needs a hop limit of 2, or its token
PUT times out while the instance itself gets answers. We run the worker with ``--network host``, where the
default of 1 is enough; a token PUT that times out is reported with that hint.

Plain ``http.client`` on purpose: no dependency, and no proxy environment variables applied (a proxy in
front of IMDS would also be refused: IMDS rejects token PUTs carrying ``X-Forwarded-For``).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.config import ConfigError

DEFAULT_ENDPOINT = "http://169.254.169.254"
IPV6_ENDPOINT = "http://[fd00:ec2::254]"
MAX_TOKEN_TTL = 21_600  # six hours, the longest token IMDS grants
TOKEN_PATH = "/latest/api/token"  # noqa: S105 - a URL path, not a secret
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"  # noqa: S105 - a header name, not a secret

INSTANCE_ID_PATH = "/latest/meta-data/instance-id"
SPOT_ACTION_PATH = "/latest/meta-data/spot/instance-action"
REBALANCE_PATH = "/latest/meta-data/events/recommendations/rebalance"
TARGET_LIFECYCLE_STATE_PATH = "/latest/meta-data/autoscaling/target-lifecycle-state"

_MAX_BODY_BYTES = 64 * 1024  # metadata items are small; never read an unbounded body
_REFRESH_MARGIN_MAX = 60.0  # renew a token this long (at most) before IMDS would reject it


class ImdsError(Exception):
    """IMDS did not answer, or answered something other than 200 or 404; the message says what."""


@dataclass(frozen=True)
class ImdsProbe:
    """Whether IMDSv2 answered a token request at start-up, and if not, why (for one log line)."""

    available: bool
    reason: str | None = None


class ImdsClient:
    """Thread-safe: the token is fetched lazily, cached, renewed shortly before its TTL ends and on a 401."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        timeout: float = 1.0,
        token_ttl: int = MAX_TOKEN_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme != "http" or not parts.hostname or parts.path.strip("/"):
            raise ValueError(f"{endpoint!r} is not an IMDS endpoint (http://HOST[:PORT])")
        if not 1 <= token_ttl <= MAX_TOKEN_TTL:
            raise ValueError(f"token_ttl={token_ttl} is outside 1..{MAX_TOKEN_TTL} seconds")
        self.endpoint = endpoint.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._timeout = timeout
        self._token_ttl = token_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ImdsClient | None:
        """botocore's own switches: None when AWS_EC2_METADATA_DISABLED=true.

        AWS_EC2_METADATA_SERVICE_ENDPOINT overrides the address, else
        AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6 selects the IPv6 one: the same choice botocore makes
        when it looks for instance credentials.
        """
        if env.get("AWS_EC2_METADATA_DISABLED", "false").strip().lower() == "true":
            return None
        endpoint = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "").strip()
        if not endpoint:
            mode = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "").strip().lower()
            endpoint = IPV6_ENDPOINT if mode == "ipv6" else DEFAULT_ENDPOINT
        try:
            return cls(endpoint)
        except ValueError as exc:
            raise ConfigError(f"AWS_EC2_METADATA_SERVICE_ENDPOINT: {exc}") from None

    def probe(self, *, budget: float = 1.0) -> ImdsProbe:
        """Ask for a token once, within ``budget`` seconds: off EC2 this fails fast and quietly."""
        try:
            self._renew_token(timeout=budget)
        except ImdsError as exc:
            return ImdsProbe(available=False, reason=str(exc))
        return ImdsProbe(available=True)

    def get(self, path: str) -> str | None:
        """The item at ``path`` (e.g. ``/latest/meta-data/instance-id``), None when IMDS answers 404.

        Raises ImdsError when IMDS cannot be reached or answers anything else.
        """
        status, body = self._get_with(self._current_token(), path)
        if status == 401:
            # The token was refused (expired early, or IMDS restarted): one fresh token, one retry.
            status, body = self._get_with(self._renew_token(timeout=self._timeout), path)
        if status == 200:
            return body.decode("utf-8", errors="replace")
        if status == 404:
            return None
        raise ImdsError(f"GET {path} answered HTTP {status}")

    # -- token -------------------------------------------------------------------------------------------

    def _current_token(self) -> str:
        with self._lock:
            if self._token is not None and self._clock() < self._renew_at:
                return self._token
        return self._renew_token(timeout=self._timeout)

    def _renew_token(self, *, timeout: float) -> str:
        with self._lock:
            requested_at = self._clock()
            try:
                status, body, ttl_header = self._request(
                    "PUT", TOKEN_PATH, {TTL_HEADER: str(self._token_ttl)}, timeout=timeout
                )
            except TimeoutError:
                raise ImdsError(
                    f"IMDS at {self.endpoint} did not answer the token request within {timeout:g} s "
                    "(off EC2; or in a container on a bridge network with hop limit 1)"
                ) from None
            except (OSError, http.client.HTTPException, ValueError) as exc:
                raise ImdsError(f"IMDS at {self.endpoint} is not reachable: {exc}") from None
            if status != 200 or not body:
                # 403: IMDS is turned off for this instance; 400: a malformed request (a bug here).
                raise ImdsError(f"IMDS at {self.endpoint} refused a token: HTTP {status}")
            ttl = _granted_ttl(ttl_header, requested=self._token_ttl)
            self._token = body.decode("ascii", errors="replace").strip()
            self._renew_at = requested_at + ttl - min(_REFRESH_MARGIN_MAX, ttl / 10)
            return self._token

    # -- HTTP --------------------------------------------------------------------------------------------

    def _get_with(self, token: str, path: str) -> tuple[int, bytes]:
        try:
            status, body, _ = self._request("GET", path, {TOKEN_HEADER: token}, timeout=self._timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: a malformed header
            raise ImdsError(f"GET {path} from IMDS at {self.endpoint} failed: {exc}") from None
        return status, body

    def _request(
        self, method: str, path: str, headers: dict[str, str], *, timeout: float
    ) -> tuple[int, bytes, str | None]:
        # A connection per request: IMDS is link-local and polled every few seconds, and a fresh socket
        # never trips over a keep-alive connection the other end already dropped.
        connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            body = response.read(_MAX_BODY_BYTES)
            return response.status, body, response.getheader(TTL_HEADER)
        finally:
            connection.close()


def _granted_ttl(header: str | None, *, requested: int) -> float:
    """IMDS echoes the TTL it granted; trust the shorter of that and what we asked for."""
    try:
        granted = int(header) if header is not None else requested
    except ValueError:
        granted = requested
    return float(max(1, min(granted, requested)))
