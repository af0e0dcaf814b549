"""boto3 clients, built when a command starts (never at import), sharing one retry and timeout policy.

Endpoints are boto3's business: ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` point them at an
emulator without any variable of ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


# SQS's answer for a queue URL that names no queue: the JSON protocol's Code (from x-amzn-query-error) and
# the query protocol's, so that either botocore or an emulator speaking either is understood.
NO_SUCH_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def error_codes(exc: ClientError) -> frozenset[str]:
    """The error's Code and, for SQS's JSON protocol, its QueryErrorCode: match on either."""
    error = exc.response.get("Error", {})
    return frozenset(str(code) for code in (error.get("Code"), error.get("QueryErrorCode")) if code)


def is_missing_queue(exc: ClientError) -> bool:
    return bool(error_codes(exc) & NO_SUCH_QUEUE_CODES)


def client_config(*, pool_size: int) -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": 5},  # max_attempts would mean 5 retries
        connect_timeout=5,
        read_timeout=60,  # above the 20 s long poll
        max_pool_connections=pool_size,
        tcp_keepalive=True,
    )


def probe_config() -> Config:
    """For health checks: answer fast or count as down; no retries behind the prober's back."""
    return Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1, read_timeout=2)


class AwsClients:
    def __init__(self, *, region: str, concurrency: int) -> None:
        self.session = boto3.session.Session(region_name=region)
        # every worker thread may call S3 at once, plus the poller, heartbeat and settler on SQS
        self._config = client_config(pool_size=concurrency + 4)

    def sqs(self) -> SQSClient:
        return self.session.client("sqs", config=self._config)

    def s3(self) -> S3Client:
        return self.session.client("s3", config=self._config)
