"""Reading provisioning/fleet.yaml in tests: a loader for the short-form tags and a small evaluator.

The evaluator resolves what the template's semantics tests and the policy linter need (Ref, Fn::Sub,
Fn::GetAtt, Fn::If and the condition functions, Fn::Join, Fn::Select, Fn::Split, Fn::Base64, AWS::NoValue) for
one set of parameter values, with made-up physical ids for resources. It is not CloudFormation: it refuses
what it does not know instead of guessing.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "provisioning" / "fleet.yaml"
USER_DATA_PATH = ROOT / "packer" / "files" / "user-data.yaml"
# The stack's outputs that operators, `filefleet fleet` and the docs rely on: renaming one breaks them.
CONTRACT_OUTPUTS = {
    "QueueUrl",
    "DeadLetterQueueUrl",
    "BucketName",
    "AutoScalingGroupName",
    "LaunchTemplateId",
    "LifecycleHookName",
    "NotificationTopicArn",
    "DashboardName",
    "WorkerRoleArn",
    "LogGroupName",
}
# The guide's mixed instances group: its instance types in order, and the 70 % Spot / 30 % On-Demand split.
GUIDE_INSTANCE_TYPES = ["t3.medium", "t3a.medium", "t2.medium"]
GUIDE_DISTRIBUTION = {
    "OnDemandAllocationStrategy": "prioritized",
    "OnDemandBaseCapacity": 0,
    "OnDemandPercentageAboveBaseCapacity": 30,
    "SpotAllocationStrategy": "capacity-optimized",
}

_SCALAR_TAGS = ("Ref", "Condition")
_FUNCTION_TAGS = (
    "Base64",
    "Cidr",
    "FindInMap",
    "GetAtt",
    "GetAZs",
    "ImportValue",
    "Join",
    "Select",
    "Split",
    "Sub",
    "Transform",
    "And",
    "Equals",
    "If",
    "Not",
    "Or",
)


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns !Ref x into {"Ref": x} and !Fn args into {"Fn::Fn": args}."""


