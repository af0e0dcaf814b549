"""`filefleet enqueue s3://BUCKET/PREFIX`: send the objects already in a bucket to the worker's queue.

The day the pipeline is switched on, S3 notifies it of new uploads only; this backfills what was there before,
as S3-shaped messages (app.enqueue.notification), resumably (app.enqueue.checkpoint) and at a bounded rate.
Sending an object twice is harmless: the worker fetches the object as it is now and the index is idempotent.

Only argparse is imported here: app.cli imports this module for every command, and boto3 is loaded when
``enqueue`` runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app import argtypes

if TYPE_CHECKING:
    from app.aws import AwsClients

EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130  # the shell's convention for a run ended by SIGINT
DEFAULT_PAGE_SIZE = 1000


def add_enqueue_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "enqueue",
        help="send the objects already in S3 to the queue as S3 event messages (a backfill)",
        description=(
            "List s3://BUCKET/PREFIX and send one S3 ObjectCreated message per object to the queue, in "
            "batches of 10. Progress goes to stderr, the summary to stdout."
        ),
    )
    parser.add_argument("url", metavar="s3://BUCKET/PREFIX", help="the bucket, and optionally a key prefix")
    parser.add_argument("--queue-url", metavar="URL", help="the queue to fill (default: $SQS_QUEUE_URL)")
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only objects last modified at or after this ISO date or date-time (UTC unless offset)",
    )
    parser.add_argument(
        "--suffix",
        action="append",
        metavar="SUFFIX",
        help="only keys ending in SUFFIX, case-insensitive; repeat it or separate suffixes with commas",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="record progress in FILE after every batch; run the same command again to resume after it",
    )
    parser.add_argument(
        "--max-per-second", type=argtypes.positive, metavar="N", help="send at most N messages a second"
    )
    parser.add_argument("--dry-run", action="store_true", help="count the objects and bytes; send nothing")
    parser.add_argument(
        "--include-archived",
        action="store_true",
        help="also send GLACIER and DEEP_ARCHIVE objects (skipped by default: the worker cannot read them "
        "until they are restored)",
    )
    parser.add_argument(
        "--page-size",
        type=argtypes.whole(1, DEFAULT_PAGE_SIZE),
        default=DEFAULT_PAGE_SIZE,
        metavar="N",
        help=f"keys per ListObjectsV2 request, 1-1000 (default {DEFAULT_PAGE_SIZE}; smaller is for tests)",
    )
    parser.set_defaults(command=run_enqueue)


def run_enqueue(args: argparse.Namespace) -> int:
    # Imported here: boto3 and the listing machinery are paid for only by this command.
    from app.aws import AwsClients  # noqa: PLC0415
    from app.config import ConfigError, log_level_from_env, region_from_env  # noqa: PLC0415
    from app.enqueue.backfill import EnqueueFailed, Plan, run, summary  # noqa: PLC0415
    from app.enqueue.listing import (  # noqa: PLC0415
        Filters,
        InputError,
        parse_s3_url,
        parse_since,
        parse_suffixes,
    )
    from app.enqueue.pacing import SystemClock  # noqa: PLC0415
    from app.enqueue.progress import Progress  # noqa: PLC0415
    from app.logs import configure_logging  # noqa: PLC0415

    configure_logging(log_level_from_env(os.environ), stream=sys.stderr)  # stdout carries the summary
    try:
        location = parse_s3_url(args.url)
        filters = Filters(
            since=None if args.since is None else parse_since(args.since),
            suffixes=parse_suffixes(args.suffix),
            include_archived=args.include_archived,
        )
        queue_url = (args.queue_url or os.environ.get("SQS_QUEUE_URL") or "").strip() or None
        if queue_url is not None and not queue_url.startswith(("https://", "http://")):
            raise InputError(f"the queue URL {queue_url!r} is not an http(s) URL")
        if queue_url is None and not args.dry_run:
            raise InputError("no queue: pass --queue-url or set SQS_QUEUE_URL (or count with --dry-run)")
        region = region_from_env(os.environ, queue_url=queue_url)
        clients = AwsClients(region=region, concurrency=2)  # the run, and the listing that counts the total
        plan = Plan(
            location=location,
            filters=filters,
            queue_url=None if args.dry_run else queue_url,
            region=region,
            partition=_partition(clients, region),
            page_size=args.page_size,
            max_per_second=args.max_per_second,
            checkpoint_path=args.checkpoint,
            dry_run=args.dry_run,
        )
        clock = SystemClock()
        progress = Progress(
            sys.stderr, tty=sys.stderr.isatty(), clock=clock, verb="counted" if args.dry_run else "enqueued"
        )
        outcome = run(
            plan,
            s3=clients.s3(),
            sqs=None if args.dry_run else clients.sqs(),
            clock=clock,
            progress=progress,
        )
    except ConfigError as exc:  # InputError included: bad input, named on one line
        print(f"filefleet: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except EnqueueFailed as exc:
        print(f"filefleet: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:  # before the first batch (checks, checkpoint file): nothing was sent
        print("filefleet: interrupted before anything was sent", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary(plan, outcome))
    if outcome.interrupted:
        print("filefleet: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if outcome.error is not None:
        print(f"filefleet: {outcome.error}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _partition(clients: AwsClients, region: str) -> str:
    """aws, aws-cn, aws-us-gov...: the bucket ARN in a message names it."""
    from botocore.exceptions import UnknownRegionError  # noqa: PLC0415

    try:
        return str(clients.session.get_partition_for_region(region))
    except UnknownRegionError:  # an emulator's made-up region: the standard partition
        return "aws"
