"""Every setting of filefleet, read from the environment, typed and validated in one place.

Endpoints are deliberately absent: boto3 reads ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>`` itself,
so pointing the worker at an emulator needs no variable of ours. Defaults are the operations guide's.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

GUIDE_REGION = "ap-northeast-1"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SQS_MAX_VISIBILITY_TIMEOUT = 43_200  # 12 hours, the SQS limit
SQS_MAX_WAIT_TIME = 20
MIB = 1024 * 1024
GIB = 1024 * MIB
EMBEDDERS = ("titan", "local", "none")
TITAN_DIMENSIONS = (256, 384, 1024)  # outputEmbeddingLength of amazon.titan-embed-image-v1
SINKS = ("opensearch", "local")
OPENSEARCH_AUTHS = ("none", "basic", "sigv4")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]{0,254}$")

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# https://sqs.us-east-1.amazonaws.com/... and the legacy https://us-east-1.queue.amazonaws.com/...
_REGION_IN_QUEUE_HOST = re.compile(
    r"^(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.(?:queue\.)?amazonaws\.com(?:\.cn)?$"
)


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable and what is wrong, on one line."""


@dataclass(frozen=True, kw_only=True)
class QueueSettings:
    """What the worker consumes and how it settles messages."""

    queue_url: str
    dead_letter_queue_url: str | None
    s3_bucket: str | None  # for the guide's {"s3Key": ...} messages, which name no bucket
    worker_concurrency: int
    visibility_timeout: int
    wait_time_seconds: int
    drain_seconds: int
    retry_base_seconds: int
    retry_max_seconds: int
    max_receive_count: int | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> QueueSettings:
        read = _EnvReader(env)
        queue_url = read.url("SQS_QUEUE_URL", required=True)
        assert queue_url is not None
        retry_base = read.integer("RETRY_BASE_SECONDS", default=10, low=1, high=SQS_MAX_VISIBILITY_TIMEOUT)
        retry_max = read.integer("RETRY_MAX_SECONDS", default=900, low=1, high=SQS_MAX_VISIBILITY_TIMEOUT)
        if retry_max < retry_base:
            raise ConfigError(f"RETRY_MAX_SECONDS={retry_max} is below RETRY_BASE_SECONDS={retry_base}")
        return cls(
            queue_url=queue_url,
            dead_letter_queue_url=read.url("DEAD_LETTER_QUEUE_URL", required=False),
            s3_bucket=read.bucket("S3_BUCKET"),
            worker_concurrency=read.integer("WORKER_CONCURRENCY", default=2, low=1, high=256),
            visibility_timeout=read.integer(
                "VISIBILITY_TIMEOUT", default=300, low=1, high=SQS_MAX_VISIBILITY_TIMEOUT
            ),
            wait_time_seconds=read.integer("WAIT_TIME_SECONDS", default=20, low=0, high=SQS_MAX_WAIT_TIME),
            drain_seconds=read.integer("DRAIN_SECONDS", default=90, low=1, high=3600),
            retry_base_seconds=retry_base,
            retry_max_seconds=retry_max,
            max_receive_count=read.optional_integer("MAX_RECEIVE_COUNT", low=1, high=1000),
        )


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """How a file becomes a document."""

    max_file_bytes: int
    max_image_pixels: int
    index_gps: bool
    text_max_chars: int
    pdf_max_pages: int
    worker_id: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PipelineSettings:
        read = _EnvReader(env)
        return cls(
            max_file_bytes=read.integer("MAX_FILE_BYTES", default=512 * MIB, low=1, high=5 * 1024 * GIB),
            max_image_pixels=read.integer("MAX_IMAGE_PIXELS", default=64_000_000, low=1, high=1_000_000_000),
            index_gps=read.boolean("INDEX_GPS", default=False),
            text_max_chars=read.integer("TEXT_MAX_CHARS", default=100_000, low=0, high=10_000_000),
            pdf_max_pages=read.integer("PDF_MAX_PAGES", default=50, low=1, high=100_000),
            worker_id=read.text("WORKER_ID") or socket.gethostname(),
        )


