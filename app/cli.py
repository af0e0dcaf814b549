"""filefleet: turn files landing in S3 into searchable documents. Exit status 2: a configuration problem."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from app import __version__
from app.aws import AwsClients
from app.config import ConfigError, Settings
from app.consumer.queue import SqsQueue
from app.drain import DrainSignal
from app.handler import HeadObjectHandler
from app.logs import configure_logging
from app.worker import Worker

log = logging.getLogger("app.cli")

EXIT_CONFIG = 2
DEFAULT_MAX_RECEIVE_COUNT = 5  # when the queue has no redrive policy to say otherwise


class StartupError(Exception):
    """The environment is wrong in a way the operator must fix; the message says how."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except (ConfigError, StartupError) as exc:
        print(f"filefleet: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="filefleet", description=__doc__)
    parser.add_argument("--version", action="version", version=f"filefleet {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    worker = commands.add_parser("worker", help="consume the SQS queue until stopped (SIGTERM/SIGINT drain)")
    worker.add_argument(
        "--until-idle",
        type=_positive_seconds,
        metavar="SECONDS",
        help="exit 0 once no message has arrived and none is in flight for this long (batch runs, tests)",
    )
    worker.set_defaults(command=_run_worker)
    return parser


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("it must be more than 0 seconds")
    return value


def _run_worker(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level)
    clients = AwsClients(settings)
    source = SqsQueue(clients.sqs(), settings.queue.queue_url)
    dead_letter_url, max_receive_count = _dead_letter_route(source, settings)
    drain = DrainSignal()
    worker = Worker(
        settings.queue,
        source=source,
        dead_letter=SqsQueue(source.client, dead_letter_url),
        max_receive_count=max_receive_count,
        handler=HeadObjectHandler(clients.s3()),
        drain=drain,
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(
            signum, lambda received, _frame: drain.request(f"signal:{signal.Signals(received).name}")
        )
    result = worker.run(until_idle=args.until_idle)
    if result.abandoned:
        # File threads that outlived the drain deadline cannot be joined; their messages were released.
        sys.stdout.flush()
        os._exit(result.exit_code)
    return result.exit_code


def _dead_letter_route(source: SqsQueue, settings: Settings) -> tuple[str, int]:
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
        raise StartupError(f"SQS_QUEUE_URL={settings.queue.queue_url}: {code}: {exc}") from None
    except BotoCoreError as exc:
        raise StartupError(f"cannot reach SQS for {settings.queue.queue_url}: {exc}") from None
    url = settings.queue.dead_letter_queue_url or (route.url if route else None)
    if url is None:
        raise StartupError(
            "no dead-letter queue: set DEAD_LETTER_QUEUE_URL or give the queue a RedrivePolicy "
            "(a worker without one could only drop or endlessly retry what it cannot process)"
        )
    limit = settings.queue.max_receive_count or (route.max_receive_count if route else None)
    return url, limit or DEFAULT_MAX_RECEIVE_COUNT
