"""The two kinds of failure a file can have, and how an AWS error maps onto them.

A *permanent* failure will fail the same way on every attempt (a malformed body, a corrupt file, a missing
permission): the message is dead-lettered with the reason so an operator can fix the cause and redrive it.
A *transient* failure may pass on a later attempt (throttling, a 5xx, a timeout, a sink that is down): the
message comes back after a backoff. Anything unclassified is treated as transient: retrying is safe because
indexing is idempotent, and the receive-count limit turns it into a dead-letter with its reason in the end.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

REASON_MAX_CHARS = 1000

# Error codes AWS services return for overload or internal faults; the request may well succeed later.
_TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "ModelErrorException",
        "ModelNotReadyException",
        "ModelTimeoutException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "KMS.ThrottlingException",
    }
)


class StartupError(Exception):
    """The environment is wrong in a way the operator must fix (no DLQ, a missing queue, an index that
    does not fit); the command exits 2 with this message on one line."""


class FileError(Exception):
    """A classified failure. ``reason`` is written for an operator: what failed and what to do next."""

    def __init__(self, reason: str, *, error_class: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason[:REASON_MAX_CHARS]
        self.error_class = error_class or type(self).__name__


class PermanentError(FileError):
    """Retrying cannot help: dead-letter the message with this reason."""


class TransientError(FileError):
    """A later attempt may succeed: retry the message after a backoff."""


def classify_aws_error(exc: Exception, *, action: str) -> FileError:
    """Map a botocore error onto permanent or transient; ``action`` (what we were doing) starts the reason."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")) or code
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        reason = f"{action}: {code}: {message}"
        if code in _TRANSIENT_CODES or status >= 500 or status in (408, 429):
            return TransientError(reason, error_class=code)
        return PermanentError(reason, error_class=code)
    if isinstance(
        exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError
    ):
        return TransientError(f"{action}: {exc}", error_class=type(exc).__name__)
    if isinstance(exc, BotoCoreError):
        return TransientError(f"{action}: {exc}", error_class=type(exc).__name__)
    return TransientError(f"{action}: unexpected {type(exc).__name__}: {exc}", error_class=type(exc).__name__)
