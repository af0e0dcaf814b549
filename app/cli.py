"""filefleet: turn files landing in S3 into searchable documents.

Exit status 2 means a configuration problem, named on one line; 1 a failure while running.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from app import __version__, argtypes
from app.config import (
    BacklogSettings,
    ConfigError,
    EmbedderSettings,
    Settings,
    SinkSettings,
    log_level_from_env,
    region_from_env,
)
from app.cost import add_cost_parser
from app.drain import DrainSignal
from app.enqueue import add_enqueue_parser
from app.errors import FileError, StartupError, TransientError
from app.logs import configure_logging
from app.simulate.cli import add_simulate_parser
from app.state import STATE_FILE_ENV, StateFile, StatePublisher
from provisioning.fleet.cli import register as register_fleet

EXIT_FAILURE = 1
EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except (ConfigError, StartupError) as exc:
        print(f"filefleet: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except TransientError as exc:
        print(f"filefleet: {exc.reason} (try again when it is reachable)", file=sys.stderr)
        return EXIT_FAILURE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="filefleet", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"filefleet {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    worker = commands.add_parser("worker", help="consume the SQS queue until stopped (SIGTERM/SIGINT drain)")
    worker.add_argument(
        "--until-idle",
        type=argtypes.positive,
        metavar="SECONDS",
        help="exit 0 once no message has arrived and none is in flight for this long (batch runs, tests)",
    )
    worker.set_defaults(command=_run_worker)

    run = commands.add_parser(
        "run", help="the container's command: the worker plus gunicorn serving /healthz /readyz /metrics"
    )
    run.set_defaults(command=_run_supervisor)

    search = commands.add_parser("search", help="search the index: by text, or for files like a local one")
    query = search.add_mutually_exclusive_group(required=True)
    query.add_argument("text", nargs="?", help="words to look for")
    query.add_argument("--like", type=Path, metavar="FILE", help="a local file: find the most similar files")
    search.add_argument("-k", type=int, default=10, help="how many results (default 10)")
    search.add_argument(
        "--lexical",
        action="store_true",
        help="match words only, even when the embedder could search by meaning",
    )
    search.set_defaults(command=_run_search)

    backlog = commands.add_parser("backlog", help="the BacklogPerInstance metric the fleet scales on")
    backlog_commands = backlog.add_subparsers(required=True, metavar="ACTION")
    publish = backlog_commands.add_parser(
        "publish",
        help="visible messages ÷ in-service instances, to CloudWatch (the Lambda does this each minute)",
    )
    publish.add_argument("--dry-run", action="store_true", help="measure and print, publish nothing")
    publish.set_defaults(command=_run_backlog_publish)

    dev = commands.add_parser("dev", help="local development helpers (emulators, docker compose)")
    dev_commands = dev.add_subparsers(required=True, metavar="ACTION")
    bootstrap = dev_commands.add_parser(
        "bootstrap", help="create the bucket, queue, DLQ and S3 notification on an emulator (idempotent)"
    )
    bootstrap.add_argument("--bucket", default=os.environ.get("S3_BUCKET") or "filefleet-landing")
    bootstrap.add_argument("--queue", default=_queue_name_from_env(), help="queue name (the DLQ is NAME-dlq)")
    bootstrap.set_defaults(command=_run_dev_bootstrap)

    demo = commands.add_parser("demo", help="the whole pipeline on this machine: no AWS account, no Docker")
    demo.add_argument(
        "folder", nargs="?", type=Path, help="upload these files instead of the generated samples"
    )
    demo.add_argument(
        "--workdir", type=Path, default=Path(".demo"), help="where the demo keeps its index and log (.demo)"
    )
    demo.set_defaults(command=_run_demo)

    add_enqueue_parser(commands)
    register_fleet(commands)
    add_cost_parser(commands)
    add_simulate_parser(commands)
    return parser


def _queue_name_from_env() -> str:
    url = os.environ.get("SQS_QUEUE_URL", "").rstrip("/")
    return url.rsplit("/", 1)[-1] if url else "filefleet-files"


def _run_worker(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level)
    drain = DrainSignal()  # a signal during start-up is kept and honoured as soon as the worker runs
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, _: drain.request(f"signal:{signal.Signals(received).name}"))
    state_path = os.environ.get(STATE_FILE_ENV)
    publisher = StatePublisher(StateFile(state_path)).start() if state_path else None
    try:
        from app.runtime import serve_worker  # noqa: PLC0415 - `filefleet run` must not pay for the pipeline

        result = serve_worker(settings, drain, publisher, until_idle=args.until_idle)
    finally:
        if publisher is not None:
            publisher.stop()
    if result.abandoned:
        # File threads that outlived the drain deadline cannot be joined; their messages were released.
        sys.stdout.flush()
        os._exit(result.exit_code)
    return result.exit_code


def _run_supervisor(args: argparse.Namespace) -> int:
    from app.supervisor import run  # noqa: PLC0415 - only the container's command needs it

    settings = Settings.from_env(os.environ)  # a configuration error stops here, before any child starts
    configure_logging(settings.log_level)
    return run(settings)


def _run_search(args: argparse.Namespace) -> int:
    from app.aws import AwsClients  # noqa: PLC0415 - each command imports what it needs
    from app.runtime import IndexRuntime  # noqa: PLC0415
    from app.search import print_hits, search  # noqa: PLC0415

    configure_logging(log_level_from_env(os.environ))
    clients = AwsClients(region=region_from_env(os.environ), concurrency=1)
    index = IndexRuntime.open(
        clients, EmbedderSettings.from_env(os.environ), SinkSettings.from_env(os.environ)
    )
    try:
        hits = search(index, text=args.text, like=args.like, k=args.k, lexical=args.lexical)
    except FileError as exc:
        print(f"filefleet: {exc.reason}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        index.close()
    print_hits(hits)
    return 0


def _run_backlog_publish(args: argparse.Namespace) -> int:
    from app.aws import AwsClients  # noqa: PLC0415 - each command imports what it needs
    from app.backlog import run  # noqa: PLC0415

    configure_logging(log_level_from_env(os.environ))
    settings = BacklogSettings.from_env(os.environ)
    clients = AwsClients(region=region_from_env(os.environ, queue_url=settings.queue_url), concurrency=1)
    try:
        reading = run(settings, clients.session, dry_run=args.dry_run)
    except FileError as exc:  # AWS refused (access denied, throttling): say so, like search does
        print(f"filefleet: {exc.reason}", file=sys.stderr)
        return EXIT_FAILURE
    print(reading.summary(dry_run=args.dry_run))
    return 0


def _run_dev_bootstrap(args: argparse.Namespace) -> int:
    from app.aws import AwsClients  # noqa: PLC0415 - each command imports what it needs
    from app.devtools import bootstrap  # noqa: PLC0415

    configure_logging(log_level_from_env(os.environ))
    landing = bootstrap(
        AwsClients(region=region_from_env(os.environ), concurrency=1), bucket=args.bucket, queue=args.queue
    )
    print(
        f"S3_BUCKET={landing.bucket}\nSQS_QUEUE_URL={landing.queue_url}\nDEAD_LETTER_QUEUE_URL={landing.dead_letter_queue_url}"
    )
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo  # noqa: PLC0415 - the demo imports moto: keep it out of the worker

    return run_demo(folder=args.folder, workdir=args.workdir)
