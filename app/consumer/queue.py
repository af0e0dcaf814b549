"""The SQS calls the consumer makes, batched the way the API allows, with per-entry failures surfaced.

Every batch call of SQS can succeed as a whole and still fail some entries (HTTP 200 with a ``Failed`` list):
callers get those failures back as data instead of having them silently dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from app.consumer.message import ReceivedMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

BATCH_LIMIT = 10  # entries per SQS batch call
# SQS accepts 1 MiB per message and per batch since 2025; stay at the long-standing 256 KiB per batch so a
# queue created with the old default still accepts what we send.
SEND_BATCH_BYTES = 256 * 1024
SQS_MESSAGE_ATTRIBUTE_LIMIT = 10

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EntryFailure:
    """One entry of a batch call that SQS refused; ``code`` is its error code, e.g. ReceiptHandleIsInvalid."""

    index: int
    code: str
    detail: str
    sender_fault: bool


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    body: str
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_id: str | None = None  # FIFO queues only
    deduplication_id: str | None = None  # FIFO queues only

    def size(self) -> int:
        size = len(self.body.encode("utf-8"))
        for name, value in self.attributes.items():
            payload = value.get("BinaryValue") or value.get("StringValue", "").encode("utf-8")
            size += len(name) + len(value["DataType"]) + len(payload)
        return size


@dataclass(frozen=True, slots=True)
class DeadLetterRoute:
    """Where messages go when they cannot be processed, and how often SQS delivers before redriving."""

    url: str
    max_receive_count: int | None


class SqsQueue:
    def __init__(self, client: SQSClient, url: str) -> None:
        self.client = client
        self.url = url

    @property
    def is_fifo(self) -> bool:
        return self.url.endswith(".fifo")

    def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_timeout: int
    ) -> list[ReceivedMessage]:
        started = time.monotonic()
        response = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(BATCH_LIMIT, max_messages)),
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        raw_messages: list[Any] = list(response.get("Messages", []))
        return [ReceivedMessage.from_api(raw, received_at=started) for raw in raw_messages]

    def delete(self, messages: Sequence[ReceivedMessage]) -> list[EntryFailure]:
        failures: list[EntryFailure] = []
        for offset, chunk in _chunks(messages, BATCH_LIMIT):
            response = self.client.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)],
            )
            failures += _failures(response, offset)
        return failures

    def change_visibility(self, entries: Sequence[tuple[ReceivedMessage, int]]) -> list[EntryFailure]:
        failures: list[EntryFailure] = []
        for offset, chunk in _chunks(entries, BATCH_LIMIT):
            response = self.client.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": timeout}
                    for i, (m, timeout) in enumerate(chunk)
                ],
            )
            failures += _failures(response, offset)
        return failures

    def send(self, messages: Sequence[OutgoingMessage]) -> list[EntryFailure]:
        failures: list[EntryFailure] = []
        for offset, chunk in _size_bounded_chunks(messages):
            entries: list[Any] = []
            for i, message in enumerate(chunk):
                entry: dict[str, Any] = {"Id": str(i), "MessageBody": message.body}
                if message.attributes:
                    entry["MessageAttributes"] = message.attributes
                if message.group_id is not None:
                    entry["MessageGroupId"] = message.group_id
                if message.deduplication_id is not None:
                    entry["MessageDeduplicationId"] = message.deduplication_id
                entries.append(entry)
            response = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            failures += _failures(response, offset)
        return failures

    def dead_letter_route(self) -> DeadLetterRoute | None:
        """The DLQ named by this queue's RedrivePolicy, resolved to a URL; None when it has none."""
        attributes = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["RedrivePolicy"])
        policy_text = attributes.get("Attributes", {}).get("RedrivePolicy")
        if not policy_text:
            return None
        policy = json.loads(policy_text)
        # arn:aws:sqs:REGION:ACCOUNT:NAME
        _, _, _, _, account, name = str(policy["deadLetterTargetArn"]).split(":", 5)
        url = self.client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        max_receive = policy.get("maxReceiveCount")
        return DeadLetterRoute(url=url, max_receive_count=int(max_receive) if max_receive else None)


def _failures(response: Any, offset: int) -> list[EntryFailure]:
    return [
        EntryFailure(
            index=offset + int(failed["Id"]),
            code=str(failed.get("Code", "Unknown")),
            detail=str(failed.get("Message", "")),
            sender_fault=bool(failed.get("SenderFault", False)),
        )
        for failed in response.get("Failed", [])
    ]


def _chunks(items: Sequence[T], size: int) -> Iterator[tuple[int, Sequence[T]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def _size_bounded_chunks(
    messages: Sequence[OutgoingMessage],
) -> Iterator[tuple[int, Sequence[OutgoingMessage]]]:
    start, total = 0, 0
    for index, message in enumerate(messages):
        size = message.size()
        if index > start and (index - start == BATCH_LIMIT or total + size > SEND_BATCH_BYTES):
            yield start, messages[start:index]
            start, total = index, 0
        total += size
    if start < len(messages):
        yield start, messages[start:]
