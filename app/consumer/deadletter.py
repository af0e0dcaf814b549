"""What a dead-lettered message looks like: the original body, untouched, plus why it failed."""

from __future__ import annotations

from datetime import UTC, datetime

from app.consumer.message import ReceivedMessage
from app.consumer.outcome import DeadLetter
from app.consumer.queue import SQS_MESSAGE_ATTRIBUTE_LIMIT, OutgoingMessage

ATTRIBUTE_PREFIX = "filefleet."
SQS_STRING_ATTRIBUTE_CHARS = 1024  # keep reasons readable in the console; the log line has the full text


def dead_letter_message(
    message: ReceivedMessage, outcome: DeadLetter, *, source_queue_url: str, fifo: bool
) -> OutgoingMessage:
    """The original body with our attributes (error class, reason, source id, receive count) first.

    SQS allows 10 attributes per message: the original message's own come after ours, as many as fit.
    """
    ours = {
        "error_class": _string(outcome.error_class),
        "reason": _string(outcome.reason),
        "source_message_id": _string(message.message_id),
        "receive_count": {"DataType": "Number", "StringValue": str(message.receive_count)},
        "source_queue": _string(source_queue_url),
        "failed_at": _string(datetime.now(UTC).isoformat(timespec="seconds")),
    }
    attributes = {ATTRIBUTE_PREFIX + name: value for name, value in ours.items()}
    for name, value in message.message_attributes.items():
        if len(attributes) >= SQS_MESSAGE_ATTRIBUTE_LIMIT or name in attributes:
            continue
        attributes[name] = {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
    return OutgoingMessage(
        body=message.body,
        attributes=attributes,
        group_id=message.attributes.get("MessageGroupId", "filefleet-dead-letter") if fifo else None,
        deduplication_id=message.message_id if fifo else None,
    )


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value[:SQS_STRING_ATTRIBUTE_CHARS] or "-"}