def _construct(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        if name == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {name if name in _SCALAR_TAGS else f"Fn::{name}": value}

    return construct


for _tag in (*_SCALAR_TAGS, *_FUNCTION_TAGS):
    _CfnLoader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return load_template_text(path.read_text(encoding="utf-8"))


def load_template_text(text: str) -> dict[str, Any]:
    loaded = yaml.load(text, Loader=_CfnLoader)
    assert isinstance(loaded, dict)
    return loaded


class _NoValue:
    """AWS::NoValue: removes the property or list element it stands for."""


NO_VALUE = _NoValue()
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


@dataclass
class Evaluator:
    """Evaluates intrinsic functions of ``template`` for the given parameter values."""

    template: Mapping[str, Any]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    stack_name: str = "ff-test"
    region: str = "ap-northeast-1"
    account: str = "123456789012"
    partition: str = "aws"

    def __post_init__(self) -> None:
        values: dict[str, Any] = {}
        for name, spec in self.template.get("Parameters", {}).items():
            if name in self.parameters:
                values[name] = self.parameters[name]
            elif "Default" in spec:
                values[name] = spec["Default"]
            else:
                raise KeyError(f"parameter {name} has no default: pass a value")
            if spec["Type"] == "CommaDelimitedList" and isinstance(values[name], str):
                values[name] = values[name].split(",")
        self.values = values
        self._conditions: dict[str, bool] = {}

    # ---- pseudo parameters and resources
    def pseudo(self, name: str) -> Any:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }[name]

    def physical_id(self, logical: str) -> str:
        """What Ref gives for a resource: the name the template sets, else a made-up id."""
        resource = self.template["Resources"][logical]
        properties = resource.get("Properties", {})
        kind = resource["Type"]
        named = {
            "AWS::SQS::Queue": "QueueName",
            "AWS::S3::Bucket": "BucketName",
            "AWS::AutoScaling::AutoScalingGroup": "AutoScalingGroupName",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::CloudWatch::Dashboard": "DashboardName",
        }
        if kind in named and named[kind] in properties:
            name = self.eval(properties[named[kind]])
            if kind == "AWS::SQS::Queue":
                return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{name}"
            return str(name)
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{self.region}:{self.account}:{self.eval(properties['TopicName'])}"
        if kind == "AWS::AutoScaling::ScalingPolicy":
            return f"arn:aws:autoscaling:{self.region}:{self.account}:scalingPolicy:x:policyName/{logical}"
        return f"{logical.lower()}-0123456789abcdef"

    def get_att(self, logical: str, attribute: str) -> Any:
        kind = self.template["Resources"][logical]["Type"]
        properties = self.template["Resources"][logical].get("Properties", {})
        if kind == "AWS::SQS::Queue":
            name = self.eval(properties["QueueName"])
            return {"Arn": f"arn:aws:sqs:{self.region}:{self.account}:{name}", "QueueName": name}[attribute]
        if attribute == "Arn":
            service = {
                "AWS::IAM::Role": "iam",
                "AWS::IAM::InstanceProfile": "iam",
                "AWS::KMS::Key": "kms",
                "AWS::Events::Rule": "events",
            }[kind]
            return f"arn:aws:{service}:{self.region}:{self.account}:{logical}"
        if attribute == "LatestVersionNumber":
            return "1"
        raise KeyError(f"GetAtt {logical}.{attribute} is not modelled")

    # ---- conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.eval(self.template["Conditions"][name]))
        return self._conditions[name]

    # ---- evaluation
    def eval(self, node: Any) -> Any:  # noqa: PLR0911, PLR0912 - one branch per intrinsic function
        if isinstance(node, list):
            items = [self.eval(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            evaluated = {key: self.eval(value) for key, value in node.items()}
            return {key: value for key, value in evaluated.items() if value is not NO_VALUE}
        ((key, arg),) = node.items()
        if key == "Ref":
            if arg.startswith("AWS::"):
                return self.pseudo(arg)
            if arg in self.values:
                return self.values[arg]
            return self.physical_id(arg)
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::GetAtt":
            return self.get_att(*arg)
        if key == "Fn::If":
            name, if_true, if_false = arg
            return self.eval(if_true if self.condition(name) else if_false)
        if key == "Fn::Equals":
            left, right = (self.eval(value) for value in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.eval(arg[0])
        if key == "Fn::And":
            return all(self.eval(value) for value in arg)
        if key == "Fn::Or":
            return any(self.eval(value) for value in arg)
        if key == "Fn::Join":
            separator, values = arg
            return separator.join(str(value) for value in self.eval(values))
        if key == "Fn::Split":
            separator, value = arg
            return str(self.eval(value)).split(separator)
        if key == "Fn::Select":
            index, values = arg
            return self.eval(values)[int(self.eval(index))]
        if key == "Fn::Base64":
            return base64.b64encode(str(self.eval(arg)).encode()).decode()
        if key == "Fn::Sub":
            return self.sub(arg)
        if key.startswith("Fn::"):
            raise KeyError(f"{key} is not modelled")
        return {key: self.eval(arg)}

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        local = {name: self.eval(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return str(local[name])
            if "." in name:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.eval({"Ref": name}))

        return _SUB_VARIABLE.sub(replace, text)

    def resource(self, logical: str) -> dict[str, Any]:
        """The resource's properties, evaluated (an empty dict if its condition is false)."""
        resource = self.template["Resources"][logical]
        if "Condition" in resource and not self.condition(resource["Condition"]):
            return {}
        evaluated = self.eval(resource.get("Properties", {}))
        assert isinstance(evaluated, dict)
        return evaluated

    def exists(self, logical: str) -> bool:
        resource = self.template["Resources"][logical]
        return "Condition" not in resource or self.condition(resource["Condition"])


def sub_literal_text(text: str) -> str:
    """A Fn::Sub template string as the instance sees its literal text: ``${!x}`` stands for ``${x}``."""
    return text.replace("${!", "${")


def sub_variables(text: str) -> set[str]:
    """The variables a Fn::Sub template string refers to (escaped literals left out)."""
    return {name for name in _SUB_VARIABLE.findall(text) if not name.startswith("!")}
