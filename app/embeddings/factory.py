"""The embedder the settings ask for, with its Bedrock client built here, when a command starts."""

from __future__ import annotations

import boto3

from app.config import EmbedderSettings
from app.embeddings import Embedder
from app.embeddings.local import LocalEmbedder
from app.embeddings.titan import TitanEmbedder, bedrock_client_config


def build_embedder(settings: EmbedderSettings, session: boto3.session.Session) -> Embedder | None:
    """None for ``EMBEDDER=none`` (documents are indexed without a vector), else the chosen embedder.

    The Bedrock client takes its endpoint from boto3 itself (``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` or
    ``AWS_ENDPOINT_URL``), its region from ``session``, and adaptive retries from bedrock_client_config.
    One client is shared by every worker thread, so its adaptive rate limiter sees all their throttles.
    """
    if settings.kind == "none":
        return None
    if settings.kind == "local":
        return LocalEmbedder(settings.dimension)
    if settings.kind == "titan":
        client = session.client(
            "bedrock-runtime", config=bedrock_client_config(max_concurrency=settings.max_concurrency)
        )
        return TitanEmbedder(
            client,
            model_id=settings.model_id,
            dimension=settings.dimension,
            max_concurrency=settings.max_concurrency,
        )
    raise ValueError(f"unknown embedder kind {settings.kind!r}")  # EmbedderSettings only allows the three