@dataclass(frozen=True, kw_only=True)
class EmbedderSettings:
    """Which embedding model turns a file into a vector."""

    kind: str  # titan | local | none
    model_id: str
    dimension: int
    max_concurrency: int  # Bedrock calls in flight at once, per worker

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EmbedderSettings:
        read = _EnvReader(env)
        return cls(
            kind=read.choice("EMBEDDER", default="titan", choices=EMBEDDERS),
            model_id=read.text("BEDROCK_MODEL_ID") or "amazon.titan-embed-image-v1",
            dimension=read.integer_choice("EMBEDDING_DIMENSION", default=1024, choices=TITAN_DIMENSIONS),
            max_concurrency=read.integer("BEDROCK_MAX_CONCURRENCY", default=4, low=1, high=256),
        )


@dataclass(frozen=True, kw_only=True)
class SinkSettings:
    """Where documents are indexed and searched."""

    kind: str  # opensearch | local
    opensearch_url: str | None
    index: str
    auth: str  # none | basic | sigv4
    username: str | None
    password: str | None = field(repr=False)
    sigv4_service: str  # es (OpenSearch Service) | aoss (Serverless)
    local_path: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SinkSettings:
        read = _EnvReader(env)
        kind = read.choice("INDEX_SINK", default="opensearch", choices=SINKS)
        url = read.url("OPENSEARCH_URL", required=False, what="an OpenSearch URL (https://HOST[:PORT])")
        if url is None and (endpoint := read.text("OPENSEARCH_ENDPOINT")):  # the guide's name: a bare host
            url = endpoint if "://" in endpoint else f"https://{endpoint}"
        if kind == "opensearch" and url is None:
            raise ConfigError(
                "OPENSEARCH_URL is required when INDEX_SINK=opensearch (or set INDEX_SINK=local)"
            )
        host = (urlsplit(url or "").hostname or "").lower()
        auth = read.choice(
            "OPENSEARCH_AUTH",
            default="sigv4" if host.endswith(".amazonaws.com") else "none",
            choices=OPENSEARCH_AUTHS,
        )
        username, password = read.text("OPENSEARCH_USERNAME"), read.text("OPENSEARCH_PASSWORD")
        if auth == "basic" and not (username and password):
            raise ConfigError(
                "OPENSEARCH_USERNAME and OPENSEARCH_PASSWORD are required when OPENSEARCH_AUTH=basic"
            )
        return cls(
            kind=kind,
            opensearch_url=url,
            index=read.index_name("OPENSEARCH_INDEX", default="files"),
            auth=auth,
            username=username,
            password=password,
            sigv4_service=read.choice(
                "OPENSEARCH_SIGV4_SERVICE",
                default="aoss" if ".aoss." in host else "es",
                choices=("es", "aoss"),
            ),
            local_path=read.text("LOCAL_INDEX_PATH") or "filefleet-index.sqlite3",
        )


@dataclass(frozen=True, kw_only=True)
class LifecycleSettings:
    """How the worker hears that its instance is going away, and what it tells Auto Scaling."""

    on_rebalance: str  # ignore | drain: a rebalance recommendation is only a hint that a notice may come
    lifecycle_hook_name: str | None  # the group's termination hook, completed with CONTINUE after a drain
    autoscaling_group_name: str | None  # else discovered with DescribeAutoScalingInstances
    scale_in_protection: bool
    protection_idle_seconds: int  # idle this long before giving protection up (hysteresis)
    imds_poll_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LifecycleSettings:
        read = _EnvReader(env)
        return cls(
            on_rebalance=read.choice("ON_REBALANCE", default="ignore", choices=("ignore", "drain")),
            lifecycle_hook_name=read.text("LIFECYCLE_HOOK_NAME"),
            autoscaling_group_name=read.text("AUTOSCALING_GROUP_NAME"),
            scale_in_protection=read.boolean("SCALE_IN_PROTECTION", default=False),
            protection_idle_seconds=read.integer(
                "SCALE_IN_PROTECTION_IDLE_SECONDS", default=120, low=0, high=86_400
            ),
            imds_poll_seconds=read.integer("IMDS_POLL_SECONDS", default=5, low=1, high=300),
        )


@dataclass(frozen=True, kw_only=True)
class HealthSettings:
    """The health and metrics endpoint that `filefleet run` serves beside the worker."""

    port: int
    bind: str
    stale_seconds: int  # the worker loop's heartbeat older than this: /healthz answers 503

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HealthSettings:
        read = _EnvReader(env)
        return cls(
            port=read.integer("HEALTH_PORT", default=8080, low=1, high=65_535),
            bind=read.text("HEALTH_BIND") or "0.0.0.0",  # noqa: S104 - the container's port; EC2 has no ingress
            stale_seconds=read.integer("HEALTH_STALE_SECONDS", default=60, low=5, high=3600),
        )


