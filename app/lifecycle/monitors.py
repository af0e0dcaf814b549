"""One small monitor per source of "this instance is going away", all behind the same interface.

A monitor's ``check`` returns a drain cause or None, and never raises: an unreachable IMDS is logged (once
per outage, not once per poll) and reads as "nothing to report", so one broken source cannot silence the
others. Causes are strings the worker records as ``RunResult.cause`` and counts by their prefix
(``drains.spot``, ``drains.rebalance``, ``drains.lifecycle``).

IMDS items, per the EC2 and Auto Scaling user guides:
- ``spot/instance-action``: 404 until EC2 schedules an interruption, then ``{"action": "terminate" | "stop" |
  "hibernate", "time": "...Z"}``. The notice is best effort and gives about two minutes (none for hibernate).
- ``events/recommendations/rebalance``: 404 until EC2 sees an elevated interruption risk, then
  ``{"noticeTime": "...Z"}``. Only a hint: it may come long before a notice, or with it, or never.
- ``autoscaling/target-lifecycle-state``: the state Auto Scaling is moving the instance to (``InService``,
  ``Terminated``, ``Standby``, ``Detached``, ...); 404 when the instance is not in a group.
"""

from __future__ import annotations

import json
import logging
from typing import Protocol

from app.lifecycle.imds import (
    REBALANCE_PATH,
    SPOT_ACTION_PATH,
    TARGET_LIFECYCLE_STATE_PATH,
    ImdsClient,
    ImdsError,
)
from app.stats import RunStats

log = logging.getLogger(__name__)

SPOT_CAUSE_PREFIX = "spot:"
REBALANCE_CAUSE = "rebalance"
TERMINATED_CAUSE = "lifecycle:terminated"
SPOT_ACTIONS = ("terminate", "stop", "hibernate")
TERMINATED_STATE = "Terminated"


class Monitor(Protocol):
    """A source of drain causes; ``check`` is called every poll interval from one thread."""

    name: str

    def check(self) -> str | None:
        """A drain cause ("spot:terminate", "rebalance", "lifecycle:terminated") or None; never raises."""
        ...


class _ImdsMonitor:
    """Reads one IMDS item; an outage is logged when it starts and when it ends, not on every poll."""

    name = "imds"

    def __init__(self, imds: ImdsClient) -> None:
        self._imds = imds
        self._failing = False

    def _read(self, path: str) -> str | None:
        try:
            body = self._imds.get(path)
        except ImdsError as exc:
            if not self._failing:
                self._failing = True
                log.warning("lifecycle.monitor_failing", extra={"monitor": self.name, "error": str(exc)})
            return None
        if self._failing:
            self._failing = False
            log.info("lifecycle.monitor_recovered", extra={"monitor": self.name})
        return body


class SpotInterruptionMonitor(_ImdsMonitor):
    """The Spot interruption notice: drain at once, the two minutes are all there is."""

    name = "spot"

    def __init__(self, imds: ImdsClient) -> None:
        super().__init__(imds)
        self._announced = False

    def check(self) -> str | None:
        body = self._read(SPOT_ACTION_PATH)
        if body is None:
            return None
        notice = _json_object(body)
        action = str(notice.get("action", "")).lower()
        if action not in SPOT_ACTIONS:
            # The item only exists when an interruption is scheduled: an unreadable one still means "go".
            action = "unknown"
        if not self._announced:
            self._announced = True
            log.warning("lifecycle.spot_interruption", extra={"action": action, "time": notice.get("time")})
        return f"{SPOT_CAUSE_PREFIX}{action}"


class RebalanceMonitor(_ImdsMonitor):
    """The rebalance recommendation: a drain cause with ON_REBALANCE=drain, otherwise only counted.

    Ignored recommendations are counted once each (by ``noticeTime``), not once per poll: the item stays in
    IMDS for as long as the risk does.
    """

    name = "rebalance"

    def __init__(self, imds: ImdsClient, *, drain_on_rebalance: bool, stats: RunStats) -> None:
        super().__init__(imds)
        self._drain = drain_on_rebalance
        self._stats = stats
        self._last_ignored: str | None = None

    def check(self) -> str | None:
        body = self._read(REBALANCE_PATH)
        if body is None:
            return None
        if self._drain:
            return REBALANCE_CAUSE
        notice_time = str(_json_object(body).get("noticeTime") or body.strip())
        if notice_time != self._last_ignored:
            self._last_ignored = notice_time
            self._stats.add("lifecycle.rebalance_ignored")
            log.info(
                "lifecycle.rebalance_ignored",
                extra={"notice_time": notice_time, "hint": "ON_REBALANCE=drain drains on it"},
            )
        return None


class TargetLifecycleStateMonitor(_ImdsMonitor):
    """Auto Scaling is terminating the instance (scale-in, instance refresh, health check, rebalancing).

    ``last_state`` keeps the latest answer (None for 404: not in a group) for the facade and logs.
    """

    name = "target-lifecycle-state"

    def __init__(self, imds: ImdsClient) -> None:
        super().__init__(imds)
        self.last_state: str | None = None

    def check(self) -> str | None:
        body = self._read(TARGET_LIFECYCLE_STATE_PATH)
        state = body.strip() if body is not None else None
        if state != self.last_state and state is not None:
            log.info("lifecycle.target_state", extra={"state": state, "previous": self.last_state})
        if body is not None:
            self.last_state = state
        return TERMINATED_CAUSE if state == TERMINATED_STATE else None


def _json_object(body: str) -> dict[str, object]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
