"""Sniffing, image preparation and text extraction, on real encodings of real formats."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from app import samples
from app.errors import PermanentError
from app.pipeline.images import EMBEDDING_MIN_SIDE, EMBEDDING_SIDE, prepare_image
from app.pipeline.sniff import sniff
from app.pipeline.text import read_pdf, read_text


def _prepare(data: bytes, *, index_gps: bool = False, max_pixels: int = 64_000_000):  # type: ignore[no-untyped-def]
    return prepare_image(io.BytesIO(data), key="k", max_pixels=max_pixels, index_gps=index_gps)


@pytest.mark.parametrize(
    ("head", "key", "expected"),
    [
        (samples.photo(16, 16), "holiday.png", "image/jpeg"),  # the content wins over the name
        (samples.png(8, 8), "x.jpg", "image/png"),
        (samples.animated_gif(), "x", "image/gif"),
        (samples.pdf(["a"]), "report.txt", "application/pdf"),
        (b"", "x.jpg", "application/x-empty"),
        (bytes(range(256)) * 8, "x.jpg", "application/octet-stream"),
        (b"# Title\n\nsome words\n", "notes.md", "text/markdown"),
        (b"a,b\n1,2\n", "t.csv", "text/csv"),
        (b'{"a": [1, 2', "partial.json", "application/json"),  # a head cut mid-document is still JSON
        (b"{ not json at all", "x.json", "text/plain"),
        (b"PK\x03\x04" + b"\x00" * 40, "bundle.zip", "application/zip"),
    ],
)
def test_sniff_trusts_content_and_uses_the_name_only_among_what_the_content_allows(
    head: bytes, key: str, expected: str
) -> None:
    assert sniff(head, key=key) == expected


def test_a_12_mp_jpeg_becomes_a_small_upright_rgb_jpeg_with_its_exif() -> None:
    prepared = _prepare(samples.photo(4000, 3000, seed=1))
    assert (prepared.width, prepared.height, prepared.format, prepared.mode) == (4000, 3000, "JPEG", "RGB")
    assert prepared.exif["make"] == "FileFleet" and prepared.exif["captured_at"] == "2026-02-11T10:11:12"
    assert "gps" not in prepared.exif, "GPS is indexed only with INDEX_GPS=true"
    embedded = Image.open(io.BytesIO(prepared.embedding_input))
    assert embedded.format == "JPEG" and embedded.mode == "RGB"
    assert EMBEDDING_MIN_SIDE <= max(embedded.size) <= EMBEDDING_SIDE
    assert embedded.size == (1000, 750), "decoded at 1/4 scale: no resampling of 12 MP"


def test_exif_orientation_is_applied_to_the_embedding_input() -> None:
    prepared = _prepare(samples.photo(300, 200, orientation=6))
    assert (prepared.width, prepared.height, prepared.exif["orientation"]) == (300, 200, 6)
    assert Image.open(io.BytesIO(prepared.embedding_input)).size == (200, 300)


def test_gps_only_when_asked_in_decimal_degrees() -> None:
    prepared = _prepare(samples.photo(64, 64), index_gps=True)
    assert prepared.exif["gps"] == {
        "lat": pytest.approx(35.6586111, abs=1e-6),
        "lon": pytest.approx(139.7013889, abs=1e-6),
    }


def test_sixteen_bit_and_transparent_images_become_plain_rgb() -> None:
    deep = Image.open(io.BytesIO(_prepare(samples.png_16bit(256, 4)).embedding_input))
    left, right = deep.getpixel((2, 2)), deep.getpixel((253, 2))
    assert left[0] < 20 and right[0] > 230, "16-bit values are scaled, not clipped to white"
    logo = Image.open(io.BytesIO(_prepare(samples.png(64, 64)).embedding_input))
    assert logo.getpixel((1, 1)) == pytest.approx((255, 255, 255), abs=3), "transparent becomes white"


def test_the_pixel_limit_refuses_before_decoding() -> None:
    with pytest.raises(PermanentError) as error:
        _prepare(samples.photo(400, 300), max_pixels=100_000)
    assert error.value.error_class == "ImageTooLarge" and "MAX_IMAGE_PIXELS=100000" in error.value.reason


def test_text_in_any_encoding_is_decoded_and_capped() -> None:
    assert read_text(io.BytesIO("請求書の控え".encode("shift_jis")), max_chars=100).text == "請求書の控え"
    assert read_text(io.BytesIO("\ufeffcafé".encode()), max_chars=100).text == "café"
    capped = read_text(io.BytesIO(b"x" * 1000), max_chars=10)
    assert (capped.text, capped.truncated) == ("x" * 10, True)


def test_pdf_text_pages_and_the_page_cap() -> None:
    extracted = read_pdf(io.BytesIO(samples.pdf(["Purchase order 4711"])), max_pages=5, max_chars=1000)
    assert "Purchase order 4711" in extracted.text and extracted.page_count == 1 and extracted.ok


def test_encrypted_and_broken_pdfs_keep_their_metadata_with_a_reason() -> None:
    locked = read_pdf(io.BytesIO(samples.encrypted_pdf(["secret"])), max_pages=5, max_chars=100)
    assert not locked.ok and "encrypted" in (locked.reason or "")
    broken = read_pdf(io.BytesIO(b"%PDF-1.4\n1 0 obj <<"), max_pages=5, max_chars=100)
    assert not broken.ok and "unreadable PDF" in (broken.reason or "")