@dataclass(frozen=True, kw_only=True)
class BacklogSettings:
    """The BacklogPerInstance metric the group scales on: visible messages ÷ in-service instances."""

    queue_url: str
    autoscaling_group_name: str
    namespace: str
    metric_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BacklogSettings:
        read = _EnvReader(env)
        queue_url = read.url("SQS_QUEUE_URL", required=True)
        group = read.text("AUTOSCALING_GROUP_NAME")
        if queue_url is None or group is None:
            raise ConfigError(
                "AUTOSCALING_GROUP_NAME is required: the group whose in-service instances divide the backlog"
            )
        return cls(
            queue_url=queue_url,
            autoscaling_group_name=group,
            namespace=read.text("METRIC_NAMESPACE") or "CISFileProcessor",
            metric_name=read.text("BACKLOG_METRIC_NAME") or "BacklogPerInstance",
        )


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the worker needs."""

    queue: QueueSettings
    pipeline: PipelineSettings
    embedder: EmbedderSettings
    sink: SinkSettings
    lifecycle: LifecycleSettings
    health: HealthSettings
    aws_region: str
    log_level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        queue = QueueSettings.from_env(env)
        return cls(
            queue=queue,
            pipeline=PipelineSettings.from_env(env),
            embedder=EmbedderSettings.from_env(env),
            sink=SinkSettings.from_env(env),
            lifecycle=LifecycleSettings.from_env(env),
            health=HealthSettings.from_env(env),
            aws_region=region_from_env(env, queue_url=queue.queue_url),
            log_level=log_level_from_env(env),
        )


def log_level_from_env(env: Mapping[str, str]) -> str:
    return _EnvReader(env).choice("LOG_LEVEL", default="INFO", choices=LOG_LEVELS)


def region_from_env(env: Mapping[str, str], *, queue_url: str | None = None) -> str:
    """AWS_REGION, else boto3's AWS_DEFAULT_REGION, else the region in an AWS queue URL, else the guide's."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if value := env.get(name, "").strip():
            return value
    host = (urlsplit(queue_url or "").hostname or "").lower()
    if match := _REGION_IN_QUEUE_HOST.match(host):
        return match.group(1)
    return GUIDE_REGION


class _EnvReader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def _raw(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def text(self, name: str) -> str | None:
        return self._raw(name)

    def url(self, name: str, *, required: bool, what: str | None = None) -> str | None:
        """A queue URL by default; ``what`` names another kind of URL (which then needs no path)."""
        value = self._raw(name)
        if value is None:
            if required:
                raise ConfigError(
                    f"{name} is required: set it to the queue URL, e.g. from `aws sqs get-queue-url`"
                )
            return None
        parts = urlsplit(value)
        needs_path = what is None
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or (needs_path and not parts.path.strip("/"))
        ):
            expected = what or "a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
            raise ConfigError(f"{name}={value!r} is not {expected}")
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ConfigError(f"{name}={raw!r} is not a boolean (true/false)")

    def integer_choice(self, name: str, *, default: int, choices: tuple[int, ...]) -> int:
        value = self.optional_integer(name, low=min(choices), high=max(choices))
        if value is None:
            return default
        if value not in choices:
            raise ConfigError(f"{name}={value} is not one of {', '.join(map(str, choices))}")
        return value

    def index_name(self, name: str, *, default: str) -> str:
        value = self._raw(name) or default
        if not _INDEX_NAME.match(value):
            raise ConfigError(
                f'{name}={value!r} is not a valid index name (lowercase, no spaces or / \\ * ? " < > |)'
            )
        return value

    def bucket(self, name: str) -> str | None:
        value = self._raw(name)
        if value is not None and not _BUCKET_NAME.match(value):
            raise ConfigError(f"{name}={value!r} is not a valid S3 bucket name (3-63 of a-z 0-9 . -)")
        return value

    def integer(self, name: str, *, default: int, low: int, high: int) -> int:
        value = self.optional_integer(name, low=low, high=high)
        return default if value is None else value

    def optional_integer(self, name: str, *, low: int, high: int) -> int | None:
        raw = self._raw(name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise ConfigError(f"{name}={value} is out of range: it must be between {low} and {high}")
        return value

    def choice(self, name: str, *, default: str, choices: tuple[str, ...]) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        for choice in choices:
            if raw.lower() == choice.lower():
                return choice
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")
