"""The bad-input corpus: real file formats, broken in the ways real uploads are, each with its outcome.

Files are built here, deterministically, from the formats' own encoders (Pillow, pypdf) or by hand where
the point is that no encoder would write them. ``expect`` is what the whole pipeline must do:
``indexed`` (content read), ``metadata_only`` (document written, with the reason), ``dead_letter:<class>``,
or ``gone``.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from app import samples


@dataclass(frozen=True)
class Case:
    name: str
    key: str
    data: bytes | None  # None: the object is never uploaded (a message about a missing object)
    expect: str
    fields: dict[str, Any] = field(default_factory=dict)  # document fields that must hold
    declared_size: int | None = None  # a message claiming this size (instead of S3's own notification)


def _image(mode: str, size: tuple[int, int], fmt: str, **save: Any) -> bytes:
    image = Image.new(mode, size, color="red" if mode in ("RGB", "RGBA", "CMYK") else 128)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _noise_png(width: int, height: int) -> bytes:
    image = Image.frombytes(
        "RGB", (width, height), bytes((i * 7919) % 251 for i in range(width * height * 3))
    )
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _palette_png_with_transparency() -> bytes:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)
    return buffer.getvalue()


def _jpeg_with_placeholder_date() -> bytes:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = "0000:00:00 00:00:00"
    exif[271] = "Camera\x00\x00"
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "blue").save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def cases() -> list[Case]:
    photo = samples.photo(800, 600, seed=5)
    rotated = samples.photo(300, 200, seed=6, orientation=6)
    png = _image("RGBA", (64, 48), "PNG")
    noisy_png = _noise_png(64, 48)
    pdf_lines = ["Purchase order 4711", "Deliver to the harbour office"]
    return [
        Case("zero bytes", "corpus/empty.jpg", b"", "metadata_only", {"content_type": "application/x-empty"}),
        Case("truncated JPEG", "corpus/truncated.jpg", photo[: len(photo) // 2], "dead_letter:CorruptImage"),
        Case(
            "truncated PNG",
            "corpus/truncated.png",
            noisy_png[: len(noisy_png) // 2],
            "dead_letter:CorruptImage",
        ),
        Case(
            "PNG bomb, Pillow's limit",
            "corpus/bomb.png",
            samples.decompression_bomb_png(),
            "dead_letter:ImageTooLarge",
        ),
        Case(
            "PNG over MAX_IMAGE_PIXELS",
            "corpus/huge.png",
            _png_header_only(12_000, 12_000),
            "dead_letter:ImageTooLarge",
        ),
        Case(
            "PNG named .jpg",
            "corpus/really-a-png.jpg",
            png,
            "indexed",
            {"content_type": "image/png", "extension": ".jpg"},
        ),
        Case(
            "huge declared size",
            "corpus/declared-huge.bin",
            b"tiny",
            "dead_letter:FileTooLarge",
            declared_size=10 * 1024**4,
        ),
        Case(
            "CMYK JPEG",
            "corpus/cmyk.jpg",
            _image("CMYK", (50, 40), "JPEG"),
            "indexed",
            {"image.mode": "CMYK"},
        ),
        Case(
            "16-bit PNG", "corpus/depth16.png", samples.png_16bit(64, 32), "indexed", {"image.mode": "I;16"}
        ),
        Case(
            "animated GIF", "corpus/anim.gif", samples.animated_gif(frames=3), "indexed", {"image.frames": 3}
        ),
        Case("EXIF-rotated JPEG", "corpus/rotated.jpg", rotated, "indexed", {"image.exif.orientation": 6}),
        Case(
            "unicode, space, plus",
            "corpus/写真 a+b (1).jpg",
            photo,
            "indexed",
            {"key": "corpus/写真 a+b (1).jpg"},
        ),
        Case(
            "encrypted PDF",
            "corpus/locked.pdf",
            samples.encrypted_pdf(pdf_lines),
            "metadata_only",
            {"extraction.reason": "encrypted PDF: it needs a password to read"},
        ),
        Case("PDF that is not", "corpus/broken.pdf", b"%PDF-1.4\n1 0 obj << garbage", "metadata_only"),
        Case(
            "binary garbage",
            "corpus/garbage.dat",
            bytes(range(256)) * 16,
            "metadata_only",
            {"content_type": "application/octet-stream"},
        ),
        Case("missing object", "corpus/never-uploaded.jpg", None, "gone"),
        Case(
            "Shift-JIS text",
            "corpus/sjis.txt",
            "請求書 合計 1,234 円".encode("shift_jis"),
            "indexed",
            {"text": "請求書 合計 1,234 円"},
        ),
        Case(
            "UTF-16 text",
            "corpus/utf16.txt",
            "tripod and lens cap".encode("utf-16"),
            "indexed",
            {"text": "tripod and lens cap"},
        ),
        Case(
            "JSON",
            "corpus/data.json",
            b'{"sku": "A1", "name": "lens cap"}',
            "indexed",
            {"content_type": "application/json"},
        ),
        Case("CSV", "corpus/table.csv", b"sku,qty\nA1,40\n", "indexed", {"content_type": "text/csv"}),
        Case(
            "text over the cap",
            "corpus/long.txt",
            b"lorem ipsum " * 20_000,
            "indexed",
            {"text_truncated": True},
        ),
        Case(
            "palette PNG with transparency", "corpus/palette.png", _palette_png_with_transparency(), "indexed"
        ),
        Case(
            "TIFF",
            "corpus/scan.tiff",
            _image("RGB", (30, 20), "TIFF"),
            "indexed",
            {"content_type": "image/tiff"},
        ),
        Case(
            "WebP",
            "corpus/photo.webp",
            _image("RGB", (30, 20), "WEBP"),
            "indexed",
            {"content_type": "image/webp"},
        ),
        Case(
            "ICO, an image type not decoded",
            "corpus/favicon.ico",
            _image("RGB", (16, 16), "ICO"),
            "metadata_only",
        ),
        Case(
            "placeholder EXIF date",
            "corpus/nodate.jpg",
            _jpeg_with_placeholder_date(),
            "indexed",
            {"image.exif.make": "Camera"},
        ),
        Case("PDF with text", "corpus/order.pdf", samples.pdf(pdf_lines), "indexed", {"page_count": 1}),
        Case(
            "ZIP archive", "corpus/archive.zip", _zip(), "metadata_only", {"content_type": "application/zip"}
        ),
    ]


def _zip() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inside.txt", "hello")
    return buffer.getvalue()
