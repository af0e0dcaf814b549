"""Choosing and building the sink from settings: the one place that knows both kinds."""

from __future__ import annotations

import logging

import boto3

from app.config import SinkSettings
from app.sinks import Sink
from app.sinks.local import LocalSink
from app.sinks.opensearch import DEFAULT_ENGINE, OpenSearchSink, build_opensearch_client

log = logging.getLogger(__name__)


def build_sink(
    settings: SinkSettings, *, dimension: int, session: boto3.session.Session | None = None
) -> Sink:
    """The configured sink, not yet connected (call ``ensure_index`` at startup).

    ``session`` signs requests when OPENSEARCH_AUTH=sigv4; the local sink needs none.
    """
    if settings.kind == "local":
        return LocalSink(settings.local_path, dimension=dimension)
    serverless = settings.auth == "sigv4" and settings.sigv4_service == "aoss"
    if serverless:
        # Documented limits of Serverless vector collections that this design runs into; see the report.
        log.warning(
            "sink.serverless_limits",
            extra={
                "detail": "vector collections reject the Lucene engine (faiss is used, cosinesimil needs "
                "a 2.19+ engine) and may assign their own document ids, which the ordering guard needs"
            },
        )
    return OpenSearchSink(
        build_opensearch_client(settings, session),
        index=settings.index,
        dimension=dimension,
        engine="faiss" if serverless else DEFAULT_ENGINE,
    )
