"""`filefleet search`: by words, by meaning (Titan), or for files like a local one."""

from __future__ import annotations

from pathlib import Path

from app.config import PipelineSettings
from app.document import Hit
from app.errors import PermanentError
from app.pipeline.extract import extract
from app.pipeline.fetch import FetchedObject
from app.pipeline.handler import embedding_of
from app.pipeline.sniff import sniff
from app.runtime import IndexRuntime

SEMANTIC_EMBEDDERS = ("amazon.titan",)  # the local embedder measures likeness of pixels, not meaning


def search(
    index: IndexRuntime, *, text: str | None, like: Path | None, k: int, lexical: bool = False
) -> list[Hit]:
    if like is not None:
        return index.sink.search_vector(_embed_file(index, like), k=k)
    assert text is not None
    embedder = index.embedder
    if not lexical and embedder is not None and embedder.model_id.startswith(SEMANTIC_EMBEDDERS):
        return index.sink.search_vector(embedder.embed(text=text), k=k)
    return index.sink.search_text(text, k=k)


def _embed_file(index: IndexRuntime, path: Path) -> list[float]:
    if index.embedder is None:
        raise PermanentError("--like needs an embedder: set EMBEDDER=titan or EMBEDDER=local")
    with path.open("rb") as file:
        obj = FetchedObject(
            bucket="local",
            key=path.name,
            size=path.stat().st_size,
            etag=None,
            version_id=None,
            last_modified=None,
            declared_content_type=None,
            file=file,
        )
        extraction = extract(obj, sniff(obj.head(), key=path.name), PipelineSettings.from_env({}))
    vector = embedding_of(extraction, index.embedder)
    if vector is None:
        raise PermanentError(f"{path}: neither an image nor text, so there is nothing to compare it by")
    return vector


def print_hits(hits: list[Hit], *, indent: str = "") -> None:
    if not hits:
        print(f"{indent}no match")
        return
    width = max(len(str(hit.source.get("key", ""))) for hit in hits)
    for hit in hits:
        source = hit.source
        print(
            f"{indent}{source.get('key', hit.doc_id):<{width}}  {hit.score:7.4f}  "
            f"{source.get('content_type', '-'):<24}  {_size(source.get('size'))}"
        )


def _size(size: object) -> str:
    if not isinstance(size, int):
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
