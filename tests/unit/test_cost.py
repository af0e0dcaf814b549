"""`filefleet cost`: the bill's arithmetic, the SQS request bill, the purchase mix, options and --json."""

# These tests compare with the output and quote the arithmetic.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import pytest

from app.cost import add_cost_parser
from app.cost.model import GUIDE_INPUTS, all_spot, estimate, purchase_mix, rounded, sqs_bill
from tests.unit.test_cost_guide import MISMATCHES


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="filefleet")
    add_cost_parser(parser.add_subparsers(required=True, metavar="COMMAND"))
    args = parser.parse_args(["cost", *argv])
    code = args.command(args)
    out, err = capsys.readouterr()
    return code, out, err


# -- arithmetic ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "places", "shown"),
    [
        (Fraction("8.7848"), 2, "8.78"),
        (Fraction("0.005"), 2, "0.01"),  # half-up, like the guide and an invoice (banker's would give 0.00)
        (Fraction("0.015"), 2, "0.02"),
        (Fraction("-0.005"), 2, "-0.01"),  # half away from zero
        (Fraction(5000, 3), 0, "1667"),
        (Fraction(5000, 3), 2, "1666.67"),
        (Fraction(0), 2, "0.00"),
        (Fraction(10**30) + Fraction(1, 2), 0, str(10**30 + 1)),  # no precision limit
    ],
)
def test_rounding_is_half_up_and_exact(value: Fraction, places: int, shown: str) -> None:
    assert str(rounded(value, places)) == shown


@pytest.mark.parametrize(
    ("instances", "base", "percent", "on_demand"),
    [
        (3, 0, 30, 1),  # the guide's "3 instances = 2 Spot + 1 On-Demand": 0.9 rounds up to 1
        (1, 0, 30, 1),  # 0.3 rounds up: a group of one runs On-Demand
        (2, 0, 30, 1),
        (10, 0, 30, 3),
        (0, 0, 30, 0),
        (3, 0, 0, 0),  # the guide's cost table: all Spot
        (20, 10, 50, 15),  # the AWS user guide's example 1: base 10, then 50/50
        (10, 12, 0, 10),  # a base above the group's size caps at the size (example 5)
        (10, 0, 60, 6),  # example 3
    ],
)
def test_purchase_mix_rounds_up_in_favour_of_on_demand(
    instances: int, base: int, percent: int, on_demand: int
) -> None:
    assert purchase_mix(instances, base=base, percent=percent).on_demand == on_demand


def test_the_guides_inputs_with_its_own_70_30_mix() -> None:
    est = estimate(GUIDE_INPUTS)
    assert est.instance_hours == Fraction(5000, 3)
    assert est.wall_clock_hours == Fraction(5000, 9)
    assert (est.mix.on_demand, est.mix.spot) == (1, 2)
    assert {line.key: str(line.billed) for line in est.lines} == {
        "spot_compute": "17.56",  # 1,111.11 h × $0.0158
        "on_demand_compute": "29.33",  # 555.56 h × $0.0528
        "ebs": "4.38",
        "monitoring": "4.79",  # $2.10 × 1,666.67 / 730, which the guide's table leaves out
        "data_transfer": "0.50",
        "sqs": "0.00",
    }
    assert est.total == Decimal("56.56") == sum(line.billed for line in est.lines)
    assert est.all_spot_total == Decimal("36.00")
    assert est.on_demand_extra == Decimal("20.56")
    assert est.always_on_total == Decimal("128.19")  # 3 × 24/7: 115.63 + 5.76 + 6.30 + 0.50 + 0.00
    assert est.savings == Decimal("71.63")
    assert rounded(100 * (est.savings_share or Fraction(0)), 1) == Decimal("55.9")


def test_all_spot_reproduces_the_guides_table_lines_corrected() -> None:
    est = estimate(replace(all_spot(GUIDE_INPUTS), detailed_monitoring=False))
    assert est.line("spot_compute").billed == Decimal("26.33")  # not the guide's $8.78
    assert est.line("on_demand_compute").billed == Decimal("0.00")
    assert est.line("ebs").billed == Decimal("4.38")
    assert est.total == Decimal("31.21")  # 26.33 + 4.38 + 0.50 + 0.00


