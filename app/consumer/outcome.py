"""The outcome of one message, as data: decided in one place, acted on by the settler."""

from __future__ import annotations

from dataclasses import dataclass

from app.consumer.backoff import ExponentialBackoff
from app.consumer.message import ReceivedMessage
from app.errors import FileError, PermanentError


@dataclass(frozen=True, slots=True)
class Ack:
    """Done (processed, or nothing to do): delete the message."""

    result: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Transient failure: make the message visible again after ``delay_seconds``."""

    delay_seconds: int
    error_class: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Permanent failure: send the original body to the DLQ with the reason, then delete the message."""

    error_class: str
    reason: str


@dataclass(frozen=True, slots=True)
class Release:
    """Not started (drain): make the message visible again at once for another worker."""


Outcome = Ack | Retry | DeadLetter | Release


def outcome_of_failure(
    error: FileError,
    message: ReceivedMessage,
    *,
    backoff: ExponentialBackoff,
    max_receive_count: int,
) -> Retry | DeadLetter:
    """Permanent errors dead-letter at once; transient ones retry until the last delivery SQS will make.

    On that last delivery we dead-letter ourselves rather than let the redrive policy do it, so the message
    reaches the DLQ with its reason attached instead of silently.
    """
    if isinstance(error, PermanentError):
        return DeadLetter(error_class=error.error_class, reason=error.reason)
    if message.receive_count >= max_receive_count:
        return DeadLetter(
            error_class=error.error_class,
            reason=f"gave up after {message.receive_count} attempts: {error.reason}",
        )
    return Retry(
        delay_seconds=backoff.delay_for(message.receive_count),
        error_class=error.error_class,
        reason=error.reason,
    )
