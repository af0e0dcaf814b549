"""Assembling the parts a command needs from settings: clients, the embedder, the sink, the file handler."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from app.aws import AwsClients
from app.config import EmbedderSettings, PipelineSettings, QueueSettings, Settings, SinkSettings
from app.consumer.queue import SqsQueue
from app.drain import DrainSignal
from app.embeddings import Embedder
from app.embeddings.factory import build_embedder
from app.errors import StartupError, TransientError
from app.lifecycle.facade import Lifecycle
from app.lifecycle.monitors import REBALANCE_CAUSE
from app.pipeline.handler import PipelineHandler
from app.sinks import IndexMismatch, Sink
from app.sinks.batching import BatchingWriter
from app.sinks.factory import build_sink
from app.state import StatePublisher, WorkerStatus
from app.stats import RunStats
from app.worker import RunResult, Worker

log = logging.getLogger(__name__)

_STARTUP_ATTEMPTS = 5
DEFAULT_MAX_RECEIVE_COUNT = 5  # when the queue has no redrive policy to say otherwise


@dataclass
class IndexRuntime:
    """The embedder and the sink, ready: what `search` needs, and the worker beside its queue."""

    clients: AwsClients
    embedder: Embedder | None
    sink: Sink
    _writers: list[BatchingWriter] = field(default_factory=list)

    @classmethod
    def open(
        cls, clients: AwsClients, embedder_settings: EmbedderSettings, sink_settings: SinkSettings
    ) -> IndexRuntime:
        embedder = build_embedder(embedder_settings, clients.session)
        sink = build_sink(sink_settings, dimension=embedder_settings.dimension, session=clients.session)
        _ensure_index(sink)
        return cls(clients=clients, embedder=embedder, sink=sink)

    def file_handler(
        self, settings: PipelineSettings, stats: RunStats, *, concurrency: int
    ) -> PipelineHandler:
        writer = BatchingWriter(self.sink, max_batch=concurrency)
        self._writers.append(writer)
        return PipelineHandler(self.clients.s3(), writer, self.embedder, settings, stats)

    def close(self) -> None:
        for writer in self._writers:
            writer.close()
        self.sink.close()


def _ensure_index(sink: Sink) -> None:
    """The sink may still be starting (compose, a new domain): try a few times before giving up."""
    for attempt in range(1, _STARTUP_ATTEMPTS + 1):
        try:
            sink.ensure_index()
            return
        except IndexMismatch as exc:
            raise StartupError(str(exc)) from None
        except TransientError as exc:
            if attempt == _STARTUP_ATTEMPTS:
                raise
            log.warning("sink.unavailable", extra={"attempt": attempt, "error": exc.reason})
            time.sleep(2 ** (attempt - 1))


@dataclass(frozen=True)
class QueueRoutes:
    """The queue, its DLQ and the delivery on which a transient failure is dead-lettered."""

    source: SqsQueue
    dead_letter: SqsQueue
    max_receive_count: int

    @classmethod
    def resolve(cls, settings: QueueSettings, clients: AwsClients) -> QueueRoutes:
        source = SqsQueue(clients.sqs(), settings.queue_url)
        dead_letter_url, max_receive_count = _dead_letter_route(source, settings)
        return cls(source, SqsQueue(source.client, dead_letter_url), max_receive_count)


def build_worker(
    settings: Settings,
    routes: QueueRoutes,
    index: IndexRuntime,
    *,
    drain: DrainSignal,
    stats: RunStats | None = None,
) -> Worker:
    """The worker on its queue and DLQ, with the file pipeline as its handler."""
    stats = stats or RunStats()
    return Worker(
        settings.queue,
        source=routes.source,
        dead_letter=routes.dead_letter,
        max_receive_count=routes.max_receive_count,
        handler=index.file_handler(settings.pipeline, stats, concurrency=settings.queue.worker_concurrency),
        drain=drain,
        stats=stats,
    )


def _dead_letter_route(source: SqsQueue, settings: QueueSettings) -> tuple[str, int]:
    """DEAD_LETTER_QUEUE_URL, else the queue's RedrivePolicy; a worker without a DLQ does not start."""
    try:
        route = source.dead_letter_route()
    except NoCredentialsError:
        raise StartupError(
            "no AWS credentials: use an instance profile, AWS_PROFILE, "
            "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from None
    except NoRegionError:
        raise StartupError("no AWS region: set AWS_REGION") from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise StartupError(f"SQS_QUEUE_URL={settings.queue_url}: {code}: {exc}") from None
    except BotoCoreError as exc:
        raise StartupError(f"cannot reach SQS for {settings.queue_url}: {exc}") from None
    url = settings.dead_letter_queue_url or (route.url if route else None)
    if url is None:
        raise StartupError(
            "no dead-letter queue: set DEAD_LETTER_QUEUE_URL or give the queue a RedrivePolicy "
            "(a worker without one could only drop or endlessly retry what it cannot process)"
        )
    limit = settings.max_receive_count or (route.max_receive_count if route else None)
    return url, limit or DEFAULT_MAX_RECEIVE_COUNT


def serve_worker(
    settings: Settings, drain: DrainSignal, publisher: StatePublisher | None, *, until_idle: float | None
) -> RunResult:
    """The worker with the pipeline, and the lifecycle monitors on EC2, from start to the end of its drain."""
    clients = AwsClients(region=settings.aws_region, concurrency=settings.queue.worker_concurrency)
    routes = QueueRoutes.resolve(settings.queue, clients)
    index = IndexRuntime.open(clients, settings.embedder, settings.sink)
    lifecycle: Lifecycle | None = None
    try:
        worker = build_worker(settings, routes, index, drain=drain)
        if publisher is not None:
            publisher.follow(worker.status)
        lifecycle = Lifecycle.start(
            settings.lifecycle, clients.session, drain, stats=worker.stats, worker_idle=worker.idle_seconds
        )
        result = worker.run(until_idle=until_idle)
        if lifecycle is not None:
            if result.cause == REBALANCE_CAUSE:
                _hold_until_leaving(drain, lifecycle, publisher)
            lifecycle.after_drain(result.cause)
        return result
    finally:
        if lifecycle is not None:
            lifecycle.stop()
        index.close()


def _hold_until_leaving(drain: DrainSignal, lifecycle: Lifecycle, publisher: StatePublisher | None) -> None:
    """After a rebalance drain, stay up without work until the instance really goes, or a signal comes.

    The recommendation stays in the instance metadata: a worker that exited here would be restarted by
    systemd and drain again at once, in a loop, until the Spot notice or the scale-in finally arrives.
    """
    if publisher is not None:
        publisher.follow(lambda: WorkerStatus("draining", time.time(), REBALANCE_CAUSE, 0, os.getpid()))
    log.info("worker.holding_after_rebalance", extra={"until": "a Spot notice, a scale-in or a signal"})
    while not lifecycle.terminating and drain.wait(timeout=1.0) is None:
        pass
