"""One bulk request for what the file threads index at about the same time.

Each file thread hands over its operation and waits for that operation's own result: a message is only
acknowledged once its document is durably written, while the sink sees one ``write`` per batch.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

from app.document import Operation
from app.errors import FileError, TransientError
from app.sinks import Sink, WriteOutcome

_STOP = None


class BatchingWriter:
    def __init__(self, sink: Sink, *, max_batch: int, linger_seconds: float = 0.02) -> None:
        self._sink = sink
        self._max_batch = max(1, max_batch)
        self._linger = linger_seconds
        self._inbox: queue.SimpleQueue[tuple[Operation, Future[WriteOutcome]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="bulk-writer", daemon=True)
        self._thread.start()

    def write(self, operation: Operation) -> WriteOutcome:
        """Block until the operation is applied (or known stale); raise its classified error otherwise."""
        future: Future[WriteOutcome] = Future()
        self._inbox.put((operation, future))
        return future.result()

    def close(self) -> None:
        self._inbox.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        while (first := self._inbox.get()) is not None:
            batch = [first]
            deadline = time.monotonic() + self._linger
            stopping = False
            while len(batch) < self._max_batch:
                try:
                    item = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._flush(batch)
            if stopping:
                return

    def _flush(self, batch: Sequence[tuple[Operation, Future[WriteOutcome]]]) -> None:
        try:
            results = self._sink.write([operation for operation, _ in batch])
        except Exception as exc:  # noqa: BLE001 - a sink that raises instead of reporting: retry every file
            reason = f"index write failed: {type(exc).__name__}: {exc}"
            results = [TransientError(reason) for _ in batch]
        for (_, future), result in zip(batch, results, strict=True):
            if isinstance(result, FileError):
                future.set_exception(result)
            else:
                future.set_result(result)
