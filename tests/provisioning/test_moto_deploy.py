"""provisioning/fleet.yaml deployed to moto server's CloudFormation over real HTTP on 127.0.0.1.

What moto does with this template (moto 5.2, measured): it creates the queues (redrive, SSE, retention),
the bucket (kept on delete: DeletionPolicy Retain), the KMS key and alias, the topic (with its key), the log
group, the IAM role, its policies and instance profile, the security group, the launch template, the Auto
Scaling group with its mixed instances policy, the EventBridge rule and the dashboard; it resolves every
output. It skips queue and bucket
policies, scaling policies, alarms and SNS subscriptions (the first four with "No Moto CloudFormation
support" in its log, the last silently), and ignores the group's lifecycle
hook, metrics collection and capacity rebalancing, the bucket's versioning and notification configuration and
the security group's egress rules: tests/provisioning/test_template.py pins those in the template instead.
It does not split a CommaDelimitedList *default* (Ref gives the raw string), so InstanceTypes is passed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.provisioning.cfn import CONTRACT_OUTPUTS, GUIDE_DISTRIBUTION, GUIDE_INSTANCE_TYPES, TEMPLATE_PATH

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@dataclass
class Cloud:
    endpoint: str

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)


@dataclass
class Network:
    vpc_id: str
    subnet_ids: list[str]
    ami_id: str


@pytest.fixture
def cloud(moto_endpoint: str) -> Cloud:
    return Cloud(moto_endpoint)


@pytest.fixture
def network(cloud: Cloud) -> Network:
    ec2 = cloud.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{n}.0/24", AvailabilityZone=f"{REGION}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for n, zone in ((1, "a"), (2, "b"))
    ]
    ami_id = ec2.describe_images()["Images"][0]["ImageId"]  # one of the AMIs moto knows
    return Network(vpc_id=vpc_id, subnet_ids=subnet_ids, ami_id=ami_id)


@dataclass
class Stack:
    name: str
    bucket: str
    outputs: dict[str, str]
    status: str


@pytest.fixture
def deploy(cloud: Cloud, network: Network) -> Iterator[Any]:
    cloudformation = cloud.client("cloudformation")
    created: list[str] = []

    def deploy_stack(**overrides: str) -> Stack:
        name = f"ff-{uuid.uuid4().hex[:8]}"
        bucket = f"{name}-landing"
        parameters = {
            "AmiId": network.ami_id,
            "VpcId": network.vpc_id,
            "SubnetIds": ",".join(network.subnet_ids),
            "BucketName": bucket,
            "OpenSearchUrl": "https://search-files-abc.us-east-1.es.amazonaws.com",
            "OpenSearchDomainArn": "arn:aws:es:us-east-1:123456789012:domain/files",
            "InstanceTypes": "t3.medium,t3a.medium,t2.medium",
            **overrides,
        }
        cloudformation.create_stack(
            StackName=name,
            TemplateBody=TEMPLATE_PATH.read_text(encoding="utf-8"),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],  # the role is unnamed: CAPABILITY_NAMED_IAM is not needed
        )
        created.append(name)
        described = _settled(cloudformation, name)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        return Stack(name=name, bucket=bucket, outputs=outputs, status=described["StackStatus"])

    yield deploy_stack
    for name in created:
        with contextlib.suppress(ClientError):
            cloudformation.delete_stack(StackName=name)


def _moto_url(sqs: Any, url: str) -> str:
    """The queue URL moto answers to, for the AWS-style URL a stack output gives."""
    return str(sqs.get_queue_url(QueueName=url.rsplit("/", 1)[1])["QueueUrl"])


def _settled(cloudformation: Any, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        described: dict[str, Any] = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        if not described["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return described
        time.sleep(0.2)


def test_deploys_with_the_guides_defaults_and_every_output_resolves(cloud: Cloud, deploy: Any) -> None:
    stack = deploy()
    assert stack.status == "CREATE_COMPLETE"
    assert set(stack.outputs) >= CONTRACT_OUTPUTS
    outputs = stack.outputs

    # Queues: the redrive, retention, SSE and visibility the workers rely on.
    sqs = cloud.client("sqs")
    # Outputs carry AWS-style URLs (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME); moto's API answers with
    # its own endpoint. The account and name are what identify the queue.
    for output, name in (
        ("QueueUrl", f"{stack.name}-files"),
        ("DeadLetterQueueUrl", f"{stack.name}-files-dlq"),
    ):
        assert outputs[output] == f"https://sqs.{REGION}.amazonaws.com/123456789012/{name}"
        assert sqs.get_queue_url(QueueName=name)["QueueUrl"].endswith(f"/123456789012/{name}")
    queue = sqs.get_queue_attributes(QueueUrl=_moto_url(sqs, outputs["QueueUrl"]), AttributeNames=["All"])[
        "Attributes"
    ]
    dead_letter = sqs.get_queue_attributes(
        QueueUrl=_moto_url(sqs, outputs["DeadLetterQueueUrl"]), AttributeNames=["All"]
    )["Attributes"]
    assert json.loads(queue["RedrivePolicy"]) == {
        "deadLetterTargetArn": dead_letter["QueueArn"],
        "maxReceiveCount": 5,
    }
    assert (queue["VisibilityTimeout"], queue["MessageRetentionPeriod"]) == ("300", "1209600")
    assert (queue["MaximumMessageSize"], queue["ReceiveMessageWaitTimeSeconds"]) == ("262144", "20")
    assert queue["SqsManagedSseEnabled"] == dead_letter["SqsManagedSseEnabled"] == "true"
    assert dead_letter["MessageRetentionPeriod"] == "1209600"

    # The bucket, the log group, the topic.
    assert outputs["BucketName"] == stack.bucket
    cloud.client("s3").head_bucket(Bucket=stack.bucket)
    (log_group,) = cloud.client("logs").describe_log_groups(logGroupNamePrefix=outputs["LogGroupName"])[
        "logGroups"
    ]
    assert (log_group["logGroupName"], log_group["retentionInDays"]) == (
        "/aws/cis-file-processor/dev/workers",
        30,
    )
    topic = cloud.client("sns").get_topic_attributes(TopicArn=outputs["NotificationTopicArn"])["Attributes"]
    assert topic["KmsMasterKeyId"], "the topic is encrypted with the stack's key"

    # The role, its two policies (Bedrock with the titan embedder) and the instance profile.
    iam = cloud.client("iam")
    role_name = outputs["WorkerRoleArn"].rsplit("/", 1)[1]
    assert iam.get_role(RoleName=role_name)["Role"]["Arn"] == outputs["WorkerRoleArn"]
    assert set(iam.list_role_policies(RoleName=role_name)["PolicyNames"]) == {
        "filefleet-worker",
        "filefleet-worker-bedrock",
    }
    worker_policy = iam.get_role_policy(RoleName=role_name, PolicyName="filefleet-worker")["PolicyDocument"]
    # (moto keeps a policy from CloudFormation as the text of a Python dict: read it as text.)
    resources = worker_policy if isinstance(worker_policy, str) else json.dumps(worker_policy)
    assert dead_letter["QueueArn"] in resources and f"arn:aws:s3:::{stack.bucket}/*" in resources

    # The launch template: the AMI, IMDSv2, the encrypted volume, the user data filled in.
    ec2 = cloud.client("ec2")
    (version,) = ec2.describe_launch_template_versions(LaunchTemplateId=outputs["LaunchTemplateId"])[
        "LaunchTemplateVersions"
    ]
    data = version["LaunchTemplateData"]
    assert data["ImageId"] == ec2.describe_images()["Images"][0]["ImageId"]
    assert (data["MetadataOptions"]["HttpTokens"], data["MetadataOptions"]["HttpPutResponseHopLimit"]) == (
        "required",
        1,
    )
    assert data["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    profile_name = data["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1]
    profile = iam.get_instance_profile(InstanceProfileName=profile_name)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [role_name]
    user_data = base64.b64decode(data["UserData"]).decode()
    assert f"SQS_QUEUE_URL={outputs['QueueUrl']}\n" in user_data
    assert f"DEAD_LETTER_QUEUE_URL={outputs['DeadLetterQueueUrl']}\n" in user_data
    assert f"AUTOSCALING_GROUP_NAME={outputs['AutoScalingGroupName']}\n" in user_data
    assert f"LIFECYCLE_HOOK_NAME={outputs['LifecycleHookName']}\n" in user_data
    assert "${" not in user_data.split("write_files:")[1]

    # The group: its name, size, health check and mixed instances policy on the template's latest version.
    (group,) = cloud.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[outputs["AutoScalingGroupName"]]
    )["AutoScalingGroups"]
    assert group["AutoScalingGroupName"] == f"{stack.name}-workers"
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 3, 0)
    assert (group["HealthCheckType"], group["HealthCheckGracePeriod"]) == ("EC2", 300)
    assert sorted(group["VPCZoneIdentifier"].split(",")) == sorted(
        s["SubnetId"]
        for s in ec2.describe_subnets(SubnetIds=group["VPCZoneIdentifier"].split(","))["Subnets"]
    )
    policy = group["MixedInstancesPolicy"]
    specification = policy["LaunchTemplate"]["LaunchTemplateSpecification"]
    assert specification["LaunchTemplateId"] == outputs["LaunchTemplateId"]
    assert str(specification["Version"]) == str(version["VersionNumber"])
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == GUIDE_INSTANCE_TYPES
    assert policy["InstancesDistribution"] == GUIDE_DISTRIBUTION

    # The dashboard.
    dashboard = cloud.client("cloudwatch").get_dashboard(DashboardName=outputs["DashboardName"])
    titles = {w["properties"]["title"] for w in json.loads(dashboard["DashboardBody"])["widgets"]}
    assert {"ASG capacity", "SQS queue depth"} <= titles


def test_eventbridge_mode_with_a_bastion_an_email_and_one_instance_type(
    cloud: Cloud, network: Network, deploy: Any
) -> None:
    ec2 = cloud.client("ec2")
    bastion = ec2.create_security_group(
        GroupName=f"bastion-{uuid.uuid4().hex[:6]}", Description="bastion", VpcId=network.vpc_id
    )["GroupId"]
    stack = deploy(
        NotificationMode="eventbridge",
        Embedder="local",
        BastionSecurityGroupId=bastion,
        AlarmEmail="ops@example.com",
        ObjectKeyPrefix="incoming/",
        InstanceTypes="m5.large",
    )
    assert stack.status == "CREATE_COMPLETE"
    outputs = stack.outputs
    role_name = outputs["WorkerRoleArn"].rsplit("/", 1)[1]
    assert cloud.client("iam").list_role_policies(RoleName=role_name)["PolicyNames"] == ["filefleet-worker"]
    events = cloud.client("events")
    (target,) = events.list_targets_by_rule(Rule=f"{stack.name}-files")["Targets"]
    sqs = cloud.client("sqs")
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=_moto_url(sqs, outputs["QueueUrl"]), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert target["Arn"] == queue_arn
    pattern = json.loads(events.describe_rule(Name=f"{stack.name}-files")["EventPattern"])
    assert pattern["detail"]["bucket"]["name"] == [stack.bucket]
    # (moto has no CloudFormation support for AWS::SNS::Subscription: the email subscription is pinned in
    # test_template.py only.)
    (group,) = cloud.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[outputs["AutoScalingGroupName"]]
    )["AutoScalingGroups"]
    assert [o["InstanceType"] for o in group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]] == [
        "m5.large"
    ]


def test_delete_removes_the_fleet_and_keeps_the_bucket(cloud: Cloud, deploy: Any) -> None:
    stack = deploy()
    assert stack.status == "CREATE_COMPLETE"
    cloudformation = cloud.client("cloudformation")
    cloudformation.delete_stack(StackName=stack.name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status = cloudformation.describe_stacks(StackName=stack.name)["Stacks"][0]["StackStatus"]
        except ClientError:
            break  # moto forgets a deleted stack at once
        if status == "DELETE_COMPLETE":
            break
        time.sleep(0.2)
    sqs = cloud.client("sqs")
    for queue in (f"{stack.name}-files", f"{stack.name}-files-dlq"):
        with pytest.raises(ClientError):
            sqs.get_queue_url(QueueName=queue)
    groups = cloud.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[stack.outputs["AutoScalingGroupName"]]
    )["AutoScalingGroups"]
    assert groups == []
    cloud.client("s3").head_bucket(Bucket=stack.bucket)  # DeletionPolicy Retain: the files outlive the fleet
