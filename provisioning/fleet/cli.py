"""argparse for `filefleet fleet ...`, and the one place errors become exit codes.

Register the commands under filefleet's parser with :func:`register`. Exit status: 0 done (or nothing to do);
1 a failure while running, an operation that ended badly or an operator's "no"; 2 refused before acting
(configuration, credentials, a missing AMI, a stack in a state that blocks the command), said on one line.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from app import argtypes
from app.config import ConfigError
from app.errors import FileError
from provisioning.fleet.aws import FleetAws
from provisioning.fleet.deploy import DeployRequest, deploy
from provisioning.fleet.destroy import destroy
from provisioning.fleet.errors import FleetConfigError, FleetFailure, explain_aws_error
from provisioning.fleet.parameters import parse_assignments, read_parameters_file
from provisioning.fleet.polling import DEFAULT_TIMEOUT_SECONDS, Polling
from provisioning.fleet.rollout import RolloutRequest, rollback, rollout
from provisioning.fleet.status import gather
from provisioning.fleet.status_report import render_status

EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
DEFAULT_STACK_NAME = "filefleet"
STACK_NAME_ENV = "FILEFLEET_STACK_NAME"
TEMPLATE_BUCKET_ENV = "FILEFLEET_TEMPLATE_BUCKET"
_AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")

Connect = Callable[[argparse.Namespace], FleetAws]
Action = Callable[[FleetAws, argparse.Namespace, Polling], int]
say = functools.partial(print, flush=True)  # progress must show while a wait runs, even through a pipe


def _connect(args: argparse.Namespace) -> FleetAws:
    return FleetAws.connect(profile=args.profile, region=args.region)


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    *,
    connect: Connect | None = None,
    polling: Polling | None = None,
) -> None:
    """Add `fleet deploy|rollout|status|destroy` to ``subparsers`` (filefleet's top-level subparsers).

    ``connect`` and ``polling`` are for tests: where the AWS clients come from, and how fast waits poll.
    """
    connect = connect or _connect
    polling = polling or Polling()
    fleet = subparsers.add_parser(
        "fleet",
        help="the fleet's CloudFormation stack: deploy, roll out an AMI, status, destroy",
        description="Operate the fleet's CloudFormation stack. Exit status: 0 done or nothing to do; "
        "1 failed or declined; 2 refused before acting (configuration, credentials, AMI, stack state).",
    )
    actions = fleet.add_subparsers(required=True, metavar="ACTION")
    common = _common_options()
    waiting = _waiting_options()

    deploy = actions.add_parser(
        "deploy", parents=[common, waiting], help="create or update the stack through a reviewed change set"
    )
    deploy.add_argument(
        "--template", type=Path, help="the template to deploy (default: the packaged provisioning/fleet.yaml)"
    )
    deploy.add_argument(
        "--template-bucket",
        default=os.environ.get(TEMPLATE_BUCKET_ENV) or None,
        metavar="BUCKET",
        help="an S3 bucket of yours to upload a template over 51,200 bytes to (CloudFormation's inline "
        f"limit; default: ${TEMPLATE_BUCKET_ENV})",
    )
    deploy.add_argument(
        "--parameters",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="parameter values; on an update every parameter not given keeps its deployed value",
    )
    deploy.add_argument(
        "--parameters-file",
        type=Path,
        metavar="FILE.json",
        help='{"Key": "Value"} or the AWS CLI\'s [{"ParameterKey": ..., "ParameterValue": ...}]; '
        "--parameters win over it",
    )
    deploy.set_defaults(command=_runner("deploy", _run_deploy, connect, polling))

    rollout = actions.add_parser(
        "rollout",
        parents=[common, waiting],
        help="set the stack's AmiId, then replace the instances with an instance refresh",
    )
    target = rollout.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--ami", type=_ami_id, metavar="AMI_ID", help="the AMI to roll out (from the Packer build)"
    )
    target.add_argument(
        "--rollback",
        action="store_true",
        help="undo the running instance refresh (the API's rollback), then set AmiId back to match",
    )
    rollout.add_argument(
        "--min-healthy-percentage",
        type=argtypes.whole(0, 100),
        default=90,
        metavar="PERCENT",
        help="capacity kept in service while instances are replaced (default 90)",
    )
    rollout.add_argument(
        "--skip-matching",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="leave instances that already run the new launch template version (default: on)",
    )
    rollout.set_defaults(command=_runner("rollout", _run_rollout, connect, polling))

    status = actions.add_parser(
        "status", parents=[common], help="the group, its instances, queues and backlog"
    )
    status.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    status.add_argument(
        "--activities",
        type=argtypes.whole(),
        default=10,
        metavar="N",
        help="recent scaling activities to show (10)",
    )
    status.set_defaults(command=_runner("status", _run_status, connect, polling))

    destroy = actions.add_parser(
        "destroy", parents=[common, waiting], help="delete the stack (warns when its queues hold messages)"
    )
    destroy.set_defaults(command=_runner("destroy", _run_destroy, connect, polling))


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--profile", help="AWS profile, as in the AWS CLI (default: AWS_PROFILE, else default)"
    )
    common.add_argument(
        "--region", help="AWS region, as in the AWS CLI (default: AWS_REGION or the profile's)"
    )
    common.add_argument(
        "--stack-name",
        default=os.environ.get(STACK_NAME_ENV) or DEFAULT_STACK_NAME,
        help=f"the fleet's stack (default: ${STACK_NAME_ENV}, else {DEFAULT_STACK_NAME})",
    )
    return common


def _waiting_options() -> argparse.ArgumentParser:
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument("--yes", "-y", action="store_true", help="go ahead without asking")
    waiting.add_argument(
        "--timeout",
        type=argtypes.positive,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="stop waiting after this long, per wait; the operation itself goes on (default 3600)",
    )
    return waiting


def _runner(
    name: str, action: Action, connect: Connect, polling: Polling
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            aws = connect(args)
            return action(aws, args, polling.with_timeout(getattr(args, "timeout", polling.timeout)))
        except ConfigError as exc:  # FleetConfigError, and the backlog reader's missing queue or group
            return _fail(str(exc), EXIT_CONFIG)
        except FleetFailure as exc:
            return _fail(str(exc), EXIT_FAILURE)
        except FileError as exc:  # the backlog reader's classified AWS errors
            return _fail(exc.reason, EXIT_FAILURE)
        except (ClientError, BotoCoreError) as exc:
            explained = explain_aws_error(exc, action=f"fleet {name}")
            return _fail(
                str(explained), EXIT_CONFIG if isinstance(explained, FleetConfigError) else EXIT_FAILURE
            )
        except KeyboardInterrupt:
            return _fail(
                "interrupted; anything already started goes on in AWS (see `filefleet fleet status`)",
                EXIT_INTERRUPTED,
            )

    return run


def _fail(message: str, code: int) -> int:
    print(f"filefleet: {' '.join(message.split())}", file=sys.stderr)  # one line, whatever AWS sent
    return code


def _run_deploy(aws: FleetAws, args: argparse.Namespace, polling: Polling) -> int:
    given = read_parameters_file(args.parameters_file) if args.parameters_file else {}
    given.update(parse_assignments(args.parameters))
    request = DeployRequest(
        stack_name=args.stack_name,
        template_path=args.template,
        template_bucket=args.template_bucket,
        parameters=given,
        assume_yes=args.yes,
    )
    return deploy(aws, request, polling=polling, say=say)


def _run_rollout(aws: FleetAws, args: argparse.Namespace, polling: Polling) -> int:
    if args.rollback:
        return rollback(aws, stack_name=args.stack_name, assume_yes=args.yes, polling=polling, say=say)
    request = RolloutRequest(
        stack_name=args.stack_name,
        ami=args.ami,
        min_healthy_percentage=args.min_healthy_percentage,
        skip_matching=args.skip_matching,
        assume_yes=args.yes,
    )
    return rollout(aws, request, polling=polling, say=say)


def _run_status(aws: FleetAws, args: argparse.Namespace, polling: Polling) -> int:
    status = gather(aws, args.stack_name, activities=args.activities)
    if args.json:
        say(json.dumps(status.as_json(), indent=2, default=str))
    else:
        for line in render_status(status):
            say(line)
    return 0


def _run_destroy(aws: FleetAws, args: argparse.Namespace, polling: Polling) -> int:
    return destroy(aws, stack_name=args.stack_name, assume_yes=args.yes, polling=polling, say=say)


def _ami_id(text: str) -> str:
    if not _AMI_ID.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an AMI id (ami- and 8 or 17 hex digits)")
    return text


def main(
    argv: Sequence[str] | None = None, *, connect: Connect | None = None, polling: Polling | None = None
) -> int:
    """`filefleet fleet ...` on its own (tests; `python -m provisioning.fleet`), exactly as registered."""
    parser = argparse.ArgumentParser(prog="filefleet")
    register(parser.add_subparsers(required=True, metavar="COMMAND"), connect=connect, polling=polling)
    args = parser.parse_args(argv)
    return int(args.command(args))
