"""Where documents go: a small Protocol, with OpenSearch and a local one-file store behind it."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

from app.document import Hit, Operation
from app.errors import FileError


class IndexMismatch(Exception):
    """The index exists but cannot hold this worker's documents; the message says what to change."""


class WriteOutcome(StrEnum):
    APPLIED = "applied"  # written (a document, or a removal's tombstone)
    STALE = "stale"  # an equal or newer event already wrote this document: nothing to do, and not an error


class Sink(Protocol):
    def ensure_index(self) -> None:
        """Create the index with its explicit mapping if it does not exist; idempotent."""
        ...

    def write(self, operations: Sequence[Operation]) -> list[WriteOutcome | FileError]:
        """Apply each operation behind the sequencer guard (app.document); one result per operation, in order.

        A durable write is what lets the worker delete the message: an outcome is returned only once the
        operation is applied (or known stale); failures come back classified (transient: 429, 5xx, the sink
        unreachable; permanent: a mapping error) instead of raised.
        """
        ...

    def search_text(self, text: str, *, k: int) -> list[Hit]:
        """Lexical search over key and extracted text; tombstones never match."""
        ...

    def search_vector(self, vector: Sequence[float], *, k: int) -> list[Hit]:
        """Nearest documents by cosine similarity of their embedding; tombstones never match."""
        ...

    def ping(self) -> None:
        """Raise TransientError if the sink cannot be reached."""
        ...

    def close(self) -> None: ...
