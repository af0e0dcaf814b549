"""provisioning/fleet.yaml through cfn-lint, checkov and parliament: no finding, every exception explained.

A missing tool fails the run with CI=true and skips loudly otherwise (tests.support.components).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.provisioning.cfn import ROOT, TEMPLATE_PATH, Evaluator
from tests.support.components import component_missing

# cfn-lint checks the resource schemas of these regions: the guide's and moto's default.
LINT_REGIONS = ["ap-northeast-1", "us-east-1"]


def test_cfn_lint_finds_nothing() -> None:
    try:
        from cfnlint.api import ManualArgs, lint_file
    except ImportError:
        component_missing("cfn-lint is not installed (pip install -e '.[dev]')")
    matches = lint_file(TEMPLATE_PATH, config=ManualArgs(regions=LINT_REGIONS))
    assert [str(match) for match in matches] == []


def _checkov() -> str:
    """$CHECKOV, else the checkov next to this Python (the project's venv), else one on PATH."""
    candidates = [
        os.environ.get("CHECKOV"),
        str(Path(sys.executable).parent / "checkov"),
        shutil.which("checkov"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    component_missing("checkov is not installed (pip install -e '.[dev]', or set CHECKOV=/path/to/checkov)")
    raise AssertionError("unreachable")


def _declared_skips(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(check id, resource) → the justification written next to it in the template's metadata."""
    skips = {}
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skips[(skip["id"], f"{resource['Type']}.{name}")] = skip.get("comment", "")
    return skips


def test_checkov_fails_no_check_and_every_skip_is_justified_and_used(
    template: dict[str, Any], tmp_path: Path
) -> None:
    command = [
        _checkov(),
        "--file",
        str(TEMPLATE_PATH),
        "--framework",
        "cloudformation",
        "--output",
        "json",
        "--compact",
        "--skip-download",  # offline: no guidelines or policies fetched from the vendor's platform
    ]
    environment = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}  # no guideline mapping fetched either
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=110, cwd=tmp_path, env=environment, check=False
    )
    assert run.returncode in (0, 1), run.stderr[-2000:]
    report = json.loads(run.stdout)
    results = report["results"]
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in results["failed_checks"]]
    assert failed == [], "checkov found problems (fix them, or skip with a reason in the resource's Metadata)"
    assert results["passed_checks"], "checkov evaluated nothing: did it parse the template?"

    declared = _declared_skips(template)
    used = {(c["check_id"], c["resource"]) for c in results["skipped_checks"]}
    assert used == set(declared), "a skip in the template that checkov no longer needs, or one it ignored"
    for key, comment in declared.items():
        assert len(comment.split()) >= 15, f"{key}: a skip needs a real reason, not {comment!r}"
    # Checkov's IAM checks must see the worker's policies: a conditional statement inside a policy document
    # hides the whole document from them (measured with checkov 3.3), so none may be there.
    iam_checked = {c["resource"] for c in results["passed_checks"] if c["check_id"] == "CKV_AWS_111"}
    assert {"AWS::IAM::Role.WorkerRole", "AWS::IAM::Policy.WorkerBedrockPolicy"} <= iam_checked


# Parliament reports RESOURCE_MISMATCH for bedrock:InvokeModel whatever model ARN is given: its IAM data marks
# each of the action's resource types (foundation-model, inference-profile, provisioned-model, ...) as
# required, where the service needs one of them. The test accepts exactly that finding, and only when the
# foundation-model format is not among the formats it says are unmatched (i.e. our ARN does match it).
BEDROCK_ALTERNATIVE_RESOURCE_TYPES = "foundation-model"


def _parliament_findings(document: dict[str, Any]) -> list[Any]:
    try:
        from parliament import analyze_policy_string
    except ImportError:
        component_missing("parliament is not installed (pip install -e '.[dev]')")
    policy = analyze_policy_string(json.dumps(document), include_community_auditors=True)
    return list(policy.findings)


def _is_bedrock_alternatives_finding(finding: Any) -> bool:
    if finding.issue != "RESOURCE_MISMATCH":
        return False
    details = finding.detail
    return all(d["action"] == "bedrock:InvokeModel" for d in details) and not any(
        BEDROCK_ALTERNATIVE_RESOURCE_TYPES in d["required_format"] for d in details
    )


@pytest.mark.parametrize("embedder", ["titan", "local"])
def test_parliament_finds_nothing_in_the_worker_policies(
    evaluate: Callable[..., Evaluator], embedder: str
) -> None:
    stack = evaluate(Embedder=embedder, ObjectKeyPrefix="incoming/")
    documents = {"filefleet-worker": stack.resource("WorkerRole")["Policies"][0]["PolicyDocument"]}
    if stack.exists("WorkerBedrockPolicy"):
        documents["filefleet-worker-bedrock"] = stack.resource("WorkerBedrockPolicy")["PolicyDocument"]
    assert ("filefleet-worker-bedrock" in documents) == (embedder == "titan")
    for name, document in documents.items():
        findings = [f for f in _parliament_findings(document) if not _is_bedrock_alternatives_finding(f)]
        assert [(f.issue, f.detail) for f in findings] == [], name


def test_parliament_would_report_a_broad_grant() -> None:
    """The linter is live: the same call flags a statement that is obviously wrong."""
    findings = _parliament_findings(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket"}],
        }
    )
    assert any(f.issue == "RESOURCE_MISMATCH" for f in findings)


def test_the_project_root_is_where_the_template_is() -> None:
    assert (ROOT / "pyproject.toml").is_file()
    assert TEMPLATE_PATH.is_file()