def test_totals_add_the_lines_as_shown() -> None:
    # Exact lines 26.3333 + 4.3836 + 0.50 = 31.2169 would round to 31.22; a bill adds what it shows.
    est = estimate(replace(all_spot(GUIDE_INPUTS), detailed_monitoring=False))
    assert est.total == sum(line.billed for line in est.lines)


def test_sqs_request_bill_seed_loop_against_filefleet() -> None:
    est = estimate(GUIDE_INPUTS)
    assert (est.seed_sqs.requests, est.sqs.requests) == (
        Fraction(200_000),
        Fraction(20_000),
    )  # 100K × 2.00 and × 0.20
    assert rounded(est.seed_sqs.gross, 2) == Decimal("0.08")  # 0.2 million × $0.40
    assert rounded(est.sqs.gross, 2) == Decimal("0.01")  # 0.02 million × $0.40 = $0.008
    assert est.seed_sqs.net == est.sqs.net == 0  # both inside the 1M free requests


def test_sqs_request_bill_past_the_free_tier() -> None:
    inputs = replace(GUIDE_INPUTS, files_per_month=10_000_000)
    seed = sqs_bill(inputs.files_per_month, inputs.seed_calls_per_message, inputs)
    fleet = sqs_bill(inputs.files_per_month, inputs.calls_per_message, inputs)
    assert (seed.requests, seed.billable_requests, rounded(seed.net, 2)) == (
        Fraction(20_000_000),
        Fraction(19_000_000),
        Decimal("7.60"),
    )
    assert (fleet.requests, fleet.billable_requests, rounded(fleet.net, 2)) == (
        Fraction(2_000_000),
        Fraction(1_000_000),
        Decimal("0.40"),
    )
    no_free = replace(inputs, sqs_free_requests=0)
    assert rounded(sqs_bill(10_000_000, Decimal("0.20"), no_free).net, 2) == Decimal("0.80")


def test_monitoring_off_costs_nothing_and_a_finite_month_is_checked() -> None:
    est = estimate(replace(GUIDE_INPUTS, detailed_monitoring=False, instances=1))
    assert est.line("monitoring").amount == 0
    assert est.mix.on_demand == 1  # one instance at 30 % is On-Demand
    assert not est.finishes_within_month  # 1,666.67 h of work on one instance in a 730 h month


# -- the command ---------------------------------------------------------------------------------------------


def test_default_run_prints_the_bill(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run([], capsys)
    assert (code, err) == (0, "")
    assert "1 On-Demand + 2 Spot of 3" in out
    assert "  Total                 $56.56" in out
    assert "200,000 requests ($0.08 without the free tier): 10× filefleet's" in out
    assert "benchmarks/sqs_throughput.py" in out  # where 2.00 and 0.20 come from


def test_options_change_the_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        [
            "--files-per-month", "200000", "--minutes-per-file", "0.5", "--instances", "4",
            "--spot-price", "0.02", "--on-demand-price", "0.05", "--ebs-gb", "30", "--ebs-price", "0.08",
            "--no-detailed-monitoring", "--data-transfer", "1", "--hours-per-month", "720",
            "--on-demand-percent", "0", "--sqs-price-per-million", "0.50", "--sqs-free-requests", "0",
            "--calls-per-message", "0.1", "--seed-calls-per-message", "3", "--json",
        ],
        capsys,
    )  # fmt: skip
    assert code == 0
    est = json.loads(out)["estimate"]
    assert est["inputs"]["instances"] == 4
    assert est["instance_hours"] == "1666.67"  # 200,000 × 0.5 min
    assert est["wall_clock_hours"] == "416.67"
    assert {line["key"]: line["usd"] for line in est["lines"]} == {
        "spot_compute": "33.33",
        "on_demand_compute": "0.00",
        "ebs": "5.56",  # 30 × 0.08 × 1666.67 / 720
        "monitoring": "0.00",
        "data_transfer": "1.00",
        "sqs": "0.01",  # 20,000 requests × $0.50 per million
    }
    assert est["sqs"]["seed"]["requests"] == "600000"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--spot-price", "-1"], "filefleet: --spot-price=-1 is negative: it must be 0 or more"),
        (["--files-per-month=-5"], "filefleet: --files-per-month=-5 is negative: it must be 0 or more"),
        (["--ebs-gb", "-0.5"], "filefleet: --ebs-gb=-0.5 is negative: it must be 0 or more"),
        (
            ["--calls-per-message", "-0.2"],
            "filefleet: --calls-per-message=-0.2 is negative: it must be 0 or more",
        ),
        (["--instances", "0"], "filefleet: --instances=0 is out of range: it must be 1 or more"),
        (["--instances", "2.5"], "filefleet: --instances=2.5 is not a whole number"),
        (
            ["--on-demand-percent", "101"],
            "filefleet: --on-demand-percent=101 is out of range: it must be between 0 and 100",
        ),
        (["--hours-per-month", "0"], "filefleet: --hours-per-month=0 must be more than 0"),
        (["--minutes-per-file", "abc"], "filefleet: --minutes-per-file='abc' is not a number"),
        (["--minutes-per-file", "NaN"], "filefleet: --minutes-per-file='NaN' is not a finite number"),
        (["--spot-price", "Infinity"], "filefleet: --spot-price='Infinity' is not a finite number"),
        (
            ["--preset", "guide", "--instances", "4"],
            "filefleet: --preset guide recomputes the guide's own inputs and takes no --instances "
            "(drop --preset to price your own)",
        ),
        (
            ["--preset", "guide", "--no-detailed-monitoring"],
            "filefleet: --preset guide recomputes the guide's own inputs and takes no "
            "--[no-]detailed-monitoring (drop --preset to price your own)",
        ),
    ],
)  # fmt: skip
def test_bad_values_are_refused_on_one_line_with_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert (code, out, err) == (2, "", message + "\n")


