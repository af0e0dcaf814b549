"""What the AMI runs (packer/files/): the unit, the user data contract, the agent and scrape configs.

The unit's command is also run for real on a Docker engine: tests/container/test_packer_unit.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import prometheus_client.metrics
import pytest
import yaml

import app.metrics
from app.config import HealthSettings, QueueSettings
from tests.packer.conftest import FILES, SCRIPTS, tool
from tests.packer.systemd_unit import Unit, option_value
from tests.support.components import component_missing

SPOT_NOTICE_SECONDS = 120  # EC2's interruption notice: the container must be gone within it
SCHEMA = Path(__file__).parent / "data" / "cloudwatch-agent-config.schema.json"
AGENT_CONFIG = FILES / "amazon-cloudwatch-agent.json"
AGENT_ETC = "/opt/aws/amazon-cloudwatch-agent/etc"


@pytest.fixture(scope="module")
def unit() -> Unit:
    return Unit.read()


@pytest.fixture(scope="module")
def agent_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(AGENT_CONFIG.read_text())
    return config


@pytest.fixture(scope="module")
def user_data() -> dict[str, Any]:
    text = (FILES / "user-data.yaml").read_text()
    assert text.startswith("#cloud-config\n")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


# --- the unit -------------------------------------------------------------------------------------------


def test_systemd_finds_nothing_to_say_about_the_unit() -> None:
    # verify resolves Requires=docker.service and ExecStart's /usr/bin/docker on this machine (Debian's
    # docker.io provides both, as AL2023's docker package does there); install-worker-runtime.sh runs
    # the same check on the build instance. Any output is a finding: unknown keys are only warnings.
    systemd_analyze = tool("systemd-analyze", "systemd")
    if not any(
        Path(d, "docker.service").exists() for d in ("/lib/systemd/system", "/usr/lib/systemd/system")
    ):
        component_missing("no docker.service unit to resolve Requires= against (apt-get install docker.io)")
    result = subprocess.run(
        [systemd_analyze, "verify", str(FILES / "filefleet.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_unit_runs_the_preloaded_image_with_the_runtime_recipe(unit: Unit) -> None:
    argv = unit.command("Service.ExecStart")
    assert argv[:3] == ["/usr/bin/docker", "run", "--rm"] and argv[-1] == "filefleet:current"
    for flag in ("--init", "--read-only", "--cap-drop", "--security-opt", "--stop-timeout", "--log-driver"):
        assert flag in argv
    assert option_value(argv, "--network") == "host", "IMDSv2 with the launch template's hop limit of 1"
    assert option_value(argv, "--tmpfs") == "/tmp"
    assert option_value(argv, "--pull") == "never"
    assert option_value(argv, "--log-driver") == "none", "one copy of the log: the unit's file"
    assert option_value(argv, "--name") == "filefleet"
    assert option_value(argv, "--cap-drop") == "ALL"
    assert option_value(argv, "--security-opt") == "no-new-privileges"
    assert unit.one("Service.Restart") == "always"
    assert unit.one("Install.WantedBy") == "multi-user.target"
    assert "docker.service" in unit.one("Unit.Requires")
    assert {"docker.service", "network-online.target"} <= set(unit.one("Unit.After").split())


def test_the_stop_drains_within_the_spot_notice_and_systemd_waits_for_it(unit: Unit) -> None:
    defaults = QueueSettings.from_env({"SQS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q"})
    longest_drain = defaults.drain_seconds + defaults.wait_time_seconds  # a receive in flight is waited for
    stop = unit.command("Service.ExecStop")
    assert stop[:2] == ["/usr/bin/docker", "stop"] and stop[-1] == "filefleet"
    docker_timeout = int(option_value(stop, "--time"))
    assert docker_timeout == int(option_value(unit.command("Service.ExecStart"), "--stop-timeout"))
    assert longest_drain <= docker_timeout < SPOT_NOTICE_SECONDS
    assert int(unit.one("Service.TimeoutStopSec")) > docker_timeout


def test_the_unit_keeps_the_user_data_contract(unit: Unit, user_data: dict[str, Any]) -> None:
    (env_file,) = user_data["write_files"]
    argv = unit.command("Service.ExecStart")
    assert option_value(argv, "--env-file") == env_file["path"] == unit.one("Unit.ConditionPathExists")
    assert user_data["runcmd"] == [["systemctl", "start", "filefleet.service"]]
    assert not {"packages", "package_update", "package_upgrade", "bootcmd"} & set(user_data), "no installs"
    assert not re.search(r"(?i)secret|password|token|AWS_ACCESS_KEY", env_file["content"]), "no secrets"


def test_the_image_the_unit_runs_is_the_one_the_build_tags() -> None:
    assert "readonly TAG=filefleet:current" in (SCRIPTS / "load-worker-image.sh").read_text()


# --- logs and metrics -------------------------------------------------------------------------------------


def test_the_agent_config_is_valid_against_the_documented_schema(agent_config: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(agent_config), key=str)
    assert not errors, "\n".join(f"{list(error.absolute_path)}: {error.message}" for error in errors)


def test_the_schema_catches_a_misspelt_setting(agent_config: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(agent_config))
    broken["logs"]["logs_collected"]["files"]["collect_list"][0]["log_group"] = "typo"
    assert not jsonschema.Draft4Validator(json.loads(SCHEMA.read_text())).is_valid(broken)


def test_the_agent_ships_the_units_log_to_the_guides_log_group(
    unit: Unit, agent_config: dict[str, Any]
) -> None:
    (collected,) = agent_config["logs"]["logs_collected"]["files"]["collect_list"]
    assert unit.one("Service.StandardOutput") == f"append:{collected['file_path']}"
    assert unit.one("Service.StandardError") == "inherit", "tracebacks too"
    assert collected["log_group_name"] == "/aws/cis-file-processor/dev/workers"
    assert collected["log_stream_name"] == "{instance_id}"
    rotated = (FILES / "filefleet.logrotate").read_text()
    assert re.search(rf"^{re.escape(collected['file_path'])} {{", rotated, flags=re.MULTILINE)
    assert "copytruncate" in rotated, "systemd keeps the file open"


def test_cpu_and_memory_are_the_guides(agent_config: dict[str, Any]) -> None:
    metrics = agent_config["metrics"]
    assert metrics["namespace"] == "CISFileProcessor"
    collected = metrics["metrics_collected"]
    assert collected["cpu"]["measurement"] == [
        {"name": "cpu_usage_active", "rename": "CPUUtilization", "unit": "Percent"}
    ]
    assert collected["mem"]["measurement"] == [
        {"name": "mem_used_percent", "rename": "MemoryUtilization", "unit": "Percent"}
    ]
    assert (
        collected["cpu"]["metrics_collection_interval"]
        == collected["mem"]["metrics_collection_interval"]
        == 60
    )


def test_the_agent_scrapes_the_workers_metrics_endpoint(unit: Unit, agent_config: dict[str, Any]) -> None:
    prometheus = agent_config["logs"]["metrics_collected"]["prometheus"]
    scrape_file = FILES / "prometheus.yaml"
    assert prometheus["prometheus_config_path"] == f"{AGENT_ETC}/{scrape_file.name}"
    assert f'"$AGENT/etc/{scrape_file.name}"' in (SCRIPTS / "install-worker-runtime.sh").read_text()
    (job,) = yaml.safe_load(scrape_file.read_text())["scrape_configs"]
    (target,) = job["static_configs"][0]["targets"]
    bind = option_value(unit.command("Service.ExecStart"), "--env").removeprefix("HEALTH_BIND=")
    assert target == f"{bind}:{HealthSettings.from_env({}).port}"  # the image's HEALTH_PORT default
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert prometheus["emf_processor"]["metric_namespace"] == agent_config["metrics"]["namespace"]
    for declaration in prometheus["emf_processor"]["metric_declaration"]:
        assert (declaration["source_labels"], declaration["label_matcher"]) == (
            ["job"],
            f"^{job['job_name']}$",
        )


def test_promtool_accepts_the_scrape_config() -> None:
    promtool = tool("promtool", "prometheus")
    result = subprocess.run(
        [promtool, "check", "config", str(FILES / "prometheus.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def exported_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every filefleet metric as the scrape shows it: sample name → (type, label names)."""
    found = {}
    for metric in vars(app.metrics).values():
        if isinstance(metric, prometheus_client.metrics.MetricWrapperBase):
            suffix = "_total" if metric._type == "counter" else ""
            found[metric._name + suffix] = (str(metric._type), tuple(metric._labelnames))
    return found


def test_every_counter_and_gauge_becomes_a_cloudwatch_metric_with_its_labels_as_dimensions(
    agent_config: dict[str, Any],
) -> None:
    # The agent drops histograms (CloudWatch docs, "Prometheus metric type conversion by the CloudWatch
    # agent"): durations stay on /metrics. Everything else must be declared, or it never leaves the host.
    emf = agent_config["logs"]["metrics_collected"]["prometheus"]["emf_processor"]
    metrics = exported_metrics()
    declared = set()
    for declaration in emf["metric_declaration"]:
        for selector in declaration["metric_selectors"]:
            name = selector.removeprefix("^").removesuffix("$")
            kind, labels = metrics[name]
            assert kind in ("counter", "gauge"), f"{name}: the agent drops {kind}s"
            for dimensions in declaration["dimensions"]:
                assert set(dimensions) - {"job"} <= set(labels), f"{name} has no label {dimensions}"
            assert name in emf["metric_unit"]
            declared.add(name)
    assert declared == {name for name, (kind, _) in metrics.items() if kind != "histogram"}
