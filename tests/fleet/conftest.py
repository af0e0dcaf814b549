"""Fixtures for the fleet CLI: moto server's CloudFormation over real HTTP, Stubber where moto stops.

What moto does and does not do here (moto 5.2, measured; see test names for what each test relies on):

* a stack made by CreateChangeSet + ExecuteChangeSet never gets its Outputs resolved (getmoto/moto#3032's
  family; the stack is created with an empty template, the change set's one is applied later). A stack made
  by CreateStack does get them, so tests that need outputs (status, rollout, destroy) stand their stack up
  with CreateStack, which is what `deployed_stack` does;
* a parameter-only change set lists no resource changes (moto diffs template JSON only); a template edit does;
* updating a stack re-creates moto's Auto Scaling group under a new name while the output keeps the old one;
* StartInstanceRefresh, DescribeInstanceRefreshes and RollbackInstanceRefresh answer HTTP 500: those calls
  are checked with botocore's Stubber, which validates parameters and responses against the API model.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from provisioning.fleet.aws import FleetAws
from provisioning.fleet.cli import main
from provisioning.fleet.polling import Polling

REGION = "us-east-1"
TEST_TEMPLATE = Path(__file__).with_name("fleet-test.yaml")
FAST = Polling(interval=0.01, timeout=15)


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 (ours and the code's) at moto server through boto3's own AWS_ENDPOINT_URL."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@dataclass
class Cloud:
    cloudformation: Any
    ec2: Any
    sqs: Any
    autoscaling: Any
    cloudwatch: Any

    def amis(self) -> tuple[str, str]:
        """Two fresh worker AMIs, as a Packer build makes them (moto's catalogue takes seconds to list)."""
        return self.register_ami(), self.register_ami()

    def register_ami(self) -> str:
        image = self.ec2.register_image(
            Name=f"filefleet-worker-{uuid.uuid4().hex[:8]}",
            Architecture="x86_64",
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
        )
        return str(image["ImageId"])

    def outputs(self, stack_name: str) -> dict[str, str]:
        stack = self.cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def parameters(self, stack_name: str) -> dict[str, str]:
        stack = self.cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}

    def stack_status(self, stack_name: str) -> str | None:
        for summary in self.cloudformation.list_stacks()["StackSummaries"]:
            if summary["StackName"] == stack_name and summary["StackStatus"] != "DELETE_COMPLETE":
                return str(summary["StackStatus"])
        return None


@pytest.fixture
def cloud(aws: str) -> Cloud:
    return Cloud(
        cloudformation=boto3.client("cloudformation", region_name=REGION),
        ec2=boto3.client("ec2", region_name=REGION),
        sqs=boto3.client("sqs", region_name=REGION),
        autoscaling=boto3.client("autoscaling", region_name=REGION),
        cloudwatch=boto3.client("cloudwatch", region_name=REGION),
    )


@pytest.fixture
def stack_name() -> str:
    return f"fleet-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def deployed_stack(cloud: Cloud, stack_name: str) -> str:
    """A stack from the test template, made with CreateStack so that moto resolves its outputs."""
    ami, _ = cloud.amis()
    cloud.cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=TEST_TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": "AmiId", "ParameterValue": ami}],
        Capabilities=["CAPABILITY_IAM"],
    )
    return stack_name


@dataclass
class Result:
    code: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def run_fleet(capsys: pytest.CaptureFixture[str]) -> Run:
    """`filefleet fleet ARGS...` in process, fast polling; ``clients`` replaces some boto3 clients."""

    def run(*argv: str, clients: dict[str, Any] | None = None) -> Result:
        def connect(args: Any) -> FleetAws:
            aws = FleetAws.connect(profile=args.profile, region=args.region)
            return FleetAws(aws.session, clients=clients) if clients else aws

        code = main(["fleet", *argv], connect=connect, polling=FAST)
        captured = capsys.readouterr()
        return Result(code=code, out=captured.out, err=captured.err)

    return run


@contextmanager
def stubbed(service: str) -> Iterator[tuple[Any, Stubber]]:
    """A real boto3 client of ``service`` behind botocore's Stubber (calls and answers checked against the
    API model) for what moto does not implement; every answer a test queues must have been asked for."""
    client = boto3.client(service, region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()
