"""What the worker tells Auto Scaling: the termination hook's heartbeats and completion; scale-in protection.

API facts (Amazon EC2 Auto Scaling API reference and user guide):
- A termination lifecycle hook holds the instance in ``Terminating:Wait`` for ``HeartbeatTimeout`` seconds
  (30 to 7200, default 3600); ``RecordLifecycleActionHeartbeat`` restarts that timeout, and
  ``CompleteLifecycleAction`` ends the wait. Both accept the ``InstanceId`` instead of the action token, so
  the instance needs no notification target. For a termination hook CONTINUE and ABANDON both terminate;
  ABANDON would also skip the group's other hooks, so we answer CONTINUE.
- Both answer ``ValidationError: No active Lifecycle Action found with instance ID ...`` when the instance is
  not waiting on that hook (a Spot interruption with no hook, a restart after completion): expected, logged.
- ``SetInstanceProtection`` protects instances from *scale-in* only; Spot interruptions, health checks and
  instance refreshes still terminate them, which is what the lifecycle hook and the drain are for.

The autoscaling client is typed ``Any``: the project installs no ``mypy-boto3-autoscaling`` stubs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.stats import RunStats

log = logging.getLogger(__name__)

MIN_HEARTBEAT_TIMEOUT = 30  # PutLifecycleHook's lower bound: the safe guess when the hook cannot be described
MAX_HEARTBEAT_INTERVAL = 300.0
NO_ACTIVE_ACTION = "No active Lifecycle Action"
_STOP_TIMEOUT = 10.0  # a thread mid-call waits for botocore's own timeouts; never block shutdown longer


def heartbeat_interval_for(heartbeat_timeout: float) -> float:
    """A third of the timeout: two heartbeats may fail (and be retried) before the hook would time out."""
    return max(1.0, min(heartbeat_timeout / 3, MAX_HEARTBEAT_INTERVAL))


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


def _is_no_active_action(exc: Exception) -> bool:
    return isinstance(exc, ClientError) and NO_ACTIVE_ACTION.lower() in str(exc).lower()


class LifecycleHook:
    """The group's termination hook for this instance: heartbeats while a drain runs, then CONTINUE once."""

    def __init__(
        self,
        client: Any,
        *,
        group: str,
        hook_name: str,
        instance_id: str,
        heartbeat_interval: float,
        stats: RunStats,
    ) -> None:
        self._client = client
        self.group = group
        self.hook_name = hook_name
        self.instance_id = instance_id
        self.heartbeat_interval = heartbeat_interval
        self._stats = stats
        self._lock = threading.Lock()
        self._completed = False
        self._stop_beating = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def describe(
        cls,
        client: Any,
        *,
        group: str,
        hook_name: str,
        instance_id: str,
        stats: RunStats,
        heartbeat_interval: float | None = None,
    ) -> LifecycleHook:
        """Learn the hook's HeartbeatTimeout (DescribeLifecycleHooks) to pace heartbeats well inside it.

        If the hook cannot be described (no permission, wrong name), assume the shortest timeout the API
        allows: a few extra heartbeats cost nothing, a hook that times out mid-drain kills running work.
        ``heartbeat_interval`` overrides the derived pace (tests).
        """
        timeout = _describe_heartbeat_timeout(client, group=group, hook_name=hook_name)
        interval = heartbeat_interval or heartbeat_interval_for(timeout)
        log.info(
            "lifecycle.hook",
            extra={
                "group": group,
                "hook": hook_name,
                "heartbeat_timeout_s": timeout,
                "heartbeat_interval_s": interval,
            },
        )
        return cls(
            client,
            group=group,
            hook_name=hook_name,
            instance_id=instance_id,
            heartbeat_interval=interval,
            stats=stats,
        )

    # -- heartbeats --------------------------------------------------------------------------------------

    def start_heartbeats(self) -> None:
        """Heartbeat now and then every ``heartbeat_interval`` until stopped or completed; idempotent."""
        with self._lock:
            if self._thread is not None or self._completed:
                return
            self._thread = threading.Thread(target=self._beat, name="lifecycle-heartbeat", daemon=True)
            self._thread.start()

    def stop_heartbeats(self) -> None:
        self._stop_beating.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=_STOP_TIMEOUT)

    def heartbeat(self) -> bool:
        """One RecordLifecycleActionHeartbeat; False when it failed. Never raises."""
        try:
            self._client.record_lifecycle_action_heartbeat(
                LifecycleHookName=self.hook_name,
                AutoScalingGroupName=self.group,
                InstanceId=self.instance_id,
            )
        except (ClientError, BotoCoreError) as exc:
            if _is_no_active_action(exc):
                log.info("lifecycle.hook_not_active", extra={"call": "heartbeat", "error": str(exc)})
                self._stop_beating.set()  # nothing is waiting on us: nothing to extend
            else:
                log.warning("lifecycle.heartbeat_failed", extra={"code": _error_code(exc), "error": str(exc)})
            return False
        self._stats.add("lifecycle.heartbeats")
        log.info("lifecycle.heartbeat", extra={"hook": self.hook_name, "instance_id": self.instance_id})
        return True

    def _beat(self) -> None:
        # The first heartbeat at once: the hook's timeout has been running since Terminating:Wait began.
        if not self._stop_beating.is_set():
            self.heartbeat()
        while not self._stop_beating.wait(self.heartbeat_interval):
            self.heartbeat()

    # -- completion --------------------------------------------------------------------------------------

    def complete(self, result: str = "CONTINUE") -> bool:
        """Stop heartbeats, then CompleteLifecycleAction once; True when Auto Scaling accepted it."""
        self.stop_heartbeats()
        with self._lock:
            if self._completed:
                return False
            self._completed = True
        try:
            self._client.complete_lifecycle_action(
                LifecycleHookName=self.hook_name,
                AutoScalingGroupName=self.group,
                LifecycleActionResult=result,
                InstanceId=self.instance_id,
            )
        except (ClientError, BotoCoreError) as exc:
            if _is_no_active_action(exc):
                log.info("lifecycle.hook_not_active", extra={"call": "complete", "error": str(exc)})
            else:
                log.error(
                    "lifecycle.hook_complete_failed",
                    extra={
                        "code": _error_code(exc),
                        "error": str(exc),
                        "hint": "the group proceeds with the hook's DefaultResult when its timeout ends",
                    },
                )
            return False
        self._stats.add("lifecycle.hook_completed")
        log.info(
            "lifecycle.hook_completed",
            extra={"hook": self.hook_name, "group": self.group, "result": result},
        )
        return True


