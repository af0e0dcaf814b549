"""What a file really is, from its first bytes (puremagic), not from its name or its declared type.

Magic bytes cannot tell plain text from CSV or Markdown, nor one ZIP-based format from another: the
extension only ever chooses among the candidates the content itself allows.
"""

from __future__ import annotations

import json
import posixpath

import puremagic
from charset_normalizer import from_bytes

EMPTY = "application/x-empty"
BINARY = "application/octet-stream"
TEXT = "text/plain"
_TEXT_BY_EXTENSION = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".json": "application/json",
    ".ndjson": "application/x-ndjson",
}
# puremagic reports some types under historical names
_CANONICAL = {"image/x-ms-bmp": "image/bmp", "image/x-bmp": "image/bmp", "image/jpg": "image/jpeg"}


def extension_of(key: str) -> str:
    return posixpath.splitext(key)[1].lower()


def sniff(head: bytes, *, key: str) -> str:
    """The MIME type of content starting with ``head`` (a few KiB are plenty)."""
    if not head:
        return EMPTY
    if mime := _by_magic(head, extension_of(key)):
        return mime
    if is_text(head):
        hinted = _TEXT_BY_EXTENSION.get(extension_of(key), TEXT)
        if hinted == "application/json" and not _is_json(head):
            return TEXT
        return hinted
    return BINARY


def _by_magic(head: bytes, extension: str) -> str | None:
    try:  # no filename: puremagic would otherwise add guesses made from the extension alone
        matches = [m for m in puremagic.magic_string(head) if m.mime_type]
    except (puremagic.PureError, ValueError):
        return None
    if not matches:
        return None
    best = [m for m in matches if m.confidence == matches[0].confidence]
    if len({m.mime_type for m in best}) > 1:  # e.g. a ZIP header fits .docx, .xlsx and .pptx alike
        named = [m for m in best if m.extension == extension]
        if not named and head.startswith(b"PK\x03\x04"):
            return "application/zip"
        best = named or best
    mime = str(_CANONICAL.get(best[0].mime_type, best[0].mime_type))
    if mime == "application/json" and not _is_json(head):
        return None  # puremagic's JSON guess is a leading brace; the text check decides
    return mime


def is_text(head: bytes) -> bool:
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 has NULs
        return False
    best = from_bytes(head).best()
    return best is not None


def _is_json(head: bytes) -> bool:
    stripped = head.lstrip()
    if not stripped.startswith((b"{", b"[")):
        return False
    try:
        json.loads(head)
    except UnicodeDecodeError:
        return False
    except ValueError as exc:
        # A head cut mid-document is still JSON if the decoder got to the end of what it was given.
        return isinstance(exc, json.JSONDecodeError) and exc.pos >= len(head.decode("utf-8", "ignore")) - 1
    return True
