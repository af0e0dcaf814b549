"""Sample files for the demo: photos of several sizes with EXIF, a rotated JPEG, PNGs, an animated GIF, texts
in two encodings, PDFs, and a few bad files, all made on the spot (no downloads, deterministic)."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from pypdf import PdfReader, PdfWriter

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825


@dataclass(frozen=True)
class Sample:
    key: str
    data: bytes
    note: str  # what the demo expects of it


def photo(width: int, height: int, *, seed: int = 0, orientation: int = 1, camera: bool = True) -> bytes:
    """A photo-like JPEG: smooth gradients, shapes and sensor-like noise, with an EXIF block."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            128 + 100 * np.sin(x / (width / (2 + seed % 3)) + seed),
            128 + 100 * np.cos(y / (height / 3) + seed / 2),
            128 + 60 * np.sin((x + y) / (width / 4)),
        ],
        axis=-1,
    )
    noise = rng.normal(0, 6, size=(height, width, 1)).astype(np.float32)
    image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        cx, cy, r = (
            int(rng.integers(0, width)),
            int(rng.integers(0, height)),
            int(rng.integers(10, width // 6 + 11)),
        )
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    exif = Image.Exif()
    exif[274] = orientation
    if camera:
        exif[271], exif[272] = "FileFleet", f"Demo Camera {seed}"
        exif.get_ifd(_EXIF_IFD)[36867] = f"2026:0{1 + seed % 9}:1{seed % 10} 10:11:12"
        gps = exif.get_ifd(_GPS_IFD)
        gps[1], gps[2], gps[3], gps[4] = "N", (35.0, 39.0, 31.0), "E", (139.0, 42.0, 5.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=88, exif=exif)
    return buffer.getvalue()


def png(width: int, height: int, *, mode: str = "RGBA") -> bytes:
    image = Image.new(mode, (width, height))
    draw = ImageDraw.Draw(image)
    if mode == "RGBA":
        draw.rectangle((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(20, 120, 220, 200))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def png_16bit(width: int, height: int) -> bytes:
    ramp = np.tile(np.linspace(0, 65535, width, dtype=np.uint16), (height, 1))
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, "PNG")
    return buffer.getvalue()


def animated_gif(frames: int = 4, side: int = 64) -> bytes:
    images = []
    for i in range(frames):  # a dot going round: every frame differs, so none is merged away
        frame = Image.new("RGB", (side, side), "white")
        angle = 2 * np.pi * i / frames
        x, y = side / 2 + side / 3 * np.cos(angle), side / 2 + side / 3 * np.sin(angle)
        ImageDraw.Draw(frame).ellipse((x - 6, y - 6, x + 6, y + 6), fill=(30, 90, 200))
        images.append(frame)
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return buffer.getvalue()


def pdf(lines: list[str]) -> bytes:
    """A small, valid PDF with one page of Helvetica text (hand-built: no PDF writer needed)."""
    stream = "BT /F1 14 Tf 72 720 Td 18 TL " + " ".join(f"({_pdf_escape(line)}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def encrypted_pdf(lines: list[str], password: str = "s3cret") -> bytes:  # noqa: S107 - a sample file
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf(lines))))
    writer.encrypt(user_password=password, algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def decompression_bomb_png(side: int = 60_000) -> bytes:
    """A tiny PNG whose header claims side x side pixels: refused from the header, never decoded.

    Built chunk by chunk: asking Pillow to save one would allocate the very bomb it describes.
    """

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    rows = zlib.compress(b"\x00" * 1024)  # the start of the first row; the rest would be zeros too
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def demo_samples() -> list[Sample]:
    lines = ["Quarterly invoice for FileFleet", "Total due: 1,234.56 JPY", "Thank you for your business"]
    big_photo = photo(4000, 3000, seed=1)
    return [
        Sample("photos/tokyo tower 12mp.jpg", big_photo, "12 MP photo with EXIF"),
        Sample("photos/harbour 2mp.jpg", photo(1920, 1080, seed=2), "2 MP photo"),
        Sample("photos/small+square.jpg", photo(640, 640, seed=3), "small photo; '+' in its key"),
        Sample(
            "photos/rotated (portrait).jpg", photo(1200, 800, seed=4, orientation=6), "EXIF orientation 6"
        ),
        Sample(
            "photos/copy of harbour.jpg", _reencoded(photo(1920, 1080, seed=2)), "re-encoded near-duplicate"
        ),
        Sample("graphics/logo.png", png(512, 512), "PNG with transparency"),
        Sample("graphics/depth-16bit.png", png_16bit(256, 128), "16-bit greyscale PNG"),
        Sample("graphics/spinner.gif", animated_gif(), "animated GIF"),
        Sample(
            "docs/readme.md",
            b"# FileFleet demo\n\nFiles landing in S3 become searchable documents.\n",
            "Markdown",
        ),
        Sample(
            "docs/notes-日本語.txt", "請求書の控えです。合計 1,234 円。".encode("shift_jis"), "Shift-JIS text"
        ),
        Sample("docs/inventory.csv", b"sku,name,qty\nA1,lens cap,40\nB2,tripod,3\n", "CSV"),
        Sample("docs/config.json", b'{"invoice": {"total": 1234.56, "currency": "JPY"}}', "JSON"),
        Sample("docs/invoice.pdf", pdf(lines), "PDF with text"),
        Sample("docs/locked.pdf", encrypted_pdf(lines), "encrypted PDF: metadata only"),
        Sample("bad/empty.jpg", b"", "zero bytes: metadata only"),
        Sample("bad/truncated.jpg", big_photo[: len(big_photo) // 3], "truncated JPEG: dead-lettered"),
        Sample("bad/bomb.png", decompression_bomb_png(), "decompression bomb: dead-lettered"),
        Sample("bad/not-really-a.jpg", bytes(range(256)) * 64, "binary garbage named .jpg: metadata only"),
        Sample("bad/png-named.jpg", png(64, 64), "a PNG with a .jpg name: indexed as PNG"),
    ]


def samples_from_folder(folder: Path) -> list[Sample]:
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    return [
        Sample(path.relative_to(folder).as_posix(), path.read_bytes(), "from your folder") for path in files
    ]


def _reencoded(jpeg: bytes, *, scale: float = 0.75, quality: int = 70) -> bytes:
    image = Image.open(io.BytesIO(jpeg))
    smaller = image.resize((int(image.width * scale), int(image.height * scale)))
    buffer = io.BytesIO()
    smaller.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