def _describe_heartbeat_timeout(client: Any, *, group: str, hook_name: str) -> int:
    try:
        hooks = client.describe_lifecycle_hooks(
            AutoScalingGroupName=group, LifecycleHookNames=[hook_name]
        ).get("LifecycleHooks", [])
    except (ClientError, BotoCoreError) as exc:
        log.warning(
            "lifecycle.hook_describe_failed",
            extra={
                "code": _error_code(exc),
                "error": str(exc),
                "assumed_heartbeat_timeout_s": MIN_HEARTBEAT_TIMEOUT,
                "hint": "grant autoscaling:DescribeLifecycleHooks to pace heartbeats by the hook's timeout",
            },
        )
        return MIN_HEARTBEAT_TIMEOUT
    for hook in hooks:
        if hook.get("LifecycleHookName") == hook_name and hook.get("HeartbeatTimeout"):
            return int(hook["HeartbeatTimeout"])
    log.warning(
        "lifecycle.hook_not_found",
        extra={
            "group": group,
            "hook": hook_name,
            "assumed_heartbeat_timeout_s": MIN_HEARTBEAT_TIMEOUT,
            "hint": "check LIFECYCLE_HOOK_NAME against `aws autoscaling describe-lifecycle-hooks`",
        },
    )
    return MIN_HEARTBEAT_TIMEOUT


class ScaleInProtection:
    """Protected from scale-in while the worker holds work; unprotected once idle for ``idle_seconds``.

    The band between "holds work" and "idle long enough" keeps the current state, so a worker between two
    messages does not flap; a call is made only when the wanted state differs from the known one. A failed
    call leaves the known state unchanged, so the next evaluation retries it.
    """

    def __init__(
        self,
        client: Any,
        group: str,
        instance_id: str,
        *,
        idle_seconds: float,
        worker_idle: Callable[[], float],
        interval: float,
        stats: RunStats | None = None,
        initially_protected: bool | None = None,
    ) -> None:
        self._client = client
        self._group = group
        self._instance_id = instance_id
        self._idle_seconds = idle_seconds
        self._worker_idle = worker_idle
        self._interval = interval
        self._stats = stats or RunStats()
        self._protected = initially_protected  # None: unknown, so the first definite wish is sent
        self._lock = threading.Lock()
        self._failing = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def protected(self) -> bool | None:
        with self._lock:
            return self._protected

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="scale-in-protection", daemon=True)
        self._thread.start()

    def stop(self, *, release: bool = True) -> None:
        """Stop evaluating; with ``release``, give protection up so an instance left behind can scale in."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=_STOP_TIMEOUT)
        if release and self.protected:
            self._set(False)

    def evaluate(self) -> None:
        """One decision from the worker's idle time; never raises."""
        try:
            idle = self._worker_idle()
        except Exception:  # the worker's bookkeeping failing must not kill this thread
            log.exception("lifecycle.protection_idle_failed")
            return
        if idle <= 0:
            wanted = True
        elif idle >= self._idle_seconds:
            wanted = False
        else:
            return  # inside the hysteresis band: keep whatever holds now
        if wanted != self.protected:
            self._set(wanted)

    def _set(self, protected: bool) -> None:
        with self._lock:
            try:
                self._client.set_instance_protection(
                    InstanceIds=[self._instance_id],
                    AutoScalingGroupName=self._group,
                    ProtectedFromScaleIn=protected,
                )
            except (ClientError, BotoCoreError) as exc:
                if not self._failing:  # once per outage; the next evaluation retries
                    self._failing = True
                    log.warning(
                        "lifecycle.protection_failed",
                        extra={"protect": protected, "code": _error_code(exc), "error": str(exc)},
                    )
                return
            self._failing = False
            self._protected = protected
        self._stats.add("lifecycle.protected" if protected else "lifecycle.unprotected")
        log.info("lifecycle.protection", extra={"protected": protected, "group": self._group})

    def _run(self) -> None:
        self.evaluate()
        while not self._stopping.wait(self._interval):
            self.evaluate()
