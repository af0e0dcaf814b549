"""The lifecycle package against a strict IMDSv2 stub on 127.0.0.1 and a Stubber'ed Auto Scaling client.

Stubber sits on a real ``boto3.client("autoscaling")``: botocore validates every call's parameters against
the real API model before the stub answers, and ``expected_params`` pins the exact values. Stubber errors
raised in our threads are BotoCoreErrors that the code under test logs and swallows, so every test also
counts the calls actually made (``Calls``), which catches an unexpected extra call.
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from app.config import ConfigError, LifecycleSettings
from app.drain import DrainSignal
from app.lifecycle.autoscaling import (
    MIN_HEARTBEAT_TIMEOUT,
    LifecycleHook,
    ScaleInProtection,
    heartbeat_interval_for,
)
from app.lifecycle.facade import Lifecycle
from app.lifecycle.imds import (
    INSTANCE_ID_PATH,
    IPV6_ENDPOINT,
    SPOT_ACTION_PATH,
    ImdsClient,
    ImdsError,
)
from app.lifecycle.monitors import (
    Monitor,
    RebalanceMonitor,
    SpotInterruptionMonitor,
    TargetLifecycleStateMonitor,
)
from app.lifecycle.watcher import LifecycleWatcher
from app.stats import RunStats
from tests.support.components import free_port
from tests.support.fakes import FakeClock
from tests.support.imds_stub import ImdsStub, imds_stub

GROUP = "filefleet-workers"
HOOK = "filefleet-drain"
INSTANCE = "i-0123456789abcdef0"


class Calls:
    """Every Auto Scaling call the client starts, recorded before Stubber can refuse it."""

    def __init__(self, client: Any) -> None:
        self._lock = threading.Lock()
        self._calls: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register("provide-client-params.auto-scaling.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self._lock:
            self._calls.append((model.name, dict(params)))

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self._calls]

    def wait_for(self, name: str, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.names().count(name) < count:
            assert time.monotonic() < deadline, f"{count} x {name} not seen; calls: {self.names()}"
            time.sleep(0.01)


def autoscaling() -> tuple[Any, Stubber, Calls]:
    client = boto3.client("autoscaling", region_name="us-east-1")
    return client, Stubber(client), Calls(client)


@pytest.fixture
def stub() -> Iterator[ImdsStub]:
    with imds_stub() as running:
        yield running


def closed_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}"  # bound, then released: nothing listens there


# -- the IMDS stub itself is as strict as IMDS -------------------------------------------------------------


def _raw(stub: ImdsStub, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", int(stub.url.rsplit(":", 1)[1]), timeout=2)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_stub_refuses_token_requests_without_a_valid_ttl_and_gets_without_a_token(stub: ImdsStub) -> None:
    ttl = "X-aws-ec2-metadata-token-ttl-seconds"
    assert _raw(stub, "PUT", "/latest/api/token", {})[0] == 400
    assert _raw(stub, "PUT", "/latest/api/token", {ttl: "21601"})[0] == 400
    assert _raw(stub, "PUT", "/latest/api/token", {ttl: "60", "X-Forwarded-For": "10.0.0.1"})[0] == 403
    status, token = _raw(stub, "PUT", "/latest/api/token", {ttl: "60"})
    assert status == 200 and token
    assert _raw(stub, "GET", INSTANCE_ID_PATH, {})[0] == 401
    assert _raw(stub, "GET", INSTANCE_ID_PATH, {"X-aws-ec2-metadata-token": "forged"})[0] == 401
    assert _raw(stub, "GET", INSTANCE_ID_PATH, {"X-aws-ec2-metadata-token": token}) == (200, INSTANCE)


# -- ImdsClient ----------------------------------------------------------------------------------------------


def test_token_is_fetched_lazily_once_and_reused(stub: ImdsStub) -> None:
    client = ImdsClient(stub.url)
    assert stub.count("PUT", "/latest/api/token") == 0, "no request before the first get"
    assert [client.get(INSTANCE_ID_PATH) for _ in range(3)] == [INSTANCE] * 3
    assert stub.count("PUT", "/latest/api/token") == 1


def test_token_is_renewed_shortly_before_its_ttl_ends(stub: ImdsStub) -> None:
    clock = FakeClock()
    client = ImdsClient(stub.url, token_ttl=100, clock=clock)
    client.get(INSTANCE_ID_PATH)
    clock.now += 89
    client.get(INSTANCE_ID_PATH)
    assert stub.count("PUT", "/latest/api/token") == 1
    clock.now += 2  # 91 s: inside the last tenth of the TTL
    client.get(INSTANCE_ID_PATH)
    assert stub.count("PUT", "/latest/api/token") == 2


def test_a_refused_token_is_replaced_and_the_get_retried_once(stub: ImdsStub) -> None:
    client = ImdsClient(stub.url)
    client.get(INSTANCE_ID_PATH)
    stub.expire_tokens()
    assert client.get(INSTANCE_ID_PATH) == INSTANCE
    assert stub.counts["401"] == 1
    assert stub.count("PUT", "/latest/api/token") == 2


def test_an_absent_item_is_none(stub: ImdsStub) -> None:
    assert ImdsClient(stub.url).get(SPOT_ACTION_PATH) is None


def test_off_ec2_the_probe_reports_unavailable_fast_and_quietly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = ImdsClient(closed_endpoint())
    started = time.monotonic()
    probe = client.probe(budget=1.0)
    assert not probe.available
    assert "not reachable" in (probe.reason or "")
    assert time.monotonic() - started < 0.5
    assert not [r for r in caplog.records if r.exc_info], "no stack trace"
    with pytest.raises(ImdsError):
        client.get(INSTANCE_ID_PATH)


def test_a_silent_imds_times_out_within_the_probe_budget() -> None:
    # Accepts connections (the kernel's backlog) but never answers: the hop-limit-1 symptom from a bridge.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        client = ImdsClient(f"http://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        probe = client.probe(budget=0.3)
        elapsed = time.monotonic() - started
    assert not probe.available and "hop limit" in (probe.reason or "")
    assert elapsed < 1.0


def test_from_env_honours_botocore_switches() -> None:
    assert ImdsClient.from_env({"AWS_EC2_METADATA_DISABLED": "TRUE"}) is None
    default = ImdsClient.from_env({"AWS_EC2_METADATA_DISABLED": "false"})
    assert default is not None and default.endpoint == "http://169.254.169.254"
    custom = ImdsClient.from_env({"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1338/"})
    assert custom is not None and custom.endpoint == "http://127.0.0.1:1338"
    ipv6 = ImdsClient.from_env({"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv6"})
    assert ipv6 is not None and ipv6.endpoint == IPV6_ENDPOINT
    with pytest.raises(ConfigError, match="AWS_EC2_METADATA_SERVICE_ENDPOINT"):
        ImdsClient.from_env({"AWS_EC2_METADATA_SERVICE_ENDPOINT": "169.254.169.254"})


# -- monitors ------------------------------------------------------------------------------------------------


def test_spot_monitor_reports_the_notice_action(stub: ImdsStub) -> None:
    monitor = SpotInterruptionMonitor(ImdsClient(stub.url))
    assert monitor.check() is None
    stub.announce_spot("stop")
    assert monitor.check() == "spot:stop"
    assert monitor.check() == "spot:stop"


class FakeImds:
    def __init__(self, items: dict[str, str]) -> None:
        self.items = items

    def get(self, path: str) -> str | None:
        return self.items.get(path)


def test_an_unreadable_spot_notice_still_means_go() -> None:
    monitor = SpotInterruptionMonitor(FakeImds({SPOT_ACTION_PATH: "<html>"}))  # type: ignore[arg-type]
    assert monitor.check() == "spot:unknown"


def test_rebalance_is_a_cause_only_with_on_rebalance_drain(stub: ImdsStub) -> None:
    stats = RunStats()
    draining = RebalanceMonitor(ImdsClient(stub.url), drain_on_rebalance=True, stats=stats)
    assert draining.check() is None
    stub.announce_rebalance()
    assert draining.check() == "rebalance"
    assert stats.get("lifecycle.rebalance_ignored") == 0


def test_an_ignored_rebalance_is_counted_once_per_recommendation(stub: ImdsStub) -> None:
    stats = RunStats()
    monitor = RebalanceMonitor(ImdsClient(stub.url), drain_on_rebalance=False, stats=stats)
    stub.announce_rebalance(notice_time="2026-11-30T04:00:00Z")
    assert [monitor.check() for _ in range(3)] == [None, None, None]
    assert stats.get("lifecycle.rebalance_ignored") == 1
    stub.announce_rebalance(notice_time="2026-11-30T05:00:00Z")
    monitor.check()
    assert stats.get("lifecycle.rebalance_ignored") == 2


def test_target_lifecycle_state_terminated_is_a_cause(stub: ImdsStub) -> None:
    monitor = TargetLifecycleStateMonitor(ImdsClient(stub.url))
    assert monitor.check() is None and monitor.last_state == "InService"
    stub.set_target_state("Terminated")
    assert monitor.check() == "lifecycle:terminated"


def test_target_lifecycle_state_is_absent_outside_a_group() -> None:
    with imds_stub(in_group=False) as stub:
        monitor = TargetLifecycleStateMonitor(ImdsClient(stub.url))
        assert monitor.check() is None and monitor.last_state is None


def test_monitors_never_raise_and_log_an_outage_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    imds = ImdsClient(closed_endpoint())
    monitors: list[Monitor] = [
        SpotInterruptionMonitor(imds),
        RebalanceMonitor(imds, drain_on_rebalance=True, stats=RunStats()),
        TargetLifecycleStateMonitor(imds),
    ]
    for _ in range(3):
        assert [m.check() for m in monitors] == [None, None, None]
    failing = [r for r in caplog.records if r.getMessage() == "lifecycle.monitor_failing"]
    assert len(failing) == 3, "one line per monitor per outage, not per poll"


# -- watcher -------------------------------------------------------------------------------------------------


class ScriptedMonitor:
    def __init__(self, name: str, answers: list[str | None]) -> None:
        self.name = name
        self._answers = answers
        self.checks = 0

    def check(self) -> str | None:
        self.checks += 1
        return self._answers[min(self.checks, len(self._answers)) - 1]


class BrokenMonitor:
    name = "broken"

    def check(self) -> str | None:
        raise RuntimeError("a bug")


def test_watcher_requests_the_drain_once_and_keeps_recording_causes() -> None:
    drain, seen = DrainSignal(), list[str]()
    spot = ScriptedMonitor("spot", [None, "spot:terminate"])
    state = ScriptedMonitor("state", [None, None, "lifecycle:terminated"])
    watcher = LifecycleWatcher([spot, state], drain, interval=5, stats=RunStats(), on_cause=seen.append)
    assert watcher.poll_once() == [] and drain.wait(0) is None
    assert watcher.poll_once() == ["spot:terminate"]
    assert drain.wait(0) == "spot:terminate"
    assert watcher.poll_once() == ["lifecycle:terminated"]
    assert drain.wait(0) is None, "the drain is requested once"
    assert watcher.poll_once() == []
    assert seen == ["spot:terminate", "lifecycle:terminated"]
    assert watcher.causes_seen == ("spot:terminate", "lifecycle:terminated")
    assert watcher.requested == "spot:terminate"


def test_watcher_thread_survives_a_broken_monitor_and_stops_promptly() -> None:
    drain, stats = DrainSignal(), RunStats()
    late = ScriptedMonitor("late", [None, None, "rebalance"])
    watcher = LifecycleWatcher([BrokenMonitor(), late], drain, interval=0.05, stats=stats)
    watcher.start()
    try:
        assert drain.wait(timeout=5) == "rebalance"
        checks = late.checks
        time.sleep(0.2)
        assert late.checks > checks, "polling goes on after the drain request"
    finally:
        started = time.monotonic()
        watcher.stop()
    assert time.monotonic() - started < 1
    assert stats.get("lifecycle.notices") == 1


# -- the lifecycle hook ------------------------------------------------------------------------------------


def _describe(stubber: Stubber, timeout: int | None) -> None:
    hooks = [] if timeout is None else [{"LifecycleHookName": HOOK, "HeartbeatTimeout": timeout}]
    stubber.add_response(
        "describe_lifecycle_hooks",
        {"LifecycleHooks": [{"AutoScalingGroupName": GROUP, **hook} for hook in hooks]},
        {"AutoScalingGroupName": GROUP, "LifecycleHookNames": [HOOK]},
    )


def _hook(client: Any, interval: float | None = None) -> LifecycleHook:
    return LifecycleHook.describe(
        client,
        group=GROUP,
        hook_name=HOOK,
        instance_id=INSTANCE,
        stats=RunStats(),
        heartbeat_interval=interval,
    )


HOOK_PARAMS = {"LifecycleHookName": HOOK, "AutoScalingGroupName": GROUP, "InstanceId": INSTANCE}


def test_heartbeats_are_paced_well_inside_the_hooks_timeout() -> None:
    assert heartbeat_interval_for(30) == 10
    assert heartbeat_interval_for(3600) == 300, "capped: a failed heartbeat is retried in time"
    client, stubber, _ = autoscaling()
    _describe(stubber, 90)
    _describe(stubber, None)  # a wrong LIFECYCLE_HOOK_NAME
    stubber.add_client_error("describe_lifecycle_hooks", "AccessDenied", http_status_code=403)
    with stubber:
        assert _hook(client).heartbeat_interval == 30
        assert _hook(client).heartbeat_interval == heartbeat_interval_for(MIN_HEARTBEAT_TIMEOUT)
        assert _hook(client).heartbeat_interval == heartbeat_interval_for(MIN_HEARTBEAT_TIMEOUT)
        stubber.assert_no_pending_responses()


def test_heartbeats_repeat_until_stopped_then_the_hook_is_completed_once() -> None:
    client, stubber, calls = autoscaling()
    _describe(stubber, 30)
    for _ in range(3):
        stubber.add_response("record_lifecycle_action_heartbeat", {}, HOOK_PARAMS)
    stubber.add_response(
        "complete_lifecycle_action", {}, {**HOOK_PARAMS, "LifecycleActionResult": "CONTINUE"}
    )
    with stubber:
        hook = _hook(client, interval=0.2)
        hook.start_heartbeats()
        hook.start_heartbeats()  # idempotent: still one thread
        calls.wait_for("RecordLifecycleActionHeartbeat", 3)
        assert hook.complete("CONTINUE") is True
        assert hook.complete("CONTINUE") is False, "completed once"
        time.sleep(0.3)
        stubber.assert_no_pending_responses()
    assert calls.names() == [
        "DescribeLifecycleHooks",
        *["RecordLifecycleActionHeartbeat"] * 3,
        "CompleteLifecycleAction",
    ]


def test_no_active_lifecycle_action_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    client, stubber, calls = autoscaling()
    _describe(stubber, 30)
    message = f"No active Lifecycle Action found with instance ID {INSTANCE}"
    stubber.add_client_error("record_lifecycle_action_heartbeat", "ValidationError", message, 400)
    stubber.add_client_error("complete_lifecycle_action", "ValidationError", message, 400)
    with stubber:
        hook = _hook(client, interval=0.05)
        hook.start_heartbeats()
        calls.wait_for("RecordLifecycleActionHeartbeat", 1)
        time.sleep(0.2)
        assert hook.complete() is False
        stubber.assert_no_pending_responses()
    assert calls.names().count("RecordLifecycleActionHeartbeat") == 1, "nothing to extend: beating stops"
    assert [r.getMessage() for r in caplog.records].count("lifecycle.hook_not_active") == 2


# -- scale-in protection -------------------------------------------------------------------------------------


def _protection_call(stubber: Stubber, protected: bool) -> None:
    params = {"InstanceIds": [INSTANCE], "AutoScalingGroupName": GROUP, "ProtectedFromScaleIn": protected}
    stubber.add_response("set_instance_protection", {}, params)


def _protection(client: Any, idle: list[float], **kwargs: Any) -> ScaleInProtection:
    return ScaleInProtection(
        client, GROUP, INSTANCE, idle_seconds=30, worker_idle=lambda: idle[0], interval=60, **kwargs
    )


def test_protection_follows_work_with_hysteresis_and_no_redundant_calls() -> None:
    client, stubber, calls = autoscaling()
    for protected in (True, False, True):
        _protection_call(stubber, protected)
    idle = [0.0]
    protection = _protection(client, idle)
    with stubber:
        for seconds in (0, 0, 10, 29.9, 30, 100, 5, 0, 0):
            idle[0] = seconds
            protection.evaluate()
        stubber.assert_no_pending_responses()
    assert calls.names() == ["SetInstanceProtection"] * 3
    assert protection.protected is True


def test_protection_errors_are_retried_at_the_next_evaluation(caplog: pytest.LogCaptureFixture) -> None:
    client, stubber, calls = autoscaling()
    stubber.add_client_error("set_instance_protection", "ResourceContention", http_status_code=500)
    stubber.add_client_error("set_instance_protection", "ResourceContention", http_status_code=500)
    _protection_call(stubber, True)
    protection = _protection(client, [0.0])
    with stubber:
        protection.evaluate()
        assert protection.protected is None
        protection.evaluate()
        protection.evaluate()
        stubber.assert_no_pending_responses()
    assert protection.protected is True
    assert len(calls.names()) == 3
    assert [r.getMessage() for r in caplog.records].count("lifecycle.protection_failed") == 1


def test_protection_known_at_start_is_not_sent_again_and_is_released_on_stop() -> None:
    client, stubber, calls = autoscaling()
    _protection_call(stubber, False)
    protection = _protection(client, [0.0], initially_protected=True)
    with stubber:
        protection.evaluate()
        assert calls.names() == []
        protection.stop(release=True)
        stubber.assert_no_pending_responses()
    assert protection.protected is False


def test_protection_thread_protects_busy_worker_and_stops_bounded() -> None:
    client, stubber, calls = autoscaling()
    _protection_call(stubber, True)
    protection = ScaleInProtection(
        client, GROUP, INSTANCE, idle_seconds=30, worker_idle=lambda: 0.0, interval=0.05
    )
    with stubber:
        protection.start()
        calls.wait_for("SetInstanceProtection", 1)
        time.sleep(0.2)
        started = time.monotonic()
        protection.stop(release=False)
        assert time.monotonic() - started < 1
    assert calls.names() == ["SetInstanceProtection"], "busy again: no call while the state holds"


# -- the facade ----------------------------------------------------------------------------------------------


def _settings(**env: str) -> LifecycleSettings:
    return LifecycleSettings.from_env({"IMDS_POLL_SECONDS": "1", **env})


def _start(settings: LifecycleSettings, imds: ImdsClient | None, **kwargs: Any) -> Lifecycle | None:
    return Lifecycle.start(
        settings,
        boto3.session.Session(region_name="us-east-1"),
        kwargs.pop("drain", DrainSignal()),
        stats=kwargs.pop("stats", RunStats()),
        worker_idle=lambda: 0.0,
        imds=imds,
        **kwargs,
    )


def test_off_ec2_lifecycle_is_off_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="app")
    started = time.monotonic()
    assert _start(_settings(LIFECYCLE_HOOK_NAME=HOOK), ImdsClient(closed_endpoint())) is None
    assert time.monotonic() - started < 1.5
    lines = [r for r in caplog.records if r.name.startswith("app.")]
    assert [r.getMessage() for r in lines] == ["lifecycle.off"]
    assert not [r for r in lines if r.exc_info]


def test_metadata_disabled_turns_lifecycle_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert _start(_settings(), None) is None


def test_outside_a_group_spot_still_drains_but_no_hook_or_protection(stub: ImdsStub) -> None:
    stub.in_group = False
    client, stubber, calls = autoscaling()
    stubber.add_response(
        "describe_auto_scaling_instances", {"AutoScalingInstances": []}, {"InstanceIds": [INSTANCE]}
    )
    drain = DrainSignal()
    with stubber:
        lifecycle = _start(
            _settings(LIFECYCLE_HOOK_NAME=HOOK, SCALE_IN_PROTECTION="true"),
            ImdsClient(stub.url),
            drain=drain,
            autoscaling_client=client,
        )
        assert lifecycle is not None
        try:
            assert (lifecycle.group, lifecycle.hook, lifecycle.protection) == (None, None, None)
            stub.announce_spot()
            assert drain.wait(timeout=5) == "spot:terminate"
            assert lifecycle.after_drain("spot:terminate") is False
        finally:
            lifecycle.stop()
    assert calls.names() == ["DescribeAutoScalingInstances"]


def test_group_is_discovered_and_its_protection_state_reused(stub: ImdsStub) -> None:
    client, stubber, calls = autoscaling()
    found = {
        "InstanceId": INSTANCE,
        "AutoScalingGroupName": GROUP,
        "AvailabilityZone": "us-east-1a",
        "LifecycleState": "InService",
        "HealthStatus": "HEALTHY",
        "ProtectedFromScaleIn": True,
    }
    stubber.add_response(
        "describe_auto_scaling_instances", {"AutoScalingInstances": [found]}, {"InstanceIds": [INSTANCE]}
    )
    _protection_call(stubber, False)  # released on stop: the instance is staying
    with stubber:
        lifecycle = _start(
            _settings(SCALE_IN_PROTECTION="true"), ImdsClient(stub.url), autoscaling_client=client
        )
        assert lifecycle is not None
        try:
            assert lifecycle.group == GROUP and lifecycle.hook is None
            time.sleep(0.3)  # the worker is busy and already protected: no call
            assert calls.names() == ["DescribeAutoScalingInstances"]
        finally:
            lifecycle.stop()
        stubber.assert_no_pending_responses()


def test_nothing_needing_the_group_means_no_auto_scaling_call(stub: ImdsStub) -> None:
    client, stubber, calls = autoscaling()
    with stubber:
        lifecycle = _start(_settings(), ImdsClient(stub.url), autoscaling_client=client)
        assert lifecycle is not None
        lifecycle.after_drain("signal:SIGTERM")
        lifecycle.stop()
    assert calls.names() == []
