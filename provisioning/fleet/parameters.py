"""Stack parameters: what the operator gave, what the stack already has, and what CloudFormation is sent.

On an update every parameter the operator did not give keeps its deployed value (UsePreviousValue), so
`deploy --parameters MaxSize=5` changes MaxSize and nothing else, and `rollout` changes only AmiId. A
parameter new to the template keeps its template default; one with no default must be given. Names the
template does not declare are refused before anything is sent, with the names it does declare.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioning.fleet.errors import FleetConfigError
from provisioning.fleet.template import Template

AMI_PARAMETER = "AmiId"


def parse_assignments(assignments: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` words (the value may contain '=' and commas: SubnetIds=subnet-a,subnet-b)."""
    values: dict[str, str] = {}
    for word in assignments:
        key, sep, value = word.partition("=")
        if not sep or not key.strip():
            raise FleetConfigError(f"--parameters {word!r} is not KEY=VALUE")
        values[key.strip()] = value
    return values


def read_parameters_file(path: Path) -> dict[str, str]:
    """A JSON file: ``{"Key": "Value"}``, ``{"Parameters": {...}}`` or the AWS CLI's list of
    ``{"ParameterKey": ..., "ParameterValue": ...}``. Numbers and booleans become text; lists are joined with
    commas (the form List<...> parameters take)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FleetConfigError(f"cannot read --parameters-file {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise FleetConfigError(f"--parameters-file {path} is not JSON: {exc}") from exc
    if isinstance(document, dict) and isinstance(document.get("Parameters"), dict):
        document = document["Parameters"]
    if isinstance(document, list):
        try:
            pairs = {item["ParameterKey"]: item["ParameterValue"] for item in document}
        except (KeyError, TypeError) as exc:
            raise FleetConfigError(
                f"--parameters-file {path}: every item needs ParameterKey and ParameterValue"
            ) from exc
        document = pairs
    if not isinstance(document, dict):
        raise FleetConfigError(f"--parameters-file {path} must hold an object of KEY: VALUE pairs")
    return {str(key): _as_text(value, key=str(key), path=path) for key, value in document.items()}


def _as_text(value: Any, *, key: str, path: Path) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, str | int) for item in value):
        return ",".join(str(item) for item in value)
    raise FleetConfigError(f"--parameters-file {path}: {key} must be text, a number or a list of text")


@dataclass(frozen=True)
class ParameterPlan:
    """What one change set is sent: explicit values, and the names that keep their deployed values."""

    given: dict[str, str]
    kept: tuple[str, ...]

    def as_api(self) -> list[dict[str, Any]]:
        explicit: list[dict[str, Any]] = [
            {"ParameterKey": key, "ParameterValue": value} for key, value in self.given.items()
        ]
        return explicit + [{"ParameterKey": key, "UsePreviousValue": True} for key in self.kept]


def plan_parameters(
    template: Template, given: Mapping[str, str], deployed: Mapping[str, str] | None
) -> ParameterPlan:
    """The parameters for a create (``deployed`` None) or an update of a stack holding ``deployed``."""
    unknown = sorted(set(given) - set(template.parameters))
    if unknown:
        raise FleetConfigError(
            f"the template declares no parameter {', '.join(unknown)}; it declares: "
            f"{', '.join(sorted(template.parameters))}"
        )
    deployed = deployed or {}
    kept = tuple(name for name in template.parameters if name not in given and name in deployed)
    missing = [
        name
        for name, spec in template.parameters.items()
        if name not in given and name not in deployed and spec.default is None
    ]
    if missing:
        example = " ".join(f"{name}=..." for name in missing)
        raise FleetConfigError(
            f"the template needs a value for {', '.join(missing)}: pass --parameters {example}"
        )
    return ParameterPlan(given=dict(given), kept=kept)
