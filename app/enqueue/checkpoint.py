"""The resume point of an enqueue run: the last key whose message SQS acknowledged, kept in a small JSON file.

Written after every acknowledged batch, atomically (a temporary file in the same directory, fsync, rename),
so the file always holds either the previous batch's key or this one's, never half of either. A crash after
SQS acknowledged a batch and before the rename re-sends that one batch on resume; a crash earlier re-sends the
batch that was in flight. Nothing is skipped: the resumed listing starts right after the recorded key.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from app.enqueue.listing import InputError

FORMAT = "filefleet-enqueue-checkpoint/1"


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    run: dict[str, Any]  # source, queue and filters: a resume must be the same run
    last_key: str | None = None
    complete: bool = False
    # cumulative over every run that used this file
    objects: int = 0
    bytes: int = 0
    messages: int = 0
    format: str = field(default=FORMAT)

    def advanced(self, *, last_key: str, objects: int, size: int, messages: int) -> Checkpoint:
        return replace(
            self,
            last_key=last_key,
            objects=self.objects + objects,
            bytes=self.bytes + size,
            messages=self.messages + messages,
        )

    def mismatch(self, run: dict[str, Any]) -> list[str]:
        """The settings that differ from the run this checkpoint was written for."""
        names = sorted(set(self.run) | set(run))
        return [
            f"{name} {self.run.get(name)!r} → {run.get(name)!r}"
            for name in names
            if self.run.get(name) != run.get(name)
        ]


def load(path: Path) -> Checkpoint | None:
    """The checkpoint in ``path``; None when there is no such file (a first run)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"--checkpoint {path}: cannot read it: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        checkpoint = Checkpoint(
            run=dict(data["run"]),
            last_key=data["last_key"],
            complete=bool(data["complete"]),
            objects=int(data["objects"]),
            bytes=int(data["bytes"]),
            messages=int(data["messages"]),
        )
        if checkpoint.last_key is not None and not isinstance(checkpoint.last_key, str):
            raise ValueError("last_key is not a string")
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"--checkpoint {path} is not a checkpoint this command wrote: {exc}") from None
    return checkpoint


def save(path: Path, checkpoint: Checkpoint) -> None:
    """Replace ``path`` with ``checkpoint`` atomically and durably."""
    text = json.dumps(asdict(checkpoint), ensure_ascii=False, indent=2) + "\n"
    directory = path.parent
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is; not every platform can open a directory.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
