"""A deterministic stand-in for Titan that needs no network, no account and no model files.

NOT SEMANTIC. It finds near-duplicates, nothing more: a resized or re-encoded copy of a photo lands close to
the original, and texts that share words land close to each other; but a photo of a cat is no closer to the
word "cat" (or to another cat) than to anything else. It exists so the whole flow (embed, index, kNN) can run
on a laptop, in CI and in the demo; searches over its vectors mean "looks/reads almost the same".

- Image: decoded at reduced scale (JPEG draft mode), turned upright from EXIF, averaged down to 16 x 16 RGB,
  centred, then multiplied by a fixed random ±1 projection matrix into ``dimension`` numbers.
- Text: feature hashing of lowercased words and character trigrams with BLAKE2b (stable across processes,
  unlike ``hash()``, which Python salts per process), each feature adding ±weight to one of ``dimension``
  buckets.
- Both: the average of the two unit vectors, as Titan does.

Every vector is L2-normalised, so cosine similarity is a dot product. The projection matrix is derived from
BLAKE2b rather than numpy's random generators, whose streams may change between numpy releases: vectors
already in an index must keep meaning the same thing. Change anything here and bump MODEL_ID, because old
and new vectors are not comparable.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import re
import warnings
from collections import Counter

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from app.config import TITAN_DIMENSIONS
from app.errors import PermanentError

MODEL_ID = "filefleet-local-v1"
_SIDE = 16  # 16 x 16 x RGB = 768 numbers: enough to tell photos apart, small enough to survive re-encoding
_IMAGE_FEATURES = _SIDE * _SIDE * 3
# Like Titan, only the start of a text counts; this also keeps the cost of a huge text bounded.
TEXT_MAX_CHARS = 20_000
_WORD = re.compile(r"\w+")
_WORD_WEIGHT = 1.0
_TRIGRAM_WEIGHT = 0.5  # trigrams make "colour"/"colours"/"color" close; words keep distinct words apart
_ORIENTATION_TAG = 0x0112
# EXIF orientation → the transpose that makes the pixels upright (as ImageOps.exif_transpose does).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

Vector = NDArray[np.float64]


class LocalEmbedder:
    """The Embedder for ``EMBEDDER=local``: near-duplicate similarity only (see the module docstring)."""

    model_id = MODEL_ID

    def __init__(self, dimension: int) -> None:
        if dimension not in TITAN_DIMENSIONS:
            raise ValueError(
                f"dimension must be one of {', '.join(map(str, TITAN_DIMENSIONS))} (as the index mapping "
                f"expects), not {dimension}"
            )
        self.dimension = dimension

    def embed(self, *, image: bytes | None = None, text: str | None = None) -> list[float]:
        """One unit vector of ``dimension`` floats for an image, a text, or both (averaged)."""
        text = text.strip()[:TEXT_MAX_CHARS] if text is not None else ""
        parts = []
        if image is not None:
            parts.append(self._image_vector(image))
        if text:
            parts.append(self._text_vector(text))
        if not parts:
            raise PermanentError(
                "nothing to embed: no image and no text (after trimming whitespace)", error_class="EmptyInput"
            )
        return [float(value) for value in _unit(np.mean(parts, axis=0))]

    def _image_vector(self, image: bytes) -> Vector:
        pixels = _thumbnail_pixels(image)
        centred = pixels - pixels.mean()
        # A flat image has no structure once centred; its raw colour is all there is to compare.
        features = centred if np.linalg.norm(centred) > 1e-6 else pixels
        return _unit(features @ _projection(_IMAGE_FEATURES, self.dimension))

    def _text_vector(self, text: str) -> Vector:
        counts: Counter[tuple[str, str]] = Counter()
        for word in _WORD.findall(text.lower()):
            counts["w", word] += 1
            padded = f" {word} "
            for start in range(len(padded) - 2):
                counts["c", padded[start : start + 3]] += 1
        if not counts:  # punctuation or symbols only: the text itself is the one feature
            counts["t", text] = 1
        vector = np.zeros(self.dimension)
        for (kind, feature), count in counts.items():
            index, sign = _bucket(kind + feature, self.dimension)
            weight = _WORD_WEIGHT if kind != "c" else _TRIGRAM_WEIGHT
            vector[index] += sign * weight * (1.0 + math.log(count))  # sublinear: repetition counts less
        return _unit(vector)


def _thumbnail_pixels(image: bytes) -> Vector:
    """16 x 16 RGB averages in [0, 1], upright, decoded at the smallest scale libjpeg allows."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the pipeline bounds sizes
            opened = Image.open(io.BytesIO(image))
        with opened:
            orientation = int(opened.getexif().get(_ORIENTATION_TAG, 1) or 1)
            if opened.format == "JPEG":
                opened.draft("RGB", (_SIDE, _SIDE))  # libjpeg decodes at up to 1/8 scale: far less work
            small = opened.convert("RGB").resize((_SIDE, _SIDE), Image.Resampling.BOX)
    except Image.DecompressionBombError as exc:
        raise PermanentError(f"image too large to embed: {exc}", error_class="ImageTooLarge") from None
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
    ) as exc:
        raise PermanentError(
            f"image could not be decoded for embedding: {exc}", error_class="CorruptImage"
        ) from None
    if orientation in _UPRIGHT:  # transposing a square thumbnail equals thumbnailing the transposed image
        small = small.transpose(_UPRIGHT[orientation])
    return np.asarray(small, dtype=np.float64).reshape(-1) / 255.0


@functools.lru_cache(maxsize=8)
def _projection(rows: int, columns: int) -> Vector:
    """A fixed ±1 random projection matrix (rows x columns) from BLAKE2b in counter mode."""
    needed = rows * columns // 8 + 1
    stream = b"".join(
        hashlib.blake2b(counter.to_bytes(4, "big"), digest_size=64, person=b"ff-local-proj").digest()
        for counter in range(needed // 64 + 1)
    )
    bits = np.unpackbits(np.frombuffer(stream, dtype=np.uint8))[: rows * columns]
    return (bits.astype(np.float64) * 2.0 - 1.0).reshape(rows, columns)


@functools.lru_cache(maxsize=65_536)
def _bucket(feature: str, dimension: int) -> tuple[int, float]:
    """Where a text feature lands and with which sign: signed hashing keeps collisions unbiased."""
    digest = int.from_bytes(
        hashlib.blake2b(feature.encode(), digest_size=8, person=b"ff-local-text").digest()
    )
    return digest % dimension, (1.0 if digest >> 63 else -1.0)


def _unit(vector: Vector) -> Vector:
    norm = float(np.linalg.norm(vector))
    if norm > 1e-12:
        return vector / norm
    # Every feature cancelled out (signed hash collisions in a tiny text): any fixed unit vector will do.
    fallback = np.zeros(len(vector))
    fallback[0] = 1.0
    return fallback
