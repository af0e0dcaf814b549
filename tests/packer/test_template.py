"""The Packer template: formatted, valid with the amazon source and offline, with the guide's settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.packer.conftest import (
    BUILD_VARS,
    NEWER_THAN_PACKER_1_6_6,
    PACKER_DIR,
    SCRIPTS,
    TEMPLATE,
    TemplateCopy,
    copy_for_packer_1_6_6,
    run_packer,
    var_args,
)


def test_every_packer_file_is_formatted(packer: str) -> None:
    result = run_packer(packer, "fmt", "-check", "-diff", ".", cwd=PACKER_DIR)
    assert result.returncode == 0, f"run `packer fmt packer/`:\n{result.stdout}{result.stderr}"


def test_the_template_validates_with_the_amazon_source_and_no_aws_credentials(
    packer: str, validatable: TemplateCopy
) -> None:
    # offline_env: no credentials, no region, no profile. 1.6.6 resolves source_ami_filter only when it
    # builds, so validate touches no AWS API (and no network exists here to touch).
    result = run_packer(packer, "validate", *var_args(), ".", cwd=validatable.path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_the_imdsv2_and_ssh_rule_arguments_are_left_to_newer_packer(
    packer: str, validatable: TemplateCopy, tmp_path: Path
) -> None:
    def flat(settings: dict[str, str]) -> dict[str, str]:  # alignment is packer fmt's business
        return {name: " ".join(text.split()) for name, text in settings.items()}

    assert flat(validatable.removed) == flat(NEWER_THAN_PACKER_1_6_6)
    # ...and those are the only things 1.6.6 objects to in the whole template.
    unstripped = copy_for_packer_1_6_6(tmp_path / "unstripped", strip=False)
    result = run_packer(packer, "validate", *var_args(), ".", cwd=unstripped.path)
    complaints = re.findall(r'(?:argument named|Blocks of type) "(\w+)"', result.stdout + result.stderr)
    assert result.returncode != 0 and sorted(complaints) == sorted(NEWER_THAN_PACKER_1_6_6), result.stdout


def test_plugins_file_holds_the_amazon_plugin_requirement_and_nothing_else() -> None:
    text = (PACKER_DIR / "plugins.pkr.hcl").read_text()
    code = "\n".join(line.split("#")[0] for line in text.splitlines())
    assert re.search(r'source\s*=\s*"github.com/hashicorp/amazon"', code)
    assert re.findall(r"^(\w[\w-]*)\s", code, flags=re.MULTILINE) == ["packer"], "one `packer {}` block only"


def console(packer: str, copy: TemplateCopy, expression: str) -> object:
    result = run_packer(
        packer, "console", *var_args(), ".", cwd=copy.path, stdin=f"jsonencode({expression})\n"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip())


def test_the_defaults_are_the_guides(packer: str, validatable: TemplateCopy) -> None:
    assert console(packer, validatable, "var.region") == "ap-northeast-1"
    assert console(packer, validatable, "var.root_volume") == {
        "size_gb": 20,
        "iops": 3000,
        "throughput_mbps": 125,
    }
    assert console(packer, validatable, "var.build_instance_type[var.arch]") == "t3.medium"
    assert console(packer, validatable, "local.ami_tags") == {
        "Project": "CISFileSearch",
        "Environment": "Development",
        "Component": "Worker",
        "Name": "filefleet-worker-x86_64",
        "WorkerImage": BUILD_VARS["worker_image"],
        "GitRevision": BUILD_VARS["git_revision"],
        "SourceAMI": "{{ .SourceAMI }}",
        "BuiltBy": "packer/filefleet-worker.pkr.hcl",
    }


def test_the_root_volume_is_gp3_encrypted_and_the_source_is_amazons_newest_al2023() -> None:
    text = TEMPLATE.read_text()
    for setting in (
        'device_name           = "/dev/xvda"',
        'volume_type           = "gp3"',
        "encrypted             = true",
        'owners      = ["amazon"]',
        "most_recent = true",
        'name                = "al2023-ami-${var.al2023_release}-kernel-${var.al2023_kernel}-${var.arch}"',
        'ami_name        = "${var.ami_name_prefix}-al2023-${var.arch}-${local.build_time}"',
        'post-processor "manifest"',
    ):
        assert setting in text, setting


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("worker_image", "filefleet:latest", "must be an image ID"),
        (
            "worker_image",
            "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/filefleet:latest",
            "pinned by digest",
        ),
        ("git_revision", "main", "must be a commit hash"),
        ("arch", "aarch64", "must be x86_64 or arm64"),
    ],
)
def test_a_bad_variable_is_refused_before_anything_is_launched(
    packer: str, validatable: TemplateCopy, variable: str, value: str, message: str
) -> None:
    result = run_packer(packer, "validate", *var_args(**{variable: value}), ".", cwd=validatable.path)
    assert result.returncode != 0 and message in result.stdout + result.stderr


def test_an_ecr_reference_by_digest_and_arm64_are_accepted(packer: str, validatable: TemplateCopy) -> None:
    ecr = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/filefleet@sha256:" + "a" * 64
    result = run_packer(
        packer, "validate", *var_args(worker_image=ecr, arch="arm64"), ".", cwd=validatable.path
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_template_runs_every_script_and_no_script_is_forgotten() -> None:
    listed = re.findall(r'"\$\{path\.root\}/scripts/([^"]+)"', TEMPLATE.read_text())
    assert sorted(listed) == sorted(path.name for path in SCRIPTS.glob("*.sh"))
    assert listed[-1] == "cleanup.sh", "cleanup runs last"
