"""The enqueue run: list, filter, send in batches of 10 at a bounded rate, checkpoint after every batch.

One batch is in flight at a time. That is what keeps the promise of the checkpoint ("at most one batch is sent
twice after a crash, none is skipped"): with several in flight, the checkpoint could only record the end of
the longest acknowledged run of batches, and a crash would re-send all the others. Throughput is then one
SendMessageBatch round trip per 10 messages, a few hundred messages a second; a larger backfill splits its
prefixes across several runs, each with its own checkpoint file.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from app.aws import is_missing_queue
from app.consumer.queue import BATCH_LIMIT, EntryFailure, SqsQueue
from app.enqueue import checkpoint as checkpoints
from app.enqueue.checkpoint import Checkpoint
from app.enqueue.listing import (
    MAX_PAGE_SIZE,
    Filters,
    InputError,
    ListedObject,
    S3Location,
    Skip,
    list_objects,
)
from app.enqueue.notification import outgoing
from app.enqueue.pacing import Clock, SystemClock, TokenBucket
from app.enqueue.progress import Progress, human_bytes
from app.errors import classify_aws_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

# SendMessageBatch entries SQS refuses without a sender fault (throttling, an internal error) may pass on a
# later attempt; botocore has already retried failures of the whole request (app.aws.client_config).
SEND_ATTEMPTS = 5
RETRY_BASE_SECONDS = 0.5
RETRY_MAX_SECONDS = 8.0
_NO_SUCH_BUCKET = frozenset({"404", "NoSuchBucket", "NotFound"})


class EnqueueFailed(Exception):
    """The run stopped before the end; everything up to the checkpoint was enqueued."""


@dataclass(frozen=True, kw_only=True)
class Plan:
    location: S3Location
    filters: Filters
    queue_url: str | None  # None only for a dry run
    region: str  # of the clients; the bucket's own region goes into the messages when S3 tells it
    partition: str = "aws"
    page_size: int = MAX_PAGE_SIZE
    max_per_second: float | None = None
    checkpoint_path: Path | None = None
    dry_run: bool = False
    count_total: bool = True  # list a second time, alongside, so the progress bar has a total

    def run_identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = {"source": str(self.location), **self.filters.describe()}
        if not self.dry_run:  # a dry run may read any checkpoint of the same listing, whatever its queue
            identity["queue_url"] = self.queue_url
        return identity


@dataclass(kw_only=True)
class Outcome:
    objects: int = 0
    bytes: int = 0
    messages: int = 0
    requests: int = 0  # SendMessageBatch calls, retries included: what SQS bills
    retried_entries: int = 0
    skipped: Counter[Skip] = field(default_factory=Counter)
    seconds: float = 0.0
    complete: bool = False
    already_complete: bool = False  # the checkpoint said so; nothing was listed
    interrupted: bool = False
    error: str | None = None
    resumed_after: str | None = None
    checkpoint: Checkpoint | None = None

    @property
    def rate(self) -> float:
        return self.objects / self.seconds if self.seconds > 0 else 0.0


def run(
    plan: Plan,
    *,
    s3: S3Client,
    sqs: SQSClient | None,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> Outcome:
    """Enqueue (or, dry, count) what ``plan`` selects. Bad input raises InputError before anything is sent;
    a failure afterwards ends the run and is reported in the outcome."""
    return _Backfill(plan, s3=s3, sqs=sqs, clock=clock or SystemClock(), progress=progress).run()


class _Backfill:
    def __init__(
        self,
        plan: Plan,
        *,
        s3: S3Client,
        sqs: SQSClient | None,
        clock: Clock,
        progress: Progress | None,
    ) -> None:
        if not plan.dry_run and (sqs is None or plan.queue_url is None):
            raise InputError("no queue: pass --queue-url or set SQS_QUEUE_URL (or use --dry-run)")
        self.plan = plan
        self.s3 = s3
        self.queue = SqsQueue(sqs, plan.queue_url) if sqs is not None and plan.queue_url else None
        self.clock = clock
        self.progress = progress
        self.outcome = Outcome()
        self.bucket = (
            TokenBucket(plan.max_per_second, capacity=BATCH_LIMIT, clock=clock)
            if plan.max_per_second
            else None
        )

    def run(self) -> Outcome:
        plan, outcome = self.plan, self.outcome
        saved = self._checkpoint_to_resume()
        if saved is not None and saved.complete:
            outcome.already_complete = outcome.complete = True
            outcome.checkpoint = saved
            return outcome
        region = self._bucket_region()
        if self.queue is not None:
            self._check_queue(self.queue)
        if saved is None and plan.checkpoint_path is not None and not plan.dry_run:
            saved = self._save(Checkpoint(run=plan.run_identity()))  # fails now if it cannot be written
        outcome.checkpoint = saved
        start_after = saved.last_key if saved is not None else None
        outcome.resumed_after = start_after

        started = self.clock.monotonic()
        counter = self._start_counter(start_after)
        try:
            self._walk(start_after, region)
            outcome.complete = True
            if saved is not None and not plan.dry_run:
                outcome.checkpoint = self._save(replace(outcome.checkpoint or saved, complete=True))
        except EnqueueFailed as exc:
            outcome.error = str(exc)
        except KeyboardInterrupt:
            # The batch in flight may or may not have reached SQS; the checkpoint is before it either way.
            outcome.interrupted = True
            outcome.error = "interrupted"
        finally:
            if counter is not None:
                counter.stop()
            outcome.seconds = self.clock.monotonic() - started
            if self.progress is not None:
                self.progress.finish(outcome.objects, outcome.bytes)
        return outcome

    def _walk(self, start_after: str | None, region: str) -> None:
        plan, outcome = self.plan, self.outcome
        batch: list[ListedObject] = []
        listing = list_objects(self.s3, plan.location, start_after=start_after, page_size=plan.page_size)
        while True:
            try:
                obj = next(listing, None)
            except (ClientError, BotoCoreError) as exc:
                raise EnqueueFailed(_reason(exc, f"ListObjectsV2 {plan.location}")) from exc
            if obj is None:
                break
            skip = plan.filters.skip_reason(obj)
            if skip is not None:
                outcome.skipped[skip] += 1
                continue
            if plan.dry_run:
                outcome.objects += 1
                outcome.bytes += obj.size
                self._show()
                continue
            batch.append(obj)
            if len(batch) == BATCH_LIMIT:
                self._send(batch, region)
                batch = []
        if batch:
            self._send(batch, region)

    def _send(self, batch: list[ListedObject], region: str) -> None:
        assert self.queue is not None
        queue, plan = self.queue, self.plan
        messages = [
            outgoing(plan.location.bucket, obj, region=region, partition=plan.partition, fifo=queue.is_fifo)
            for obj in batch
        ]
        pending = list(range(len(messages)))  # indexes into ``batch`` not yet acknowledged by SQS
        for attempt in range(1, SEND_ATTEMPTS + 1):
            if self.bucket is not None:
                self.bucket.acquire(len(pending))
            try:
                failures = queue.send([messages[i] for i in pending])
            except (ClientError, BotoCoreError) as exc:
                raise EnqueueFailed(self._stopped(batch, _reason(exc, "SendMessageBatch"))) from exc
            self.outcome.requests += 1  # ten messages of at most a few KiB: always one call, never split
            if not failures:
                break
            refused = [f for f in failures if f.sender_fault]
            if refused:  # SQS says the entry itself is wrong: sending it again cannot help
                raise EnqueueFailed(self._stopped(batch, _failure_text(batch, pending, refused)))
            if attempt == SEND_ATTEMPTS:
                text = _failure_text(batch, pending, failures)
                raise EnqueueFailed(self._stopped(batch, f"{text}, still after {SEND_ATTEMPTS} attempts"))
            self.outcome.retried_entries += len(failures)
            pending = [pending[failure.index] for failure in failures]
            self.clock.sleep(min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1)))

        size = sum(obj.size for obj in batch)
        self.outcome.objects += len(batch)
        self.outcome.bytes += size
        self.outcome.messages += len(batch)
        if self.outcome.checkpoint is not None:
            self.outcome.checkpoint = self._save(
                self.outcome.checkpoint.advanced(
                    last_key=batch[-1].key, objects=len(batch), size=size, messages=len(batch)
                )
            )
        self._show()

    def _stopped(self, batch: list[ListedObject], reason: str) -> str:
        where = (
            f"the checkpoint is before {batch[0].key!r}; run the same command again to resume there"
            if self.outcome.checkpoint is not None
            else f"stopped at {batch[0].key!r}; without --checkpoint a new run starts from the beginning"
        )
        return f"{reason}; {where}"

    def _show(self) -> None:
        if self.progress is not None:
            self.progress.update(self.outcome.objects, self.outcome.bytes)

    def _checkpoint_to_resume(self) -> Checkpoint | None:
        path = self.plan.checkpoint_path
        if path is None:
            return None
        saved = checkpoints.load(path)
        if saved is None:
            return None
        identity = self.plan.run_identity()
        differences = saved.mismatch({**saved.run, **identity} if self.plan.dry_run else identity)
        if differences:
            raise InputError(
                f"--checkpoint {path} belongs to another run ({'; '.join(differences)}): "
                "repeat that run's options, or name a new checkpoint file"
            )
        return saved

    def _save(self, checkpoint: Checkpoint) -> Checkpoint:
        assert self.plan.checkpoint_path is not None
        try:
            checkpoints.save(self.plan.checkpoint_path, checkpoint)
        except OSError as exc:
            message = f"--checkpoint {self.plan.checkpoint_path}: cannot write it: {exc.strerror or exc}"
            if checkpoint.last_key is None and not checkpoint.complete:
                raise InputError(message) from None  # nothing sent yet: a bad path, not a failed run
            raise EnqueueFailed(message) from exc
        return checkpoint

    def _bucket_region(self) -> str:
        """Fail early and clearly on a missing bucket; the bucket's region goes into the messages."""
        bucket = self.plan.location.bucket
        try:
            response = self.s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NO_SUCH_BUCKET:
                raise InputError(
                    f"s3://{bucket}: no such bucket (check the name, the account of the credentials and "
                    "AWS_ENDPOINT_URL)"
                ) from None
            if code in ("403", "AccessDenied", "Forbidden"):
                raise EnqueueFailed(
                    f"s3://{bucket}: access denied: the caller needs s3:ListBucket on the bucket"
                ) from exc
            raise EnqueueFailed(_reason(exc, f"HeadBucket {bucket}")) from exc
        except BotoCoreError as exc:
            raise EnqueueFailed(_reason(exc, f"HeadBucket {bucket}")) from exc
        return str(response.get("BucketRegion") or self.plan.region)

    def _check_queue(self, queue: SqsQueue) -> None:
        try:
            queue.client.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["QueueArn"])
        except ClientError as exc:
            if is_missing_queue(exc):
                raise InputError(
                    f"queue {queue.url} does not exist (check --queue-url/SQS_QUEUE_URL)"
                ) from None
            raise EnqueueFailed(_reason(exc, f"GetQueueAttributes {queue.url}")) from exc
        except BotoCoreError as exc:
            raise EnqueueFailed(_reason(exc, f"GetQueueAttributes {queue.url}")) from exc

    def _start_counter(self, start_after: str | None) -> _TotalCounter | None:
        if self.progress is None or self.plan.dry_run or not self.plan.count_total:
            return None  # a dry run is itself the count
        counter = _TotalCounter(
            lambda: list_objects(
                self.s3, self.plan.location, start_after=start_after, page_size=self.plan.page_size
            ),
            self.plan.filters,
            self.progress,
        )
        counter.start()
        return counter


