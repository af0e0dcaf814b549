"""A change set as a reviewable diff: one line per resource, its properties and why they change, parameters.

    ~ Modify   LaunchTemplate   AWS::EC2::LaunchTemplate
        LaunchTemplateData.ImageId: ami-0aaa -> ami-0bbb  (parameter AmiId)
    ! Replace  Queue            AWS::SQS::Queue
        QueueName  (template edit; recreation Always)

"Replace" is spelled out because it deletes the old physical resource: a replaced queue loses its messages,
a replaced group its instances. "Modify (may replace)" is CloudFormation's Conditional: it depends on a
value only known while executing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from provisioning.fleet.changeset import ChangeSet

_VALUE_WIDTH = 60
_SIGN = {"Add": "+", "Remove": "-", "Modify": "~", "Replace": "!", "Modify (may replace)": "!"}
_CAUSES = {
    "ParameterReference": "parameter {}",
    "ResourceReference": "resource {}",
    "ResourceAttribute": "{}",
    "DirectModification": "template edit",
    "Automatic": "nested stack",
}


def render_change_set(change_set: ChangeSet, deployed_parameters: Mapping[str, str]) -> list[str]:
    verb = "create" if change_set.kind == "CREATE" else "update"
    lines = [f"Change set {change_set.name} ({verb} stack {change_set.stack_name}):"]
    resources = [c["ResourceChange"] for c in change_set.changes if c.get("Type") == "Resource"]
    if not resources:
        lines.append("  no resource changes")
    actions: Counter[str] = Counter()
    for change in resources:
        action = _action(change)
        actions[action] += 1
        lines.extend(_resource_lines(action, change))
    lines.extend(_parameter_lines(change_set, deployed_parameters))
    lines.append(_summary(actions))
    return lines


def _action(change: Mapping[str, Any]) -> str:
    action = str(change.get("Action", "?"))
    if action == "Modify":
        replacement = change.get("Replacement")
        if replacement == "True":
            return "Replace"
        if replacement == "Conditional":
            return "Modify (may replace)"
    return action


def _resource_lines(action: str, change: Mapping[str, Any]) -> list[str]:
    sign = _SIGN.get(action, "?")
    head = f"  {sign} {action:<8} {change.get('LogicalResourceId', '?'):<28} {change.get('ResourceType', '')}"
    if action == "Remove" and change.get("PolicyAction") in ("Retain", "Snapshot"):
        head += f"  (kept: DeletionPolicy {change['PolicyAction']})"
    return [head, *(f"      {line}" for line in _property_lines(change.get("Details", [])))]


def _property_lines(details: list[dict[str, Any]]) -> list[str]:
    """One line per changed property: its values when CloudFormation gave them, and every cause."""
    by_property: dict[str, dict[str, Any]] = {}
    for detail in details:
        target = detail.get("Target", {})
        name = _property_name(target)
        entry = by_property.setdefault(name, {"target": target, "causes": []})
        cause = _cause(detail)
        if cause and cause not in entry["causes"]:
            entry["causes"].append(cause)
    lines = []
    for name, entry in by_property.items():
        target, causes = entry["target"], list(entry["causes"])
        text = name
        if "BeforeValue" in target or "AfterValue" in target:
            text += f": {_short(target.get('BeforeValue'))} -> {_short(target.get('AfterValue'))}"
        if target.get("RequiresRecreation") in ("Always", "Conditionally"):
            causes.append(f"recreation {target['RequiresRecreation']}")
        lines.append(f"{text}  ({'; '.join(causes)})" if causes else text)
    return lines


def _property_name(target: Mapping[str, Any]) -> str:
    path = str(target.get("Path") or "")
    if path.startswith("/Properties/"):
        return path.removeprefix("/Properties/").replace("/", ".")
    if target.get("Attribute") == "Properties":
        return str(target.get("Name") or "Properties")
    return str(target.get("Attribute") or target.get("Name") or "?")


def _cause(detail: Mapping[str, Any]) -> str | None:
    template = _CAUSES.get(str(detail.get("ChangeSource", "")))
    if template is None:
        return None
    cause = template.format(detail.get("CausingEntity", "?"))
    if detail.get("Evaluation") == "Dynamic":
        cause += ", known only while executing"
    return cause


def _short(value: object) -> str:
    if value is None:
        return "(none)"
    text = str(value)
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 3] + "..."


def _parameter_lines(change_set: ChangeSet, deployed: Mapping[str, str]) -> list[str]:
    after = change_set.parameters
    changed = [
        f"  ~ {key}: {_short(deployed[key])} -> {_short(value)}"
        for key, value in after.items()
        if key in deployed and deployed[key] != value
    ]
    added = [f"  + {key} = {_short(value)}" for key, value in after.items() if key not in deployed]
    removed = [
        f"  - {key} (was {_short(value)})" for key, value in deployed.items() if after and key not in after
    ]
    lines = changed + added + removed
    if lines:
        return ["Parameters:", *lines]
    return ["Parameters: the template's defaults" if change_set.kind == "CREATE" else "Parameters: unchanged"]


def _summary(actions: Counter[str]) -> str:
    replaced = actions["Replace"] + actions["Modify (may replace)"]
    modified = actions["Modify"] + replaced
    text = f"{actions['Add']} to add, {modified} to modify, {actions['Remove']} to remove"
    if replaced:
        text += f" ({replaced} replaced or possibly replaced: the old resource is deleted)"
    return text
