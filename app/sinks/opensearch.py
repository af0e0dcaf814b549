"""The OpenSearch sink: an explicit mapping, and writes behind the sequencer guard of app.document.

**The guard, as OpenSearch sees it.** One ``_mget`` reads the stored sequencer (and ``_seq_no`` /
``_primary_term``) of every document a batch touches; :func:`app.document.is_newer` decides per operation;
one ``_bulk`` writes what may be written, each action conditional: ``create`` when the document was absent,
``index`` with ``if_seq_no``/``if_primary_term`` when it existed. If another worker wrote the same document
in between, that item answers 409 and only those documents are read and decided again (a bounded number of
rounds: each conflict means somebody else's write landed, so the loop makes progress). A GET/mget is
real-time by default, so the guard never needs a refresh to see the latest write.

Why this survives DESIGN.md's three traps, where external versioning would not:

1. A sequencer longer than 63 bits: it is compared as a string by ``is_newer``, never given to OpenSearch as
   a version number; OpenSearch only sees its own ``_seq_no``.
2. Events without a sequencer: ``is_newer`` lets them write (last writer wins) and ``stored_source`` keeps
   the stored sequencer, so a later sequenced event still compares against it.
3. ``index.gc_deletes``: a removal writes a *tombstone document* (``deleted: true`` plus the removal's
   sequencer) instead of a hard delete. A document is never garbage-collected, so a stale create arriving
   days later still finds the tombstone and is judged stale.

Idempotence across retries comes from the same place: a bulk replayed after a timeout meets 409s, re-reads,
and finds its own sequencer already stored (stale, which is success for the caller).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final
from urllib.parse import urlsplit

import boto3
from opensearchpy import OpenSearch, RequestsAWSV4SignerAuth, RequestsHttpConnection
from opensearchpy import exceptions as os_errors

from app.config import ConfigError, SinkSettings
from app.document import (
    DELETED_FIELD,
    EMBEDDING_FIELD,
    FIELD_TYPES,
    HIT_SOURCE_EXCLUDES,
    SEQUENCER_FIELD,
    Hit,
    Operation,
    Upsert,
    may_write,
    stored_source,
)
from app.errors import FileError, PermanentError, TransientError
from app.sinks import IndexMismatch, WriteOutcome

log = logging.getLogger(__name__)

SPACE_TYPE: Final = "cosinesimil"
# Lucene's HNSW takes cosinesimil on OpenSearch 2.2 onwards and on 3.x (where nmslib can no longer create an
# index); Faiss takes cosinesimil only from 2.19. Amazon OpenSearch Serverless documents the Lucene engine as
# unsupported for vector collections, so the factory asks for Faiss there.
DEFAULT_ENGINE: Final = "lucene"
ENGINES: Final = ("lucene", "faiss")
# Explicit rather than the plugin's defaults, which changed in 2.11 (ef_construction 512 -> 100): an index
# built by one worker version and read by another must not depend on which plugin created it.
HNSW_PARAMETERS: Final = {"m": 16, "ef_construction": 100}
MAX_CONFLICT_ROUNDS: Final = 5
KEYWORD_IGNORE_ABOVE: Final = 1024  # S3 keys are at most 1024 bytes; longer values are stored, not indexed
KEY_ANALYZER: Final = "s3_key_words"

_GUARD_FIELDS: Final = (
    SEQUENCER_FIELD,
    DELETED_FIELD,
    "event_time",
)  # what the guard reads of a stored document
_NOT_DELETED: Final = {"bool": {"must_not": [{"term": {DELETED_FIELD: True}}]}}


def index_body(dimension: int, *, engine: str = DEFAULT_ENGINE) -> dict[str, Any]:
    """Settings and mapping of the files index.

    ``dynamic: false``: a field the mapping does not name is kept in ``_source`` but not indexed. A new
    pipeline field therefore never fails a write or grows the mapping by guesswork (``true`` would let the
    first document's value fix a type forever; ``strict`` would dead-letter files over a harmless addition).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    properties: dict[str, Any] = {}
    for path, kind in FIELD_TYPES.items():
        *parents, leaf = path.split(".")
        node = properties
        for parent in parents:
            node = node.setdefault(parent, {"properties": {}})["properties"]
        node[leaf] = _field_mapping(kind, dimension=dimension, engine=engine)
    properties["key"]["fields"] = {
        # Words and numbers of a key: "photos/IMG_2041.red-flower.JPG" -> photos img 2041 red flower jpg.
        "text": {"type": "text", "analyzer": KEY_ANALYZER},
        # Letters only (the built-in simple analyzer). Redundant on OpenSearch, where multi_match's
        # best_fields takes the better of the two, but it is the analyzer osmem-server (the test
        # emulator) applies at index time; its pattern analyzer works in _analyze only.
        "letters": {"type": "text", "analyzer": "simple"},
    }
    return {
        "settings": {
            "index": {"knn": True},
            "analysis": {
                "analyzer": {
                    KEY_ANALYZER: {"type": "pattern", "pattern": r"[^\p{L}\p{N}]+", "lowercase": True}
                }
            },
        },
        "mappings": {"dynamic": False, "properties": properties},
    }


def _field_mapping(kind: str, *, dimension: int, engine: str) -> dict[str, Any]:
    if kind == "knn_vector":
        return {
            "type": "knn_vector",
            "dimension": dimension,
            "method": {
                "name": "hnsw",
                "engine": engine,
                "space_type": SPACE_TYPE,
                "parameters": dict(HNSW_PARAMETERS),
            },
        }
    if kind == "keyword":
        return {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}
    return {"type": kind}


def build_opensearch_client(settings: SinkSettings, session: boto3.session.Session | None) -> OpenSearch:
    """A client for ``settings.opensearch_url``; builds no connection until the first request."""
    url = settings.opensearch_url
    if not url:
        raise ConfigError("OPENSEARCH_URL is required when INDEX_SINK=opensearch")
    use_ssl = urlsplit(url).scheme == "https"
    auth: Any = None
    if settings.auth == "basic":
        auth = (settings.username, settings.password)
    elif settings.auth == "sigv4":
        auth = _sigv4_auth(session, service=settings.sigv4_service)
    return OpenSearch(
        hosts=[url],
        http_auth=auth,
        use_ssl=use_ssl,
        verify_certs=True,  # only consulted for https; never turned off
        connection_class=RequestsHttpConnection,  # what the SigV4 signer hooks into
        timeout=30,
        # Retrying a bulk after a timeout is safe here: its conditional writes meet 409 and re-decide.
        max_retries=2,
        retry_on_timeout=True,
        http_compress=True,  # documents carry up to 100k chars of text and a vector
    )


class _SigV4Auth(RequestsAWSV4SignerAuth):
    """opensearch-py's SigV4 signer, signing only ``host``, ``content-type`` and ``x-amz-*``.

    opensearch-py 3.2.0 signs every prepared header (opensearch-py issues #1044 and #1047, open when this
    was written); a proxy or load balancer that rewrites a hop-by-hop or encoding header then breaks the
    signature with a 403 (seen against OpenSearch Serverless). Signing the headers 3.1 signed avoids that.
    """

    _SIGNED = frozenset({"content-type"})

    def __call__(self, request: Any) -> Any:
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in self._SIGNED or name.lower().startswith("x-amz-")
        }
        request.headers.update(
            self.signer.sign(method=request.method, url=request.url, body=request.body, headers=headers)
        )
        return request