class _TotalCounter(threading.Thread):
    """Lists the same objects once more, only counting, so the bar has a total while the run sends.

    Listing returns about 1000 keys per request and sending 10, so the total is known long before the end.
    LIST requests cost $0.005 per 1000, i.e. half a cent per million objects.
    """

    def __init__(
        self, listing: Callable[[], Any], filters: Filters, progress: Progress, *, report_every: int = 1000
    ) -> None:
        super().__init__(name="enqueue-counter", daemon=True)
        self._listing = listing
        self._filters = filters
        self._progress = progress
        self._report_every = report_every
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        objects = size = 0
        try:
            for listed, obj in enumerate(self._listing(), start=1):
                if self._stopped.is_set():
                    return
                if self._filters.skip_reason(obj) is None:
                    objects += 1
                    size += obj.size
                if listed % self._report_every == 0:
                    self._progress.set_total(objects, size, final=False)
            self._progress.set_total(objects, size, final=True)
        except Exception:  # the bar just goes without a total; the run does not depend on it
            log.debug("enqueue.count_failed", exc_info=True)


def _reason(exc: Exception, action: str) -> str:
    return classify_aws_error(exc, action=action).reason


def _failure_text(batch: list[ListedObject], pending: list[int], failures: list[EntryFailure]) -> str:
    first = failures[0]
    key = batch[pending[first.index]].key
    return (
        f"SQS refused {len(failures)} of {len(pending)} messages, e.g. {key!r}: {first.code}: "
        f"{first.detail or 'no detail'}"
    )