def test_zero_is_a_valid_amount(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--files-per-month", "0", "--data-transfer", "0", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["estimate"]["total_usd"] == "0.00"


def test_json_shape_of_the_preset(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--preset", "guide", "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert list(doc) == ["preset", "rounding", "checks", "mismatches", "throughput", "claims", "estimate"]
    assert doc["preset"] == "guide"
    assert len(doc["checks"]) == 15
    assert set(doc["checks"][0]) == {
        "key", "section", "label", "expression", "unit", "places", "printed", "as_printed", "recomputed",
        "follows", "flags", "upstream", "note",
    }  # fmt: skip
    spot = next(check for check in doc["checks"] if check["key"] == "spot_cost")
    assert (spot["printed"], spot["as_printed"], spot["recomputed"], spot["flags"]) == (
        "8.78",
        "8.78",
        "26.33",
        ["formula"],
    )
    assert doc["mismatches"] == list(MISMATCHES)
    assert {row["key"] for row in doc["throughput"]} >= {"per_instance", "daily_hours", "capacity"}
    assert all(set(claim) == {"key", "quote", "verdict", "reason"} for claim in doc["claims"])
    est = doc["estimate"]
    assert est["total_usd"] == "56.56"
    assert est["sqs"]["seed"] == {
        "calls_per_message": "2.00",
        "requests": "200000",
        "billable_requests": "0",
        "gross_usd": "0.08",
        "net_usd": "0.00",
    }
    assert est["sqs"]["filefleet"]["requests"] == "20000"
    # Every amount is a decimal string, never a float.
    assert all(isinstance(line["usd"], str) for line in est["lines"])


def test_json_shape_without_a_preset(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--json"], capsys)
    doc = json.loads(out)
    assert code == 0
    assert doc["preset"] is None
    assert set(doc["estimate"]) == {
        "inputs", "instance_hours", "wall_clock_hours", "finishes_within_month", "mix", "lines", "total_usd",
        "all_spot_total_usd", "on_demand_share_extra_usd", "always_on_total_usd", "savings_usd",
        "savings_percent", "sqs",
    }  # fmt: skip
    assert doc["estimate"]["mix"] == {
        "instances": 3,
        "on_demand": 1,
        "spot": 2,
        "on_demand_share_percent": "33.3",
        "spot_hours": "1111.11",
        "on_demand_hours": "555.56",
    }


def test_too_much_work_for_the_month_is_warned_about(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--instances", "1"], capsys)
    assert code == 0
    assert "WARNING: the work needs 1,666.67 h of wall clock on 1 instance, more than the 730 h month" in out


def test_add_cost_parser_sets_the_command() -> None:
    parser = argparse.ArgumentParser(prog="filefleet")
    add_cost_parser(parser.add_subparsers(required=True, metavar="COMMAND"))
    args = parser.parse_args(["cost"])
    assert args.command.__name__ == "run_cost"
    assert args.preset is None and args.json is False
