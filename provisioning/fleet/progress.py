"""Following a stack operation: its events printed as they arrive, until the stack settles.

Events are read newest first (DescribeStackEvents) and printed oldest first, from the first event after a
marker taken before the operation started, so an operator sees this operation's events and no older ones.
When the operation fails, the first failure in time is the cause; later ones ("Resource creation
cancelled", rollback deletes) are consequences, so the error names the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisioning.fleet.aws import Client
from provisioning.fleet.errors import FleetFailure
from provisioning.fleet.polling import Polling
from provisioning.fleet.stack import REVIEW_IN_PROGRESS, Stack, find_stack, recovery

Say = Callable[[str], None]
SUCCEEDED = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE"})
_CANCELLED = "cancelled"


def latest_event_id(cloudformation: Client, stack_id: str) -> str | None:
    """The marker: the id of the stack's newest event now (None for a stack with no events yet)."""
    events = cloudformation.describe_stack_events(StackName=stack_id).get("StackEvents", [])
    return str(events[0]["EventId"]) if events else None


def format_event(event: dict[str, Any]) -> str:
    when = event.get("Timestamp")
    clock = f"{when:%H:%M:%S}" if when is not None else "--:--:--"
    reason = event.get("ResourceStatusReason") or ""
    return (
        f"  {clock}  {event.get('ResourceStatus', ''):<36} {event.get('LogicalResourceId', '')}"
        f"  ({event.get('ResourceType', '')}){'  ' + reason if reason else ''}"
    )


@dataclass
class _EventReader:
    """Hands out each event of the operation once, oldest first."""

    cloudformation: Client
    stack_id: str
    seen: str | None  # newest event already handed out (or the marker)
    first_failure: str | None = None

    def new_events(self) -> list[dict[str, Any]]:
        fresh: list[dict[str, Any]] = []
        paginator = self.cloudformation.get_paginator("describe_stack_events")
        for page in paginator.paginate(StackName=self.stack_id):
            for event in page.get("StackEvents", []):
                if event.get("EventId") == self.seen:
                    return self._remember(fresh)
                fresh.append(event)
        return self._remember(fresh)

    def _remember(self, fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if fresh:
            self.seen = fresh[0]["EventId"]
        fresh.reverse()
        for event in fresh:
            reason = str(event.get("ResourceStatusReason") or "")
            failed = str(event.get("ResourceStatus", "")).endswith("_FAILED")
            if self.first_failure is None and failed and reason and _CANCELLED not in reason:
                self.first_failure = f"{event.get('LogicalResourceId')}: {reason}"
        return fresh


def follow_stack(
    cloudformation: Client, stack_id: str, *, since: str | None, polling: Polling, say: Say
) -> Stack:
    """Print the operation's events until the stack leaves *_IN_PROGRESS; return it if the operation worked.

    Raises FleetFailure naming the first failure when it ends in any other state (ROLLBACK_COMPLETE,
    UPDATE_ROLLBACK_COMPLETE, *_FAILED), and OperationTimedOut (the operation goes on) at the deadline.
    """
    reader = _EventReader(cloudformation, stack_id, seen=since)
    # ExecuteChangeSet and DeleteStack return before the stack's status moves: until this operation shows
    # (an event after the marker, or an operation in progress), the old "..._COMPLETE" is not its result.
    started = False

    def settled() -> Stack | None:
        nonlocal started
        # The status first, then the events: every event up to a final status is printed before returning.
        stack = find_stack(cloudformation, stack_id)
        events = reader.new_events()
        for event in events:
            say(format_event(event))
        if stack is None:
            raise FleetFailure(f"stack {stack_id} disappeared while it was being followed")
        in_progress = stack.status.endswith("_IN_PROGRESS")
        started = started or bool(events) or (in_progress and stack.status != REVIEW_IN_PROGRESS)
        return stack if started and not in_progress else None

    stack = polling.until(
        settled,
        waiting_for=f"stack {stack_id}",
        on_timeout="the operation goes on in CloudFormation: watch it with `filefleet fleet status`",
    )
    if stack.status not in SUCCEEDED:
        cause = f" ({reader.first_failure})" if reader.first_failure else ""
        raise FleetFailure(f"stack {stack.name} ended {stack.status}{cause}: {recovery(stack)}")
    return stack
