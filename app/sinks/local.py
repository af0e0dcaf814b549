"""A one-file local index (SQLite): the same documents, guard and searches as OpenSearch, without a cluster.

For the demo and for laptops. The guard is app.document's, applied inside one ``BEGIN IMMEDIATE``
transaction per batch: the write lock is taken before the first read, so two threads (or two processes on
the same file) cannot interleave a read and a write. Removals leave tombstone rows, as in OpenSearch.

Documents are validated against the same field table as the OpenSearch mapping
(:data:`app.sinks.opensearch.FIELD_TYPES`), so a pipeline bug that OpenSearch would reject (a string in
``size``) is rejected here too instead of passing the demo and failing in production.

Text search uses SQLite's FTS5 (BM25, key weighted twice the text) when this Python's sqlite3 has it, and a
plain term-count scorer over the live rows otherwise. Vector search is exact: cosine over every live
embedding with numpy, which is what a few thousand demo files need.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import datetime
from os import PathLike
from typing import Any, Final

import numpy as np

from app.document import (
    DELETED_FIELD,
    EMBEDDING_FIELD,
    FIELD_TYPES,
    HIT_SOURCE_EXCLUDES,
    SEQUENCER_FIELD,
    Hit,
    Operation,
    may_write,
    stored_source,
)
from app.errors import FileError, PermanentError, TransientError
from app.sinks import IndexMismatch, WriteOutcome

log = logging.getLogger(__name__)

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS documents (
        id INTEGER PRIMARY KEY,
        doc_id TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,   -- the _source as JSON, without the embedding
        embedding BLOB,         -- float32 little-endian; NULL for tombstones and files without one
        sequencer TEXT,         -- copy of source.s3_sequencer: the guard reads it without parsing source
        deleted INTEGER NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
# unicode61 splits on everything but letters and digits, like the OpenSearch key analyzer.
_FTS_SCHEMA: Final = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5("
    "key, text, tokenize = 'unicode61 remove_diacritics 2')"
)
_KEY_WEIGHT: Final = 2.0  # as key.text^2 in the OpenSearch query
_WORD: Final = re.compile(r"[^\W_]+")
_INTEGER_RANGE: Final = {"integer": 2**31, "long": 2**63}
_BOOLEAN_STRINGS: Final = ("true", "false", "")


def fts5_available() -> bool:
    """Whether this Python's SQLite was built with FTS5 (python.org and Debian builds are)."""
    try:
        with closing(sqlite3.connect(":memory:")) as conn:
            conn.execute("CREATE VIRTUAL TABLE probe USING fts5(x)")
    except sqlite3.OperationalError:
        return False
    return True


