"""The build steps: one bash script each, strict mode, shellcheck-clean."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.packer.conftest import SCRIPTS, tool

BUILD_STEPS = sorted(SCRIPTS.glob("*.sh"))


@pytest.fixture(scope="session")
def shellcheck() -> str:
    return tool("shellcheck", "shellcheck")


@pytest.mark.parametrize("script", BUILD_STEPS, ids=lambda path: path.name)
def test_the_build_step_is_shellcheck_clean(shellcheck: str, script: Path) -> None:
    # Every severity, style included: these run as root on the image every instance boots from.
    result = subprocess.run(
        [shellcheck, "--severity=style", "--shell=bash", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", BUILD_STEPS, ids=lambda path: path.name)
def test_the_build_step_is_bash_in_strict_mode(script: Path) -> None:
    lines = script.read_text().splitlines()
    code = [line for line in lines if line.strip() and not line.startswith("#")]
    assert lines[0] == "#!/usr/bin/env bash"
    assert code[0] == "set -euo pipefail", "the first command: a failing step must fail the build"
