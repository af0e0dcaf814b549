"""Turning a file into a vector: a small Protocol, with Bedrock Titan and a local stand-in behind it."""

from __future__ import annotations

from typing import Protocol


class Embedder(Protocol):
    model_id: str  # stored in each document's embedding_model field
    dimension: int  # 256, 384 or 1024, as Titan's outputEmbeddingLength allows

    def embed(self, *, image: bytes | None = None, text: str | None = None) -> list[float]:
        """One vector of ``dimension`` floats for an image (PNG or JPEG bytes), a text, or both.

        The caller has already made the image fit the model's limits (at most 2048 x 2048 px, 25 MB).
        The embedder truncates text to what the model accepts. Raises TransientError when throttled or
        unavailable, PermanentError when the model rejects the input.
        """
        ...