def summary(plan: Plan, outcome: Outcome) -> str:
    """What the run did, for stdout: objects, bytes, messages, seconds, rate, and where it stopped."""
    source = str(plan.location)
    if outcome.already_complete:
        return (
            f"{source}: the checkpoint {plan.checkpoint_path} says this run already finished "
            f"({_count(outcome.checkpoint)}); delete the file to enqueue everything again"
        )
    lines: list[str] = []
    if plan.dry_run:
        lines.append(f"dry run: {source} (nothing sent)")
        lines.append(f"  would enqueue  {outcome.objects:,} objects, {outcome.bytes:,} bytes")
        lines[-1] += f" ({human_bytes(outcome.bytes)})"
    else:
        lines.append(f"enqueue: {source} → {plan.queue_url}")
        lines.append(
            f"  objects   {outcome.objects:,}, {outcome.bytes:,} bytes ({human_bytes(outcome.bytes)})"
        )
        lines.append(
            f"  messages  {outcome.messages:,} in {outcome.requests:,} SendMessageBatch requests"
            + (f" ({outcome.retried_entries:,} entries retried)" if outcome.retried_entries else "")
        )
    if outcome.skipped:
        skipped = ", ".join(f"{count:,} {reason.value}" for reason, count in sorted(outcome.skipped.items()))
        lines.append(f"  skipped   {skipped}")
    lines.append(f"  time      {outcome.seconds:,.1f} s, {outcome.rate:,.1f} objects/s")
    if outcome.resumed_after is not None:
        lines.append(f"  resumed   after {outcome.resumed_after!r}")
    if plan.checkpoint_path is not None and outcome.checkpoint is not None and not plan.dry_run:
        state = "complete" if outcome.checkpoint.complete else f"at {outcome.checkpoint.last_key!r}"
        lines.append(f"  checkpoint {plan.checkpoint_path}: {state}; all runs: {_count(outcome.checkpoint)}")
    if outcome.error is not None:
        lines.append(f"  stopped   {outcome.error}")
    return "\n".join(lines)


def _count(checkpoint: Checkpoint | None) -> str:
    if checkpoint is None:
        return "no counts"
    return f"{checkpoint.objects:,} objects, {checkpoint.bytes:,} bytes ({human_bytes(checkpoint.bytes)})"
