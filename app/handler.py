"""The seam between the SQS consumer and the work done per file.

A handler takes one file event and either returns what it did (a short label the worker counts) or raises
a classified error (:class:`~app.errors.PermanentError` or :class:`~app.errors.TransientError`). Anything
else it raises is treated as transient. The file pipeline (app.pipeline.handler) is the production handler.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from app.events import FileEvent


class FileResult(StrEnum):
    PROCESSED = "processed"
    REMOVED = "removed"
    GONE = "gone"  # a create event for an object deleted since: its removal event settles the index
    STALE = "stale"  # an equal or newer event already wrote this document


class FileHandler(Protocol):
    def handle(self, event: FileEvent) -> str:
        """Do the work for one event; return a result label, or raise a classified error."""
        ...
