"""Choose what to read out of a file by its sniffed type: image metadata, text, PDF text, or nothing."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import PipelineSettings
from app.pipeline.fetch import FetchedObject
from app.pipeline.images import PreparedImage, prepare_image
from app.pipeline.sniff import EMPTY
from app.pipeline.text import ExtractedText, read_pdf, read_text

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/tiff", "image/bmp"})
TEXT_TYPES = frozenset(
    {"application/json", "application/x-ndjson", "text/tab-separated-values", "application/xml", "text/xml"}
)
PDF = "application/pdf"


@dataclass(frozen=True)
class Extraction:
    kind: str  # image | text | pdf | none
    image: PreparedImage | None = None
    text: ExtractedText | None = None
    reason: str | None = None  # why only metadata was indexed

    @property
    def status(self) -> str:
        return "metadata_only" if self.reason else "ok"


def extract(obj: FetchedObject, content_type: str, settings: PipelineSettings) -> Extraction:
    """Corrupt images raise PermanentError; anything else unreadable indexes its metadata with a reason."""
    if content_type in IMAGE_TYPES:
        image = prepare_image(
            obj.file, key=obj.key, max_pixels=settings.max_image_pixels, index_gps=settings.index_gps
        )
        return Extraction(kind="image", image=image)
    if content_type.startswith("text/") or content_type in TEXT_TYPES:
        return Extraction(kind="text", text=read_text(obj.file, max_chars=settings.text_max_chars))
    if content_type == PDF:
        text = read_pdf(obj.file, max_pages=settings.pdf_max_pages, max_chars=settings.text_max_chars)
        return Extraction(kind="pdf", text=text, reason=text.reason)
    if content_type == EMPTY:
        return Extraction(kind="none", reason="empty file")
    if content_type.startswith("image/"):
        return Extraction(kind="none", reason=f"image type {content_type} is not decoded: metadata only")
    return Extraction(kind="none", reason=f"no text or image in {content_type}: metadata only")