class LocalSink:
    """The local index in one SQLite file; safe to share between the worker's threads."""

    def __init__(self, path: str | PathLike[str], *, dimension: int, busy_timeout: float = 30.0) -> None:
        self._path = str(path)
        self._dimension = dimension
        self._busy_timeout = busy_timeout  # how long a writer waits for another's transaction to end
        self._full_text = fts5_available()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False

    # -- connections ---------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection: sqlite3 connections must not be shared between threads in use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError(f"local index {self._path} is closed")
            # isolation_level=None: no implicit transactions; we open them with BEGIN IMMEDIATE ourselves.
            conn = sqlite3.connect(
                self._path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._connections.append(conn)
        conn.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
        conn.execute("PRAGMA synchronous=FULL")  # a committed batch survives power loss: SQS forgets it next
        self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")  # take the write lock before reading: read-decide-write is atomic
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # also after a failed COMMIT: the connection must stay usable
                conn.execute("ROLLBACK")
            raise

    # -- index ---------------------------------------------------------------------------------------------

    def ensure_index(self) -> None:
        """Create the tables if absent; refuse a file made for another embedding dimension."""
        try:
            self._create_tables()
        except sqlite3.Error as exc:
            raise TransientError(f"cannot prepare local index {self._path}: {exc}") from exc

    def _create_tables(self) -> None:
        with self._transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            if self._full_text:
                conn.execute(_FTS_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE name = 'dimension'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES ('dimension', ?)", (str(self._dimension),)
                )
            elif int(row[0]) != self._dimension:
                raise IndexMismatch(
                    f"local index {self._path} holds {row[0]}-dimension embeddings but EMBEDDING_DIMENSION="
                    f"{self._dimension}: set EMBEDDING_DIMENSION={row[0]}, or set LOCAL_INDEX_PATH to a new "
                    "file and reprocess the bucket into it."
                )

    # -- writes --------------------------------------------------------------------------------------------

    def write(self, operations: Sequence[Operation]) -> list[WriteOutcome | FileError]:
        """Apply each operation behind the guard, in batch order, in one transaction; never raises.

        Validation happens first, outside the transaction: a rejected document fails alone. The
        transaction then either commits every decision or none (a busy or broken file: all transient).
        """
        results: list[WriteOutcome | FileError | None] = [None] * len(operations)
        for position, operation in enumerate(operations):
            error = self._validation_error(stored_source(operation, None))
            if error is not None:
                results[position] = PermanentError(
                    f"local index rejected document {operation.doc_id}: {error}: "
                    "fix the pipeline or the mapping, then redrive",
                    error_class="mapper_parsing_exception",
                )
        try:
            with self._transaction() as conn:
                decided = [
                    result if result is not None else self._apply(conn, operation)
                    for operation, result in zip(operations, results, strict=True)
                ]
        except Exception as exc:  # a busy or broken file, or a bug: nothing was committed, all may retry
            if not isinstance(exc, sqlite3.Error):
                log.exception("index.write_failed")
            failure = TransientError(
                f"writing to local index {self._path}: {exc}", error_class=type(exc).__name__
            )
            return [failure if result is None else result for result in results]
        return decided

    def _apply(self, conn: sqlite3.Connection, operation: Operation) -> WriteOutcome | FileError:
        row = conn.execute(
            "SELECT id, sequencer, deleted, json_extract(source, '$.event_time') "
            "FROM documents WHERE doc_id = ?",
            (operation.doc_id,),
        ).fetchone()
        existing = (
            None
            if row is None
            else {SEQUENCER_FIELD: row[1], DELETED_FIELD: bool(row[2]), "event_time": row[3]}
        )
        decision = may_write(operation, existing)
        if isinstance(decision, FileError):
            return decision
        if not decision:
            return WriteOutcome.STALE
        source = stored_source(operation, existing)
        vector = source.pop(EMBEDDING_FIELD, None)
        embedding = None if vector is None else np.asarray(vector, dtype="<f4").tobytes()
        deleted = bool(source.get(DELETED_FIELD))
        (rowid,) = conn.execute(
            """INSERT INTO documents (doc_id, source, embedding, sequencer, deleted) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (doc_id) DO UPDATE SET source = excluded.source, embedding = excluded.embedding,
                   sequencer = excluded.sequencer, deleted = excluded.deleted
               RETURNING id""",
            (
                operation.doc_id,
                json.dumps(source, ensure_ascii=False),
                embedding,
                source.get(SEQUENCER_FIELD),
                int(deleted),
            ),
        ).fetchone()
        if self._full_text:
            conn.execute("DELETE FROM documents_fts WHERE rowid = ?", (rowid,))
            if not deleted:
                conn.execute(
                    "INSERT INTO documents_fts (rowid, key, text) VALUES (?, ?, ?)",
                    (rowid, _as_text(source.get("key")), _as_text(source.get("text"))),
                )
        return WriteOutcome.APPLIED

    def _validation_error(self, source: Mapping[str, Any]) -> str | None:
        try:
            json.dumps(source, allow_nan=False)  # what OpenSearch's JSON parser would refuse
        except (TypeError, ValueError) as exc:
            return f"not representable as JSON ({exc})"
        for path, kind in FIELD_TYPES.items():
            value: Any = source
            for part in path.split("."):
                if value is None:
                    break
                if not isinstance(value, Mapping):
                    return f"field {part!r}'s parent is an object in the mapping, got {_preview(value)}"
                value = value.get(part)
            if value is None:
                continue
            error = _type_error(kind, value, dimension=self._dimension)
            if error is not None:
                return f"failed to parse field [{path}] of type [{kind}]: {error}"
        return None

    # -- reads ---------------------------------------------------------------------------------------------

    def search_text(self, text: str, *, k: int) -> list[Hit]:
        """Best matches for the words of ``text`` in the key (weighted twice) and the extracted text."""
        words = _words(text)
        if not words or k <= 0:
            return []
        try:
            if self._full_text:
                return self._search_fts(words, k)
            return self._search_scan(words, k)
        except sqlite3.Error as exc:
            raise TransientError(f"searching local index {self._path}: {exc}") from exc

    def _search_fts(self, words: list[str], k: int) -> list[Hit]:
        # Each word quoted: FTS5 syntax (AND, NEAR, *, :) in a user's query is matched as text.
        match = " OR ".join(f'"{word}"' for word in words)
        rows = (
            self._connection()
            .execute(
                f"""SELECT d.doc_id, d.source, -bm25(documents_fts, {_KEY_WEIGHT}, 1.0) AS score
                FROM documents_fts JOIN documents AS d ON d.id = documents_fts.rowid
                WHERE documents_fts MATCH ? AND d.deleted = 0
                ORDER BY score DESC, d.doc_id LIMIT ?""",  # noqa: S608  # a constant, not input
                (match, k),
            )
            .fetchall()
        )
        return [Hit(doc_id=row[0], score=float(row[2]), source=_hit_source(row[1])) for row in rows]

    def _search_scan(self, words: list[str], k: int) -> list[Hit]:
        """Without FTS5: term counts over every live row, key words weighted as in the FTS5 ranking."""
        wanted = set(words)
        scored: list[tuple[float, str, str]] = []
        for doc_id, raw in self._connection().execute(
            "SELECT doc_id, source FROM documents WHERE deleted = 0"
        ):
            source = json.loads(raw)
            score = _KEY_WEIGHT * sum(w in wanted for w in _words(_as_text(source.get("key")))) + sum(
                w in wanted for w in _words(_as_text(source.get("text")))
            )
            if score > 0:
                scored.append((float(score), doc_id, raw))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [Hit(doc_id=doc_id, score=score, source=_hit_source(raw)) for score, doc_id, raw in scored[:k]]

    def search_vector(self, vector: Sequence[float], *, k: int) -> list[Hit]:
        """Exact nearest neighbours by cosine, scored (1 + cos) / 2 like OpenSearch's cosinesimil."""
        if len(vector) != self._dimension:
            raise ValueError(f"query vector has {len(vector)} values, the index holds {self._dimension}")
        query = np.asarray(vector, dtype=np.float32)
        query_norm = float(np.linalg.norm(query))
        if k <= 0 or query_norm == 0.0:
            return []
        try:
            rows = (
                self._connection()
                .execute(
                    "SELECT doc_id, source, embedding FROM documents "
                    "WHERE deleted = 0 AND embedding IS NOT NULL ORDER BY doc_id"
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            raise TransientError(f"searching local index {self._path}: {exc}") from exc
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(row[2] for row in rows), dtype="<f4").reshape(len(rows), -1)
        norms = np.linalg.norm(matrix, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cosine = (matrix @ query) / (norms * query_norm)
        scores = np.where(norms > 0, (1.0 + cosine) / 2.0, -np.inf)  # a zero vector has no direction
        order = np.argsort(-scores, kind="stable")[:k]
        return [
            Hit(doc_id=rows[i][0], score=float(scores[i]), source=_hit_source(rows[i][1]))
            for i in order
            if np.isfinite(scores[i])
        ]

    def get(self, doc_id: str) -> dict[str, Any] | None:
        """The stored document (tombstones included), embedding restored as floats, or None."""
        try:
            row = (
                self._connection()
                .execute("SELECT source, embedding FROM documents WHERE doc_id = ?", (doc_id,))
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise TransientError(f"reading {doc_id} from local index {self._path}: {exc}") from exc
        if row is None:
            return None
        source: dict[str, Any] = json.loads(row[0])
        if row[1] is not None:
            source[EMBEDDING_FIELD] = np.frombuffer(row[1], dtype="<f4").astype(float).tolist()
        return source

    def count(self) -> int:
        """Live documents (tombstones excluded)."""
        try:
            (live,) = (
                self._connection().execute("SELECT count(*) FROM documents WHERE deleted = 0").fetchone()
            )
        except sqlite3.Error as exc:
            raise TransientError(f"counting local index {self._path}: {exc}") from exc
        return int(live)

    def ping(self) -> None:
        """Raise TransientError unless the file opens and has been initialised by ensure_index."""
        if not os.path.exists(self._path):  # a probe must not create the file before the worker does
            raise TransientError(f"local index {self._path} does not exist yet (the worker creates it)")
        try:
            self._connection().execute("SELECT value FROM meta WHERE name = 'dimension'").fetchone()
        except sqlite3.Error as exc:
            raise TransientError(f"local index {self._path} is not usable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(_as_text(item) for item in value)
    return str(value)


def _hit_source(raw: str) -> dict[str, Any]:
    source: dict[str, Any] = json.loads(raw)
    for name in HIT_SOURCE_EXCLUDES:
        source.pop(name, None)
    return source


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_error(kind: str, value: Any, *, dimension: int) -> str | None:
    """Why OpenSearch would refuse ``value`` for a field of type ``kind``, or None if it would take it."""
    if kind == "knn_vector":
        if not isinstance(value, list) or not all(_is_finite_number(x) for x in value):
            return f"expected a list of finite numbers, got {_preview(value)}"
        if len(value) != dimension:
            return f"vector dimension mismatch: expected {dimension}, given {len(value)}"
        return None
    if kind == "geo_point":
        return _geo_point_error(value)
    if isinstance(value, list):  # OpenSearch takes an array of values for any other field
        return next((e for e in (_type_error(kind, item, dimension=dimension) for item in value) if e), None)
    return _scalar_error(kind, value)


def _scalar_error(kind: str, value: Any) -> str | None:
    if isinstance(value, Mapping):
        return f"expected a {kind} value, got an object {_preview(value)}"
    if kind in _INTEGER_RANGE:
        number = _as_integer(value)
        if number is None:
            return f"not a whole number: {_preview(value)}"
        bound = _INTEGER_RANGE[kind]
        return None if -bound <= number < bound else f"{number} is out of range for {kind}"
    if kind == "boolean":
        ok = isinstance(value, bool) or (isinstance(value, str) and value in _BOOLEAN_STRINGS)
        return None if ok else f"not a boolean: {_preview(value)}"
    if kind == "date":
        return None if _is_date(value) else f"not a date (ISO 8601 or epoch millis): {_preview(value)}"
    return None  # keyword and text take any scalar


def _as_integer(value: Any) -> int | None:
    """OpenSearch coerces numeric strings and truncates fractions for whole-number fields."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return int(number) if math.isfinite(number) else None
    return None


def _is_date(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _geo_point_error(value: Any) -> str | None:
    lat: Any
    lon: Any
    if isinstance(value, Mapping):
        lat, lon = value.get("lat"), value.get("lon")
    elif isinstance(value, list) and len(value) == 2:
        lon, lat = value  # GeoJSON order
    elif isinstance(value, str) and value.count(",") == 1:
        lat, lon = (_as_float(part) for part in value.split(","))
    else:
        return f"expected {{'lat', 'lon'}}, got {_preview(value)}"
    if not (_is_finite_number(lat) and _is_finite_number(lon)):
        return f"lat and lon must be numbers, got {_preview(value)}"
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return f"lat/lon out of range: {_preview(value)}"
    return None


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
