"""`fleet destroy`: delete the stack and everything it made, after saying what would be lost."""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from provisioning.fleet.aws import FleetAws
from provisioning.fleet.confirm import confirm
from provisioning.fleet.errors import FleetConfigError
from provisioning.fleet.polling import Polling
from provisioning.fleet.progress import follow_stack, latest_event_id
from provisioning.fleet.stack import Stack, find_stack, recovery
from provisioning.fleet.status import DEAD_LETTER_OUTPUT, QUEUE_OUTPUT, queue_depth

Say = Callable[[str], None]
_DELETING = "DELETE_IN_PROGRESS"


def destroy(aws: FleetAws, *, stack_name: str, assume_yes: bool, polling: Polling, say: Say) -> int:
    cloudformation = aws.cloudformation
    stack = find_stack(cloudformation, stack_name)
    if stack is None:
        say(f"No stack {stack_name} in {aws.region}: nothing to destroy.")
        return 0
    if stack.termination_protection:
        raise FleetConfigError(
            f"stack {stack.name} has termination protection: turn it off first with `aws cloudformation "
            f"update-termination-protection --no-enable-termination-protection --stack-name {stack.name}`"
        )
    if stack.in_progress and stack.status != _DELETING:
        raise FleetConfigError(f"stack {stack.name} is {stack.status}: {recovery(stack)}")
    for warning in _message_loss(aws, stack):
        say(warning)
    say(f"Deleting stack {stack.name} in {aws.region} deletes every resource it created.")
    if not confirm(f"Delete stack {stack.name}?", assume_yes=assume_yes, expected=stack.name):
        say("Nothing deleted.")
        return 1
    marker = latest_event_id(cloudformation, stack.stack_id)
    if stack.status != _DELETING:  # already being deleted: just follow it
        cloudformation.delete_stack(StackName=stack.stack_id)
    follow_stack(cloudformation, stack.stack_id, since=marker, polling=polling, say=say)
    say(f"Stack {stack.name} deleted.")
    return 0


def _message_loss(aws: FleetAws, stack: Stack) -> list[str]:
    """Warnings for every queue of the stack that still holds messages (deleting a queue deletes them)."""
    warnings = []
    for label, output in (("queue", QUEUE_OUTPUT), ("dead-letter queue", DEAD_LETTER_OUTPUT)):
        url = stack.outputs.get(output)
        if not url:
            continue
        try:
            depth = queue_depth(aws.sqs, url)
        except (ClientError, BotoCoreError) as exc:
            warnings.append(
                f"WARNING: could not read the {label} {url} ({exc}); any messages in it will be lost."
            )
            continue
        if depth.total:
            warnings.append(
                f"WARNING: the {label} holds {depth.total} message(s) ({depth.visible} visible, "
                f"{depth.in_flight} in flight, {depth.delayed} delayed); deleting the stack deletes the "
                "queue and they are lost."
            )
    return warnings
