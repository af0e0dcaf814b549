"""Text out of text files (any encoding) and PDFs, capped, with the reason when only metadata is possible."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import IO

from charset_normalizer import from_bytes
from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

log = logging.getLogger(__name__)

_DETECT_BYTES = 64 * 1024  # enough for charset-normalizer to be sure, small enough to be quick
_WORST_UTF8_BYTES_PER_CHAR = 4


@dataclass(frozen=True)
class ExtractedText:
    text: str
    truncated: bool
    page_count: int | None = None
    encoding: str | None = None
    reason: str | None = None  # set when the text could not be read: the document keeps its metadata

    @property
    def ok(self) -> bool:
        return self.reason is None


def read_text(file: IO[bytes], *, max_chars: int) -> ExtractedText:
    """Decode a text file in whatever encoding it uses; never read more than the cap needs."""
    file.seek(0)
    raw = file.read(max_chars * _WORST_UTF8_BYTES_PER_CHAR + 1)
    more = bool(file.read(1))
    encoding = _encoding(raw[:_DETECT_BYTES])
    text = raw.decode(encoding, errors="replace").lstrip("\ufeff")
    truncated = more or len(text) > max_chars
    return ExtractedText(text=text[:max_chars], truncated=truncated, encoding=encoding)


def read_pdf(file: IO[bytes], *, max_pages: int, max_chars: int) -> ExtractedText:
    """Text of the first ``max_pages`` pages. Encrypted or broken PDFs give metadata only, with the reason."""
    file.seek(0)
    try:
        reader = PdfReader(file)
        if reader.is_encrypted and not reader.decrypt(""):
            return _metadata_only("encrypted PDF: it needs a password to read")
        pages = len(reader.pages)
        parts: list[str] = []
        length = 0
        for page in reader.pages[:max_pages]:
            part = page.extract_text() or ""
            parts.append(part)
            length += len(part)
            if length >= max_chars:
                break
    except (FileNotDecryptedError, DependencyError) as exc:
        return _metadata_only(f"encrypted PDF: {exc}")
    except (PyPdfError, ValueError, TypeError, KeyError, AttributeError, RecursionError, OSError) as exc:
        # pypdf signals malformed files with these as well as its own errors
        return _metadata_only(f"unreadable PDF: {type(exc).__name__}: {exc}"[:300])
    text = "\n".join(parts)
    truncated = len(text) > max_chars or pages > max_pages
    return ExtractedText(text=text[:max_chars], truncated=truncated, page_count=pages)


def _encoding(sample: bytes) -> str:
    if not sample:
        return "utf-8"
    best = from_bytes(sample).best()
    return best.encoding if best is not None else "utf-8"


def _metadata_only(reason: str) -> ExtractedText:
    return ExtractedText(text="", truncated=False, reason=reason)