def _sigv4_auth(session: boto3.session.Session | None, *, service: str) -> _SigV4Auth:
    if session is None:
        raise ConfigError("OPENSEARCH_AUTH=sigv4 needs an AWS session (a bug: build_sink was given none)")
    credentials = session.get_credentials()
    if credentials is None:
        raise ConfigError(
            "OPENSEARCH_AUTH=sigv4 but no AWS credentials were found: attach an instance role, or set "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use OPENSEARCH_AUTH=basic|none"
        )
    if not session.region_name:
        raise ConfigError("OPENSEARCH_AUTH=sigv4 needs a region: set AWS_REGION")
    # RefreshableCredentials: the signer freezes them per request, so an instance role keeps rotating.
    return _SigV4Auth(credentials, session.region_name, service)


@dataclass(frozen=True, slots=True)
class _Stored:
    """What the guard needs of a stored document (``source`` holds only the guard's fields)."""

    found: bool
    source: dict[str, Any] | None = None
    seq_no: int | None = None
    primary_term: int | None = None


class _Retry(Enum):
    CONFLICT = "conflict"  # another writer changed the document between our read and our write


class OpenSearchSink:
    """Indexes file documents into one OpenSearch index (see the module docstring for the guard)."""

    def __init__(
        self,
        client: OpenSearch,
        *,
        index: str,
        dimension: int,
        engine: str = DEFAULT_ENGINE,
        max_conflict_rounds: int = MAX_CONFLICT_ROUNDS,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
        self._client = client
        self._index = index
        self._dimension = dimension
        self._engine = engine
        self._max_rounds = max_conflict_rounds

    # -- index ---------------------------------------------------------------------------------------------

    def ensure_index(self) -> None:
        """Create the index if absent, then check that it can hold this worker's embeddings.

        Existence is asked first (HEAD needs only describe rights) so a worker whose role may not create
        indexes still starts against a provisioned one. Two workers creating at once is fine: the loser
        gets resource_already_exists and checks the winner's mapping like any existing index.
        """
        try:
            if not self._client.indices.exists(index=self._index):
                self._create_index()
            mappings = self._client.indices.get_mapping(index=self._index)
        except os_errors.TransportError as exc:
            raise _request_failure(exc, action=f"preparing index {self._index}") from exc
        self._check_mapping(mappings)

    def _create_index(self) -> None:
        try:
            self._client.indices.create(
                index=self._index, body=index_body(self._dimension, engine=self._engine)
            )
            log.info("index.created", extra={"index": self._index, "dimension": self._dimension})
        except os_errors.RequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise IndexMismatch(
                    f"OpenSearch refused to create index {self._index}: {exc.error}: {_info_reason(exc)}"
                ) from exc

    def _check_mapping(self, mappings: Mapping[str, Any]) -> None:
        # Keyed by the concrete index name, which differs from ours when OPENSEARCH_INDEX is an alias.
        concrete: Mapping[str, Any] = next(iter(mappings.values()), {})
        mapping: Mapping[str, Any] = concrete.get("mappings", {})
        field = mapping.get("properties", {}).get(EMBEDDING_FIELD)
        if not field or field.get("type") != "knn_vector":
            raise IndexMismatch(
                f"index {self._index} exists but its {EMBEDDING_FIELD!r} field is "
                f"{(field or {}).get('type', 'missing')}, not knn_vector: it was not created by filefleet. "
                "Set OPENSEARCH_INDEX to a new name (the worker creates it), or delete this index."
            )
        stored = int(field.get("dimension", 0))
        if stored != self._dimension:
            raise IndexMismatch(
                f"index {self._index} holds {stored}-dimension embeddings but EMBEDDING_DIMENSION="
                f"{self._dimension}: set EMBEDDING_DIMENSION={stored} to keep using it, or set "
                "OPENSEARCH_INDEX to a new name (the worker creates it) and reprocess the bucket into it."
            )

    # -- writes --------------------------------------------------------------------------------------------

    def write(self, operations: Sequence[Operation]) -> list[WriteOutcome | FileError]:
        """Apply each operation behind the guard; one result per operation, in order; never raises.

        No refresh is asked for: an acknowledged bulk item is already durable (OpenSearch fsyncs its
        translog before answering, index.translog.durability=request), and the guard reads with a real-time
        mget. A refresh only makes documents searchable sooner, at a cost on every batch.
        """
        results: list[WriteOutcome | FileError | None] = [None] * len(operations)
        for position, operation in enumerate(operations):
            results[position] = _unserialisable(operation)
        try:
            # Operations on the same document are applied in batch order: the k-th operation of each
            # document goes in round k, after the one before it has been decided and written.
            for wave in _waves(operations, skip=results):
                self._write_wave(operations, wave, results)
        except Exception as exc:  # a bug must not lose the batch: log it, and let every operation retry
            log.exception("index.write_failed")
            failure = TransientError(f"indexing into {self._index} failed unexpectedly: {exc!r}")
            results = [failure if result is None else result for result in results]
        return [
            result
            if result is not None
            else TransientError(f"indexing into {self._index}: operation was not attempted")
            for result in results
        ]

    def _write_wave(
        self,
        operations: Sequence[Operation],
        pending: list[int],
        results: list[WriteOutcome | FileError | None],
    ) -> None:
        for _round in range(self._max_rounds):
            pending = self._write_round(operations, pending, results)
            if not pending:
                return
        for i in pending:
            log.warning("index.conflicts_exhausted", extra={"doc_id": operations[i].doc_id})
            results[i] = TransientError(
                f"document {operations[i].doc_id} in {self._index} was rewritten by other writers "
                f"{self._max_rounds} times while this worker tried to write it; retrying later",
                error_class="version_conflict_engine_exception",
            )

    def _write_round(
        self,
        operations: Sequence[Operation],
        pending: list[int],
        results: list[WriteOutcome | FileError | None],
    ) -> list[int]:
        """One read-decide-write pass over ``pending``; returns the positions that met a conflict."""
        try:
            stored = self._read_guard_fields([operations[i].doc_id for i in pending])
        except os_errors.TransportError as exc:
            _fail(pending, results, _request_failure(exc, action=f"reading from {self._index}"))
            return []
        actions: list[dict[str, Any]] = []
        sent: list[int] = []
        for i in pending:
            operation = operations[i]
            current = stored[operation.doc_id]
            if isinstance(current, FileError):
                results[i] = current
                continue
            decision = may_write(operation, current.source)
            if isinstance(decision, FileError):
                results[i] = decision
            elif decision:
                actions += [self._action(operation.doc_id, current), stored_source(operation, current.source)]
                sent.append(i)
            else:
                results[i] = WriteOutcome.STALE
        if not sent:
            return []
        try:
            response = self._client.bulk(body=actions)
        except os_errors.TransportError as exc:
            _fail(sent, results, _request_failure(exc, action=f"writing to {self._index}"))
            return []
        conflicted: list[int] = []
        for i, item in zip(sent, response["items"], strict=True):
            outcome = _item_outcome(item)
            if outcome is _Retry.CONFLICT:
                conflicted.append(i)
            else:
                results[i] = outcome
        return conflicted

    def _read_guard_fields(self, doc_ids: list[str]) -> dict[str, _Stored | FileError]:
        response = self._client.mget(
            index=self._index, body={"ids": doc_ids}, params={"_source_includes": ",".join(_GUARD_FIELDS)}
        )
        stored: dict[str, _Stored | FileError] = {}
        for doc in response["docs"]:
            if "error" in doc:
                stored[doc["_id"]] = self._read_failure(doc["_id"], doc["error"])
            elif doc.get("found"):
                stored[doc["_id"]] = _Stored(
                    found=True,
                    source=doc.get("_source") or {},
                    seq_no=doc["_seq_no"],
                    primary_term=doc["_primary_term"],
                )
            else:
                stored[doc["_id"]] = _Stored(found=False)
        return stored

    def _read_failure(self, doc_id: str, error: Any) -> TransientError:
        """One document could not be read (a shard failure, the index gone): retry it later."""
        if not isinstance(error, Mapping):
            error = {"reason": str(error)}
        kind = str(error.get("type") or "mget_error")
        reason = f"reading {doc_id} from {self._index}: {kind}: {error.get('reason')}"
        if kind == "index_not_found_exception":
            reason += " (the worker creates the index at startup: restart it, or check OPENSEARCH_INDEX)"
        return TransientError(reason, error_class=kind)

    def _action(self, doc_id: str, current: _Stored) -> dict[str, Any]:
        header: dict[str, Any] = {"_index": self._index, "_id": doc_id}
        if not current.found:
            return {"create": header}  # fails with 409 if another writer created it first
        return {"index": {**header, "if_seq_no": current.seq_no, "if_primary_term": current.primary_term}}

    # -- reads ---------------------------------------------------------------------------------------------

    def search_text(self, text: str, *, k: int) -> list[Hit]:
        """Best matches for the words of ``text`` in the key (boosted) and the extracted text."""
        if not text.strip() or k <= 0:
            return []
        query = {
            "bool": {
                "must": {"multi_match": {"query": text, "fields": ["key.text^2", "key.letters^2", "text"]}},
                **_NOT_DELETED["bool"],
            }
        }
        return self._search({"size": k, "query": query})

    def search_vector(self, vector: Sequence[float], *, k: int) -> list[Hit]:
        """Nearest neighbours by cosine similarity (score = (1 + cos) / 2, OpenSearch's cosinesimil scale).

        The filter is applied during the graph search (Lucene from 2.4, Faiss from 2.9), so k live
        documents come back rather than k minus the tombstones. Tombstones carry no vector anyway; the
        filter keeps that an implementation detail. osmem-server cannot run kNN queries.
        """
        if len(vector) != self._dimension:
            raise ValueError(f"query vector has {len(vector)} values, the index holds {self._dimension}")
        if k <= 0:
            return []
        query = {EMBEDDING_FIELD: {"vector": [float(x) for x in vector], "k": k, "filter": _NOT_DELETED}}
        return self._search({"size": k, "query": {"knn": query}})

    def _search(self, body: dict[str, Any]) -> list[Hit]:
        body["_source"] = {"excludes": list(HIT_SOURCE_EXCLUDES)}
        try:
            response = self._client.search(index=self._index, body=body)
        except os_errors.TransportError as exc:
            raise _request_failure(exc, action=f"searching {self._index}") from exc
        return [
            Hit(doc_id=hit["_id"], score=float(hit.get("_score") or 0.0), source=hit.get("_source") or {})
            for hit in response["hits"]["hits"]
        ]

    def get(self, doc_id: str) -> dict[str, Any] | None:
        """The stored ``_source`` of a document (tombstones included), or None."""
        try:
            response = self._client.get(index=self._index, id=doc_id)
        except os_errors.NotFoundError:
            return None
        except os_errors.TransportError as exc:
            raise _request_failure(exc, action=f"reading {doc_id} from {self._index}") from exc
        return dict(response["_source"])

    def count(self) -> int:
        """Live documents (tombstones excluded), as of the last refresh."""
        try:
            response = self._client.count(index=self._index, body={"query": _NOT_DELETED})
        except os_errors.TransportError as exc:
            raise _request_failure(exc, action=f"counting {self._index}") from exc
        return int(response["count"])

    def ping(self) -> None:
        """Raise TransientError unless the index answers (HEAD index: allowed on Serverless, unlike GET /)."""
        try:
            exists = self._client.indices.exists(index=self._index)
        except os_errors.TransportError as exc:
            raise _request_failure(exc, action=f"checking index {self._index}") from exc
        if not exists:
            raise TransientError(f"index {self._index} does not exist (the worker creates it at startup)")

    def close(self) -> None:
        self._client.close()


def _fail(positions: list[int], results: list[WriteOutcome | FileError | None], error: FileError) -> None:
    for i in positions:
        results[i] = error


def _waves(operations: Sequence[Operation], *, skip: Sequence[object]) -> list[list[int]]:
    """Positions grouped so that each group holds at most one operation per document, in batch order."""
    waves: list[list[int]] = []
    seen: dict[str, int] = {}
    for position, operation in enumerate(operations):
        if skip[position] is not None:
            continue
        rank = seen.get(operation.doc_id, 0)
        seen[operation.doc_id] = rank + 1
        if rank == len(waves):
            waves.append([])
        waves[rank].append(position)
    return waves


def _unserialisable(operation: Operation) -> PermanentError | None:
    """A document JSON cannot carry (NaN, an object) would fail the whole bulk request, not just itself."""
    if not isinstance(operation, Upsert):
        return None
    try:
        json.dumps(operation.source, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return PermanentError(
            f"document {operation.doc_id} cannot be sent as JSON ({exc}): a pipeline bug; fix, then redrive",
            error_class="SerializationError",
        )
    return None


def _item_outcome(item: Mapping[str, Any]) -> WriteOutcome | FileError | _Retry:
    ((_action, body),) = item.items()
    status = int(body.get("status", 0))
    if 200 <= status < 300:
        return WriteOutcome.APPLIED
    if status == 409:
        return _Retry.CONFLICT
    error = body.get("error") or {}
    if not isinstance(error, Mapping):
        error = {"reason": str(error)}
    kind = str(error.get("type") or f"http_{status}")
    reason = f"OpenSearch rejected document {body.get('_id')} (HTTP {status}): {kind}: {error.get('reason')}"
    caused_by = error.get("caused_by")
    if isinstance(caused_by, Mapping) and caused_by.get("reason"):
        reason += f" ({caused_by.get('reason')})"
    if status == 400:
        # mapper_parsing_exception, illegal_argument_exception...: this document fails every time.
        return PermanentError(reason + ": fix the pipeline or the mapping, then redrive", error_class=kind)
    # 429 (too many requests), 5xx, 403 cluster_block (disk full), 404 (index deleted): may pass later.
    return TransientError(reason, error_class=kind)


def _request_failure(exc: os_errors.TransportError, *, action: str) -> TransientError:
    """A whole request failed: nothing about one document is known, so every operation may retry."""
    if isinstance(exc, os_errors.ConnectionTimeout):
        return TransientError(
            f"{action}: OpenSearch timed out: {exc.info!r}", error_class="ConnectionTimeout"
        )
    if isinstance(exc, os_errors.ConnectionError):
        return TransientError(
            f"{action}: OpenSearch unreachable: {exc.info!r}", error_class="ConnectionError"
        )
    status = exc.status_code
    reason = f"{action}: OpenSearch answered HTTP {status}: {exc.error}: {_info_reason(exc)}"
    if status in (401, 403):
        reason += " (check OPENSEARCH_AUTH and the role's access to the index)"
    return TransientError(reason, error_class=str(exc.error))


def _info_reason(exc: os_errors.TransportError) -> str:
    info = exc.info
    if isinstance(info, Mapping):
        error = info.get("error")
        if isinstance(error, Mapping):
            return str(error.get("reason", error))
        return str(error if error is not None else info)
    return str(info)
