"""A message as received from SQS, with the little state the consumer keeps about it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class ReceivedMessage:
    """Identity is the object itself: a standard queue may hand out the same MessageId twice."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    received_at: float  # monotonic time the receive call started: the visibility clock starts no later
    attributes: dict[str, str] = field(default_factory=dict)
    message_attributes: dict[str, Any] = field(default_factory=dict)
    _settled: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_api(cls, raw: dict[str, Any], *, received_at: float) -> ReceivedMessage:
        attributes = dict(raw.get("Attributes", {}))
        return cls(
            message_id=raw["MessageId"],
            receipt_handle=raw["ReceiptHandle"],
            body=raw.get("Body", ""),
            receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
            received_at=received_at,
            attributes=attributes,
            message_attributes=dict(raw.get("MessageAttributes", {})),
        )

    def claim_settlement(self) -> bool:
        """True exactly once: the caller owns the message's one and only settlement."""
        with self._lock:
            if self._settled:
                return False
            self._settled = True
            return True

    @property
    def settled(self) -> bool:
        return self._settled
