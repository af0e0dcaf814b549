"""`filefleet simulate` as an operator runs it: --json, --compare, --plot, CSV arrivals, exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.simulate import plot as plot_module
from app.simulate.arrivals import read_csv
from app.simulate.cli import add_simulate_parser
from app.simulate.compare import parse_axis
from app.simulate.report import Labelled, format_duration, verdict
from app.simulate.settings import Settings, SettingsError

SMALL = ["--files", "400", "--days", "0.25"]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="filefleet")
    add_simulate_parser(parser.add_subparsers(required=True))
    args = parser.parse_args(["simulate", *argv])
    code = args.command(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_table_shows_every_figure_the_issue_asks_for(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(SMALL, capsys)
    assert code == 0, err
    for text in (
        "Spot instances",
        "On-Demand instances",
        "EBS root volumes",
        "instance-hours",
        "done",
        "p50",
        "p95",
        "max",
        "peak backlog",
        "Spot interruptions",
        "scale-out actions",
        "scale-in actions",
    ):
        assert text in out


def test_json_has_the_settings_and_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([*SMALL, "--json", "--target", "10"], capsys)
    assert code == 0
    document = json.loads(out)
    (only,) = document["runs"]
    assert only["settings"]["target"] == 10.0
    assert only["summary"]["files_in"] == 400
    assert only["summary"]["files_done"] == 400
    assert only["summary"]["cost_total"] > 0


def test_compare_runs_the_same_files_under_each_target(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([*SMALL, "--json", "--compare", "target=5,30,120"], capsys)
    assert code == 0
    runs = json.loads(out)["runs"]
    assert [r["label"] for r in runs] == ["target=5", "target=30", "target=120"]
    assert [r["settings"]["target"] for r in runs] == [5.0, 30.0, 120.0]
    assert len({r["summary"]["files_in"] for r in runs}) == 1


def test_compare_crosses_two_axes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        [
            *SMALL,
            "--compare",
            "policy=target,step,guide-lambda",
            "--compare",
            "boot=ami,userdata",
            "--p95-goal",
            "900",
        ],
        capsys,
    )
    assert code == 0
    assert "policy=guide-lambda, boot=userdata" in out
    assert "cheapest:" in out
    assert "p95 wait <= 15.0 min" in out or "no run keeps the p95 wait under 15.0 min" in out


@pytest.mark.parametrize(
    ("compare", "message"),
    [
        ("targets=1,2", "unknown key 'targets'"),
        ("target", "expected KEY=V1,V2"),
        ("target=ten", "'ten' is not a number"),
        ("policy=fastest", "'fastest' is not one of target, step, guide-lambda"),
        ("boot=slow", "--boot 'slow'"),
        ("max=-1", "need 0 <= --min <= --max"),
    ],
)
def test_a_bad_compare_is_refused_with_exit_2(
    compare: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([*SMALL, "--compare", compare], capsys)
    assert code == 2
    assert out == ""
    assert message in err


def test_settings_out_of_range_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([*SMALL, "--min", "4", "--max", "3"], capsys)
    assert code == 2
    assert "need 0 <= --min <= --max" in err


def test_plot_without_matplotlib_says_how_to_install_it_before_any_work(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(plot_module.importlib.util, "find_spec", lambda name, *a: None)
    code, out, err = run([*SMALL, "--plot", str(tmp_path / "fleet.png")], capsys)
    assert code == 2
    assert out == ""
    assert "pip install 'filefleet[plot]'" in err
    assert not (tmp_path / "fleet.png").exists()


def test_plot_writes_a_png(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "fleet.png"
    code, out, err = run(
        [*SMALL, "--compare", "target=10,60", "--plot", str(target), "--plot-days", "0.1"], capsys
    )
    assert code == 0, err
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot: {target}" in out


def test_plot_to_an_unwritable_place_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    code, _, err = run([*SMALL, "--plot", str(tmp_path / "missing" / "fleet.png")], capsys)
    assert code == 1
    assert "cannot write" in err


def test_csv_arrivals(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    csv = tmp_path / "uploads.csv"
    csv.write_text(
        "uploaded_at,key\n2025-01-18T09:00:00Z,a.jpg\n2025-01-18T09:00:30+00:00,b.pdf\n2025-01-18T10:15:00Z,c.png\n"
    )
    code, out, err = run(["--arrivals", str(csv), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)["runs"][0]["summary"]
    assert summary["files_in"] == 3
    assert summary["files_done"] == 3
    assert summary["horizon_days"] == pytest.approx(76 / 1440, abs=1e-3)


def test_a_missing_csv_is_named() -> None:
    path = Path(__file__).parent / "csv-does-not-exist.csv"
    with pytest.raises(SettingsError, match="csv-does-not-exist"):
        read_csv(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000060\n1700000000\n1700000000.5\n", [0.0, 0.5, 60.0]),
        ("when\n2025-01-18 09:00:00\n2025-01-18 09:01:00\n", [0.0, 60.0]),
    ],
)
def test_csv_formats(tmp_path: Path, text: str, expected: list[float]) -> None:
    path = tmp_path / "times.csv"
    path.write_text(text)
    np.testing.assert_allclose(read_csv(path), expected)


@pytest.mark.parametrize(
    ("text", "message"), [("", "no timestamps"), ("10\nyesterday\n", "line 2: 'yesterday'")]
)
def test_csv_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "times.csv"
    path.write_text(text)
    with pytest.raises(SettingsError, match=message):
        read_csv(path)


def test_compare_axis_keeps_what_was_written() -> None:
    axis = parse_axis("boot=ami,userdata,45")
    assert [written for written, _ in axis.values] == ["ami", "userdata", "45"]
    assert [value for _, value in axis.values] == [30.0, 95.0, 45.0]


@pytest.mark.parametrize(
    ("seconds", "text"), [(42, "42 s"), (474.2, "7.9 min"), (15033.6, "4.2 h"), (400_000, "4.6 d")]
)
def test_durations_read_well(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def _fake(label: str, cost: float, p95: float | None, queued: int = 0) -> Labelled:
    summary: dict[str, Any] = {
        "cost_total": cost,
        "wait_p95_s": p95,
        "files_queued_at_end": queued,
        "files_in_flight_at_end": 0,
    }
    return Labelled(label, None, summary)  # type: ignore[arg-type]


def test_verdict_names_the_cheapest_run_within_the_goal() -> None:
    runs = [
        _fake("target=5", 55.0, 180.0),
        _fake("target=10", 50.0, 290.0),
        _fake("target=60", 45.0, 1580.0),
        _fake("guide", 10.0, None, queued=15),
    ]
    lines = verdict(runs, p95_goal=600.0)
    assert lines[0].startswith("guide: 15 file(s) never finished")
    assert lines[1].startswith("cheapest: target=60 ($45.00")
    assert lines[2].startswith("shortest p95 wait: target=5 (3.0 min")
    assert lines[3].startswith("cheapest with p95 wait <= 10.0 min: target=10 ($50.00")


def test_defaults_are_the_guides() -> None:
    s = Settings()
    assert (s.target, s.warmup_seconds, s.min_size, s.max_size) == (30.0, 180.0, 0, 3)
    assert (s.on_demand_percent, s.spot_price, s.on_demand_price) == (30.0, 0.0158, 0.0528)
    assert (s.concurrency, s.mean_seconds, s.visibility_timeout, s.drain_seconds) == (2, 60.0, 300.0, 90.0)
