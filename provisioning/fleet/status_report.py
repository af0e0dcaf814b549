"""`fleet status` for a person at a terminal: one screen, most urgent facts first."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from provisioning.fleet.status import Activity, FleetStatus, QueueDepth

_CAUSE_WIDTH = 160


def render_status(status: FleetStatus) -> list[str]:
    stack, group = status.stack, status.group
    lines = [
        f"Stack {stack['name']}: {stack['status']}"
        + (f" (AmiId {stack['ami']})" if stack.get("ami") else ""),
        f"Group {group['name']}: desired {group['desired']} (min {group['min']}, max {group['max']}), "
        f"{group['in_service']} in service",
        *_instance_lines(status),
        _queue_line("Queue", status.queue),
    ]
    if status.dead_letter_queue is not None:
        lines.append(_queue_line("Dead-letter queue", status.dead_letter_queue))
    lines.append(_age_line(status.oldest_message_age))
    lines.append(_backlog_line(status.backlog))
    lines.extend(_activity_lines("Recent scaling activities (newest first):", status.activities))
    lines.extend(
        _activity_lines(
            "Spot interruptions and capacity rebalancing (last 50 activities):", status.interruptions
        )
    )
    return lines


def _instance_lines(status: FleetStatus) -> list[str]:
    if not status.instances:
        return ["  no instances"]
    lines = [
        f"  {i.instance_id:<20} {i.lifecycle_state:<20} {i.health:<10} {i.instance_type:<11} {i.zone:<16} "
        f"{i.purchase:<10} v{i.launch_template_version or '?'}"
        + ("  protected from scale-in" if i.protected_from_scale_in else "")
        for i in status.instances
    ]
    purchase = Counter(i.purchase for i in status.instances)
    types = Counter(i.instance_type for i in status.instances)
    lines.append(
        f"  {purchase['Spot']} Spot, {purchase['On-Demand']} On-Demand; "
        + ", ".join(f"{name} x{count}" for name, count in sorted(types.items()))
    )
    return lines


def _queue_line(label: str, depth: QueueDepth) -> str:
    return f"{label}: {depth.visible} visible, {depth.in_flight} in flight, {depth.delayed} delayed"


def _age_line(age: dict[str, Any]) -> str:
    if age.get("unavailable"):
        return f"Oldest message: unavailable ({age['unavailable']})"
    if age.get("seconds") is None:
        return f"Oldest message: no data in the last 15 minutes ({age['source']})"
    at = datetime.fromisoformat(age["at"])
    return f"Oldest message: {_duration(float(age['seconds']))} old ({age['source']}, at {at:%H:%M:%S})"


def _backlog_line(backlog: dict[str, Any]) -> str:
    target = f" (target {backlog['target']})" if backlog.get("target") else ""
    text = (
        f"Backlog per instance: {backlog['backlog_per_instance']:g}{target}: "
        f"{backlog['visible_messages']} visible message(s) over {backlog['in_service_instances']} "
        f"in-service instance(s)"
    )
    if backlog.get("needs_scale_from_zero"):
        text += "; work waits and no instance is in service (the scale-from-zero alarm's case)"
    return text


def _activity_lines(title: str, activities: list[Activity]) -> list[str]:
    if not activities:
        return [f"{title} none"]
    lines = [title]
    for activity in activities:
        lines.append(f"  {activity.start[:19]}  {activity.status:<12} {activity.description}")
        if activity.cause:
            lines.append(f"      cause: {_cut(activity.cause)}")
        if activity.status_message:  # why a launch failed: capacity, quota, a bad AMI
            lines.append(f"      status: {_cut(activity.status_message)}")
    return lines


def _cut(text: str) -> str:
    return text if len(text) <= _CAUSE_WIDTH else text[:_CAUSE_WIDTH] + "..."


def _duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"
