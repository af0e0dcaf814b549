"""The local embedder: deterministic, unit length, near-duplicates close, unrelated inputs apart."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from app.embeddings import Embedder
from app.embeddings.local import MODEL_ID, LocalEmbedder
from app.errors import PermanentError

DIMENSIONS = (256, 384, 1024)


def photo(seed: int, size: tuple[int, int] = (1280, 800)) -> Image.Image:
    """A smooth, photo-like image: random colour blobs upsampled (unrelated seeds look nothing alike)."""
    blobs = np.random.default_rng(seed).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    return Image.fromarray(blobs).resize(size, Image.Resampling.BICUBIC)


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder(1024)


def test_satisfies_the_embedder_protocol_with_its_own_model_id() -> None:
    embedder: Embedder = LocalEmbedder(256)
    assert (embedder.model_id, embedder.dimension) == (MODEL_ID, 256)


@pytest.mark.parametrize("dimension", DIMENSIONS)
def test_every_titan_dimension_gives_unit_vectors_of_that_length(dimension: int) -> None:
    embedder = LocalEmbedder(dimension)
    image = encode(photo(1))
    for vector in (
        embedder.embed(image=image),
        embedder.embed(text="a red bicycle leaning on a wall"),
        embedder.embed(image=image, text="a red bicycle leaning on a wall"),
    ):
        assert len(vector) == dimension
        assert all(isinstance(value, float) for value in vector)
        assert np.linalg.norm(vector) == pytest.approx(1.0)


@pytest.mark.parametrize("dimension", [128, 512, 1536, 0])
def test_refuses_a_dimension_titan_cannot_produce(dimension: int) -> None:
    with pytest.raises(ValueError, match="256, 384, 1024"):
        LocalEmbedder(dimension)


def test_same_input_same_vector(embedder: LocalEmbedder) -> None:
    image = encode(photo(3))
    assert embedder.embed(image=image) == embedder.embed(image=image)
    assert embedder.embed(text="hello world") == LocalEmbedder(1024).embed(text="hello world")


def test_same_vector_in_another_process_whatever_its_hash_seed(embedder: LocalEmbedder) -> None:
    image = encode(photo(4), "PNG")
    text = "Invoice 2024-117 for the blue widgets"
    script = (
        "import json, sys; from app.embeddings.local import LocalEmbedder;"
        "e = LocalEmbedder(384); data = sys.stdin.buffer.read();"
        f"print(json.dumps([e.embed(image=data), e.embed(text={text!r})]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # Python's hash() would differ; BLAKE2b does not
    output = subprocess.run(
        [sys.executable, "-c", script], input=image, capture_output=True, check=True, env=env, timeout=60
    ).stdout
    image_vector, text_vector = json.loads(output)
    local = LocalEmbedder(384)
    assert image_vector == local.embed(image=image)
    assert text_vector == local.embed(text=text)


def test_a_resized_re_encoded_copy_is_much_closer_than_an_unrelated_image(embedder: LocalEmbedder) -> None:
    original = photo(7)
    vector = embedder.embed(image=encode(original, quality=92))
    copies = [
        encode(original.resize((640, 400)), quality=60),  # half size, heavier compression
        encode(original.resize((1000, 625)), "PNG"),  # another format and size
        encode(original.convert("L").convert("RGB"), quality=85),  # even in grey it is the same picture
    ]
    unrelated = [encode(photo(seed), quality=92) for seed in range(100, 110)]

    near = [cosine(vector, embedder.embed(image=copy)) for copy in copies[:2]]
    far = [cosine(vector, embedder.embed(image=other)) for other in unrelated]
    assert min(near) > 0.95
    assert max(far) < 0.3
    assert cosine(vector, embedder.embed(image=copies[2])) > max(far)


def test_exif_orientation_is_applied_so_a_rotated_file_matches_the_upright_picture(
    embedder: LocalEmbedder,
) -> None:
    upright = photo(8, (800, 600))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the pixels are stored turned left
    stored_sideways = encode(upright.transpose(Image.Transpose.ROTATE_90), quality=90, exif=exif.tobytes())
    assert (
        cosine(embedder.embed(image=encode(upright, quality=90)), embedder.embed(image=stored_sideways))
        > 0.95
    )


def test_similar_texts_are_closer_than_unrelated_ones(embedder: LocalEmbedder) -> None:
    text = embedder.embed(text="The quick brown fox jumps over the lazy dog near the river bank")
    similar = embedder.embed(text="A quick brown fox jumped over a lazy dog by the river")
    unrelated = embedder.embed(text="Quarterly revenue grew eight percent on strong cloud sales")
    assert cosine(text, similar) > 0.5
    assert abs(cosine(text, unrelated)) < 0.2
    assert cosine(
        text, embedder.embed(text="THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG NEAR THE RIVER BANK")
    ) == (pytest.approx(1.0)), "case does not matter"


def test_image_and_text_together_average_the_two(embedder: LocalEmbedder) -> None:
    image = encode(photo(9))
    text = "a field of sunflowers"
    both = embedder.embed(image=image, text=text)
    image_only, text_only = embedder.embed(image=image), embedder.embed(text=text)
    expected = np.add(image_only, text_only)
    assert both == pytest.approx(list(expected / np.linalg.norm(expected)))


def test_nothing_to_embed_is_a_permanent_error(embedder: LocalEmbedder) -> None:
    with pytest.raises(PermanentError, match="nothing to embed"):
        embedder.embed()
    with pytest.raises(PermanentError, match="nothing to embed"):
        embedder.embed(text=" \n\t ")


def test_an_undecodable_image_is_a_permanent_error(embedder: LocalEmbedder) -> None:
    with pytest.raises(PermanentError, match="could not be decoded") as caught:
        embedder.embed(image=b"certainly not an image")
    assert caught.value.error_class == "CorruptImage"
    truncated = encode(photo(10))[:2000]
    with pytest.raises(PermanentError):
        embedder.embed(image=truncated)


@settings(max_examples=200, deadline=None)
@given(text=st.text(min_size=1, max_size=300).filter(str.strip))
def test_any_text_gives_a_finite_unit_vector(text: str) -> None:
    vector = LocalEmbedder(256).embed(text=text)
    assert np.all(np.isfinite(vector))
    assert np.linalg.norm(vector) == pytest.approx(1.0)
