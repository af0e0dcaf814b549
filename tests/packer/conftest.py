"""Static checks of packer/: the tools they need, and the copy of the template packer 1.6.6 can validate.

Debian's packer is 1.6.6 (December 2020). It validates the template fully, builder arguments included,
except what postdates it: the `required_plugins` block (kept alone in plugins.pkr.hcl) and three
arguments of the amazon builder. Those are cut out of a copy before `packer validate`, and
test_template.py pins both what is cut (exactly these settings) and that 1.6.6 rejects nothing else.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.components import component_missing

ROOT = Path(__file__).resolve().parents[2]
PACKER_DIR = ROOT / "packer"
TEMPLATE = PACKER_DIR / "filefleet-worker.pkr.hcl"
FILES = PACKER_DIR / "files"
SCRIPTS = PACKER_DIR / "scripts"

# The arguments of the amazon-ebs source that packer 1.6.6 does not know, exactly as the template must
# set them: they are what makes the build IMDSv2-only and the SSH rule narrow, so a change is a failure.
NEWER_THAN_PACKER_1_6_6 = {
    "metadata_options": (
        "metadata_options {\n"
        '    http_endpoint               = "enabled"\n'
        '    http_tokens                 = "required"\n'
        "    http_put_response_hop_limit = 1\n"
        "  }"
    ),
    "imds_support": 'imds_support = "v2.0"',
    "temporary_security_group_source_public_ip": "temporary_security_group_source_public_ip = true",
}

# Values for the two variables without a default.
BUILD_VARS = {"worker_image": "sha256:" + "0" * 64, "git_revision": "0123abc"}


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        component_missing(f"{name} is not installed (apt-get install {package})")
        raise AssertionError  # unreachable: component_missing fails or skips
    return path


@pytest.fixture(scope="session")
def packer() -> str:
    return tool("packer", "packer")


def offline_env() -> dict[str, str]:
    """No AWS credentials, profile or region: what `packer validate` must do without. No version check."""
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return {"PATH": path, "HOME": tempfile.gettempdir(), "CHECKPOINT_DISABLE": "1"}


def run_packer(
    packer: str, *args: str, cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [packer, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=offline_env(),
        timeout=120,
        check=False,
    )


def var_args(**overrides: str) -> list[str]:
    args: list[str] = []
    for name, value in {**BUILD_VARS, **overrides}.items():
        args += ["-var", f"{name}={value}"]
    return args


@dataclass(frozen=True)
class TemplateCopy:
    path: Path
    removed: dict[str, str]


def copy_for_packer_1_6_6(destination: Path, *, strip: bool = True) -> TemplateCopy:
    """packer/ without plugins.pkr.hcl and, when `strip`, without the arguments 1.6.6 predates."""
    leave_out = shutil.ignore_patterns(
        "plugins.pkr.hcl", "manifest.json", "*.tar*"
    )  # *.tar*: an image archive
    shutil.copytree(PACKER_DIR, destination, ignore=leave_out)
    template = destination / TEMPLATE.name
    text = template.read_text()
    removed: dict[str, str] = {}
    if strip:
        for name in NEWER_THAN_PACKER_1_6_6:
            # An argument is one line; a block runs to the first closing brace at its own indentation.
            block, argument = rf"^(  ){name} \{{\n.*?^\1\}}$", rf"^  {name} += [^\n]*$"
            pattern = block if name == "metadata_options" else argument
            match = re.search(pattern, text, flags=re.MULTILINE | re.DOTALL)
            assert match, f"{name} is no longer in {TEMPLATE.name}"
            removed[name] = match.group(0).strip()
            text = text[: match.start()] + text[match.end() :]
    template.write_text(text)
    return TemplateCopy(destination, removed)


@pytest.fixture
def validatable(tmp_path: Path) -> TemplateCopy:
    return copy_for_packer_1_6_6(tmp_path / "packer")
