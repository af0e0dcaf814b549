"""provisioning/fleet.yaml read as data: the semantics that matter, pinned.

Each test reads the template (short-form tags loaded as their long forms) and, where a value depends on
parameters or conditions, evaluates it for given parameter values with tests/provisioning/cfn.py.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from app import metrics as worker_metrics
from tests.provisioning.cfn import (
    CONTRACT_OUTPUTS,
    GUIDE_DISTRIBUTION,
    GUIDE_INSTANCE_TYPES,
    TEMPLATE_PATH,
    USER_DATA_PATH,
    Evaluator,
    sub_literal_text,
    sub_variables,
)

# The contract with `filefleet fleet` (provisioning CLI): names it relies on, and the guide's defaults.
CONTRACT_DEFAULTS: dict[str, Any] = {
    "Environment": "dev",
    "ProjectTag": "CISFileSearch",
    "InstanceTypes": "t3.medium,t3a.medium,t2.medium",
    "BastionSecurityGroupId": "",
    "MinSize": 0,
    "MaxSize": 3,
    "TargetBacklogPerInstance": 30,
    "InstanceWarmup": 180,
    "OnDemandBaseCapacity": 0,
    "OnDemandPercentageAboveBaseCapacity": 30,
    "NotificationMode": "s3",
    "OpenSearchIndex": "files",
    "Embedder": "titan",
    "EmbeddingDimension": 1024,
    "BedrockModelId": "amazon.titan-embed-image-v1",
    "WorkerConcurrency": 2,
    "VisibilityTimeout": 300,
    "DrainSeconds": 90,
    "ScaleInProtection": "false",
    "LogLevel": "INFO",
    "AlarmEmail": "",
}
CONTRACT_REQUIRED = {
    "AmiId": "AWS::EC2::Image::Id",
    "VpcId": "AWS::EC2::VPC::Id",
    "SubnetIds": "List<AWS::EC2::Subnet::Id>",
    "BucketName": "String",
    "OpenSearchUrl": "String",
    "OpenSearchDomainArn": "String",
}

# The worker's own timings around a termination drain (README.md, "filefleet run"): a receive in flight is
# waited for (WAIT_TIME_SECONDS, at most 20) and the instance metadata is polled every IMDS_POLL_SECONDS (5).
LONG_POLL_SECONDS = 20
IMDS_POLL_SECONDS = 5


def _metric(node: dict[str, Any]) -> tuple[str, str, dict[str, Any], str]:
    stat = node["MetricStat"]
    metric = stat["Metric"]
    dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
    return metric["Namespace"], metric["MetricName"], dimensions, stat["Stat"]


def _eval_metric_math(expression: str, **values: float) -> float | None:
    """CloudWatch metric math for the few forms the template uses: + - * /, comparisons, AND, IF(c, a, b).

    None stands for "no data point" (what CloudWatch returns for a division by zero).
    """
    python = expression.replace(" AND ", " and ").replace(" OR ", " or ")
    python = re.sub(r"\bIF\(", "_if(", python)
    names = {"_if": lambda condition, a, b: a if condition else b, **values}
    try:
        result = eval(python, {"__builtins__": {}}, names)
    except ZeroDivisionError:
        return None
    return float(result)


# ------------------------------------------------------------------------------------------------ contract
def test_parameters_keep_the_contract_and_the_guides_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    for name, default in CONTRACT_DEFAULTS.items():
        assert name in parameters, name
        assert str(parameters[name]["Default"]) == str(default), name
    for name, kind in CONTRACT_REQUIRED.items():
        assert parameters[name]["Type"] == kind, name
        assert "Default" not in parameters[name], f"{name} must be given by the operator"
    assert parameters["NotificationMode"]["AllowedValues"] == ["s3", "eventbridge"]
    assert parameters["InstanceTypes"]["Type"] == "CommaDelimitedList"
    # Every parameter the operator can leave out has a default.
    assert {name for name, spec in parameters.items() if "Default" not in spec} == set(CONTRACT_REQUIRED)


def test_outputs_keep_the_contract(template: dict[str, Any]) -> None:
    assert set(template["Outputs"]) >= CONTRACT_OUTPUTS


def test_outputs_resolve_to_the_resources(
    evaluate: Callable[..., Evaluator], template: dict[str, Any]
) -> None:
    stack = evaluate()
    outputs = {name: stack.eval(spec["Value"]) for name, spec in template["Outputs"].items()}
    assert outputs["QueueUrl"].endswith(f"/{stack.stack_name}-files")
    assert outputs["DeadLetterQueueUrl"].endswith(f"/{stack.stack_name}-files-dlq")
    assert outputs["BucketName"] == "cis-filesearch-landing-dev"
    assert outputs["AutoScalingGroupName"] == f"{stack.stack_name}-workers"
    assert outputs["LogGroupName"] == "/aws/cis-file-processor/dev/workers"
    hook = stack.resource("WorkerGroup")["LifecycleHookSpecificationList"][0]["LifecycleHookName"]
    assert outputs["LifecycleHookName"] == hook


# ------------------------------------------------------------------------------------------------ scaling
def test_target_tracking_divides_visible_messages_by_in_service_instances(
    resources: dict[str, Any], evaluate: Callable[..., Evaluator]
) -> None:
    policy = resources["BacklogTargetTracking"]["Properties"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["AutoScalingGroupName"] == {"Ref": "WorkerGroup"}
    assert policy["EstimatedInstanceWarmup"] == {"Ref": "InstanceWarmup"}
    tracking = policy["TargetTrackingConfiguration"]
    assert tracking["TargetValue"] == {"Ref": "TargetBacklogPerInstance"}
    assert tracking.get("DisableScaleIn", False) is False
    by_id = {m["Id"]: m for m in tracking["CustomizedMetricSpecification"]["Metrics"]}
    assert set(by_id) == {"m1", "m2", "e1"}
    assert _metric(by_id["m1"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": ["FilesQueue", "QueueName"]}},
        "Sum",
    )
    assert _metric(by_id["m2"]) == (
        "AWS/AutoScaling",
        "GroupInServiceInstances",
        {"AutoScalingGroupName": {"Ref": "WorkerGroup"}},
        "Average",
    )
    assert by_id["e1"]["Expression"].replace(" ", "") == "m1/m2"
    assert [m["Id"] for m in by_id.values() if m["ReturnData"]] == ["e1"]
    stack = evaluate()
    assert stack.eval(tracking["TargetValue"]) == 30
    assert stack.eval(policy["EstimatedInstanceWarmup"]) == 180


def test_group_collects_the_metric_the_scaling_divides_by(evaluate: Callable[..., Evaluator]) -> None:
    group = evaluate().resource("WorkerGroup")
    (collection,) = group["MetricsCollection"]
    assert collection["Granularity"] == "1Minute"
    assert "GroupInServiceInstances" in collection["Metrics"]
    assert {"GroupDesiredCapacity", "GroupPendingInstances", "GroupTerminatingInstances"} <= set(
        collection["Metrics"]
    )


def test_scale_from_zero_alarm_adds_one_instance_when_messages_wait_and_none_is_in_service(
    resources: dict[str, Any],
) -> None:
    alarm = resources["ScaleFromZeroAlarm"]["Properties"]
    assert alarm["AlarmActions"] == [{"Ref": "ScaleFromZeroPolicy"}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (1, 1)
    assert alarm["TreatMissingData"] == "notBreaching"
    by_id = {m["Id"]: m for m in alarm["Metrics"]}
    # The same two series as the target tracking policy (the statistic of m2 may differ: Maximum here).
    tracking_configuration = resources["BacklogTargetTracking"]["Properties"]["TargetTrackingConfiguration"]
    tracking = {m["Id"]: m for m in tracking_configuration["CustomizedMetricSpecification"]["Metrics"]}
    for metric_id in ("m1", "m2"):
        assert _metric(by_id[metric_id])[:3] == _metric(tracking[metric_id])[:3]
        assert by_id[metric_id]["MetricStat"]["Period"] == 60
    policy = resources["ScaleFromZeroPolicy"]["Properties"]
    assert policy["PolicyType"] == "StepScaling"
    assert policy["AdjustmentType"] == "ChangeInCapacity"
    assert policy["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    assert policy["EstimatedInstanceWarmup"] == {"Ref": "InstanceWarmup"}

    alarm_expression = by_id["e1"]["Expression"]
    for visible, in_service in itertools.product([0, 1, 29, 30, 500], [0, 1, 2, 3]):
        fires = (_eval_metric_math(alarm_expression, m1=visible, m2=in_service) or 0) >= alarm["Threshold"]
        backlog = _eval_metric_math(tracking["e1"]["Expression"], m1=visible, m2=in_service)
        # Exactly one path acts on a backlog: target tracking where its metric exists, the alarm where not.
        assert fires == (visible > 0 and in_service == 0), (visible, in_service)
        if in_service == 0:
            assert backlog is None  # no data point: target tracking cannot act at 0 instances
        else:
            assert backlog == visible / in_service


def test_no_worker_in_service_alarm_tells_people_after_ten_minutes(resources: dict[str, Any]) -> None:
    alarm = resources["NoWorkerInServiceAlarm"]["Properties"]
    scale = resources["ScaleFromZeroAlarm"]["Properties"]
    assert alarm["Metrics"] == scale["Metrics"]
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (10, 10)
    assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}]


def test_dead_letter_and_oldest_message_alarms(
    resources: dict[str, Any], evaluate: Callable[..., Evaluator]
) -> None:
    dead = resources["DeadLetterAlarm"]["Properties"]
    assert (dead["Namespace"], dead["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dead["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["FilesDeadLetterQueue", "QueueName"]}}
    ]
    assert (dead["ComparisonOperator"], dead["Threshold"]) == ("GreaterThanThreshold", 0)
    oldest = resources["OldestMessageAlarm"]["Properties"]
    assert oldest["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert oldest["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["FilesQueue", "QueueName"]}}
    ]
    assert oldest["Threshold"] == {"Ref": "OldestMessageAlarmSeconds"}
    for alarm in (dead, oldest):
        assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}]
        assert alarm["TreatMissingData"] == "notBreaching"
    assert evaluate().eval(oldest["Threshold"]) == 900


# ------------------------------------------------------------------------------------------------ group
def test_mixed_instances_policy_is_the_guides(
    evaluate: Callable[..., Evaluator], template: dict[str, Any]
) -> None:
    group = evaluate().resource("WorkerGroup")
    policy = group["MixedInstancesPolicy"]
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == GUIDE_INSTANCE_TYPES
    assert policy["InstancesDistribution"] == GUIDE_DISTRIBUTION
    raw = template["Resources"]["WorkerGroup"]["Properties"]
    specification = raw["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    assert specification["Version"] == {"Fn::GetAtt": ["LaunchTemplate", "LatestVersionNumber"]}
    assert specification["LaunchTemplateId"] == {"Ref": "LaunchTemplate"}
    assert raw["AutoScalingGroupName"] == {"Fn::Sub": "${AWS::StackName}-workers"}
    assert "DesiredCapacity" not in raw, "scaling owns the desired capacity; an update must not reset it"
    assert (group["MinSize"], group["MaxSize"]) == (0, 3)
    assert group["CapacityRebalance"] is True
    assert (group["HealthCheckType"], group["HealthCheckGracePeriod"]) == ("EC2", 300)
    assert group["VPCZoneIdentifier"] == evaluate().values["SubnetIds"]


@pytest.mark.parametrize(
    "types",
    [
        ["m5.large"],
        ["t3.medium", "t3a.medium"],
        ["c5.large", "c5a.large", "c6i.large", "c6a.large", "m5.large"],
    ],
)
def test_overrides_follow_the_instance_types_parameter(
    evaluate: Callable[..., Evaluator], types: list[str]
) -> None:
    group = evaluate(InstanceTypes=",".join(types)).resource("WorkerGroup")
    assert [o["InstanceType"] for o in group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]] == types


def test_group_notifies_launches_terminations_and_their_errors(evaluate: Callable[..., Evaluator]) -> None:
    stack = evaluate()
    (notification,) = stack.resource("WorkerGroup")["NotificationConfigurations"]
    assert notification["TopicARN"] == stack.physical_id("NotificationTopic")
    assert set(notification["NotificationTypes"]) == {
        "autoscaling:EC2_INSTANCE_LAUNCH",
        "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
        "autoscaling:EC2_INSTANCE_TERMINATE",
        "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
    }


def test_termination_hook_outlasts_the_longest_drain(
    template: dict[str, Any], evaluate: Callable[..., Evaluator]
) -> None:
    (hook,) = evaluate().resource("WorkerGroup")["LifecycleHookSpecificationList"]
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert hook["DefaultResult"] == "CONTINUE"
    drain = template["Parameters"]["DrainSeconds"]
    longest_drain = drain["MaxValue"]
    assert hook["HeartbeatTimeout"] >= longest_drain + LONG_POLL_SECONDS + IMDS_POLL_SECONDS + 30
    assert drain["Default"] <= longest_drain < 120, "the drain must fit inside the 120 s Spot notice"
    # The worker is told the same hook name the group has.
    user_data_names = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    assert user_data_names["Fn::Base64"]["Fn::Sub"][1]["LifecycleHookName"] == hook["LifecycleHookName"]


# ------------------------------------------------------------------------------------------------ instances
def test_launch_template_requires_imdsv2_with_hop_limit_1(evaluate: Callable[..., Evaluator]) -> None:
    data = evaluate().resource("LaunchTemplate")["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert data["MetadataOptions"]["HttpEndpoint"] == "enabled"
    assert data["Monitoring"] == {"Enabled": True}
    assert data["ImageId"] == "ami-0123456789abcdef0"
    (interface,) = data["NetworkInterfaces"]
    assert interface["AssociatePublicIpAddress"] is False
    tags = {t["Key"]: t["Value"] for spec in data["TagSpecifications"] for t in spec["Tags"]}
    assert tags == {
        "Name": "cis-file-processor-worker",
        "Project": "CISFileSearch",
        "Environment": "dev",
        "Component": "Worker",
        "ManagedBy": "AutoScaling",
    }


def test_user_data_is_the_packer_file_verbatim(template: dict[str, Any]) -> None:
    data = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    text, variables = data["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert sub_literal_text(text) == USER_DATA_PATH.read_text(encoding="utf-8")
    known = set(template["Parameters"]) | set(template["Resources"]) | set(variables)
    unknown = {name for name in sub_variables(text) if name not in known and not name.startswith("AWS::")}
    assert not unknown, f"user data refers to names the template does not define: {unknown}"
    assert (
        variables["AutoScalingGroupName"]
        == template["Resources"]["WorkerGroup"]["Properties"]["AutoScalingGroupName"]
    )


def test_user_data_renders_the_workers_environment(evaluate: Callable[..., Evaluator]) -> None:
    stack = evaluate(Embedder="local", ScaleInProtection="true")
    text = base64.b64decode(stack.resource("LaunchTemplate")["LaunchTemplateData"]["UserData"]).decode()
    environment = dict(
        line.strip().split("=", 1) for line in text.splitlines() if re.match(r"^\s+[A-Z][A-Z0-9_]*=", line)
    )
    assert environment == {
        "AWS_REGION": "ap-northeast-1",
        "SQS_QUEUE_URL": "https://sqs.ap-northeast-1.amazonaws.com/123456789012/ff-test-files",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.ap-northeast-1.amazonaws.com/123456789012/ff-test-files-dlq",
        "S3_BUCKET": "cis-filesearch-landing-dev",
        "OPENSEARCH_URL": "https://search-files-abc.ap-northeast-1.es.amazonaws.com",
        "OPENSEARCH_INDEX": "files",
        "EMBEDDER": "local",
        "EMBEDDING_DIMENSION": "1024",
        "BEDROCK_MODEL_ID": "amazon.titan-embed-image-v1",
        "WORKER_CONCURRENCY": "2",
        "VISIBILITY_TIMEOUT": "300",
        "DRAIN_SECONDS": "90",
        "AUTOSCALING_GROUP_NAME": "ff-test-workers",
        "LIFECYCLE_HOOK_NAME": "filefleet-drain",
        "SCALE_IN_PROTECTION": "true",
        "LOG_LEVEL": "INFO",
    }
    assert "${" not in text.split("write_files:")[1], "every reference is filled in"


# ------------------------------------------------------------------------------------------------ encryption
def test_everything_at_rest_is_encrypted(
    evaluate: Callable[..., Evaluator], resources: dict[str, Any]
) -> None:
    stack = evaluate()
    (volume,) = stack.resource("LaunchTemplate")["LaunchTemplateData"]["BlockDeviceMappings"]
    assert volume["DeviceName"] == "/dev/xvda"
    assert volume["Ebs"] == {
        "VolumeType": "gp3",
        "VolumeSize": 20,
        "Iops": 3000,
        "Throughput": 125,
        "Encrypted": True,
        "DeleteOnTermination": True,
    }
    for queue in ("FilesQueue", "FilesDeadLetterQueue"):
        assert stack.resource(queue)["SqsManagedSseEnabled"] is True
    bucket = stack.resource("LandingBucket")
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert resources["NotificationTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "FleetKey"}
    assert resources["WorkerLogGroup"]["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["FleetKey", "Arn"]}
    assert stack.resource("FleetKey")["EnableKeyRotation"] is True


def test_key_lets_cloudwatch_auto_scaling_and_logs_use_it_and_nobody_else(
    evaluate: Callable[..., Evaluator],
) -> None:
    stack = evaluate()
    statements = {s["Sid"]: s for s in stack.resource("FleetKey")["KeyPolicy"]["Statement"]}
    wildcard = statements["AutoScalingPublishesToTheTopic"]
    assert wildcard["Principal"] == {"AWS": "*"}
    assert wildcard["Condition"]["StringEquals"]["aws:PrincipalArn"] == (
        "arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    )
    assert wildcard["Condition"]["StringEquals"]["kms:ViaService"] == "sns.ap-northeast-1.amazonaws.com"
    logs = statements["CloudWatchLogsEncryptsTheWorkerLogGroup"]
    encrypted = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    assert [arn.rsplit(":log-group:", 1)[1] for arn in encrypted] == [
        stack.physical_id("WorkerLogGroup"),
        stack.physical_id("WorkerMetricsLogGroup"),
    ]
    for sid, statement in statements.items():
        if sid != "AccountAdministersTheKey":
            assert set(statement["Action"]) <= {
                "kms:Decrypt",
                "kms:GenerateDataKey*",
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:Describe*",
            }, sid


# ------------------------------------------------------------------------------------------------ network
def test_security_group_allows_https_out_only_and_nothing_in(
    evaluate: Callable[..., Evaluator], resources: dict[str, Any]
) -> None:
    stack = evaluate()
    group = stack.resource("WorkerSecurityGroup")
    (egress,) = group["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"], egress["CidrIp"]) == (
        "tcp",
        443,
        443,
        "0.0.0.0/0",
    )
    assert "SecurityGroupIngress" not in group
    ingress_resources = [
        name
        for name, r in resources.items()
        if r["Type"] in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")
    ]
    assert ingress_resources == ["BastionSshIngress"]
    assert not stack.exists("BastionSshIngress"), "no bastion given: no inbound rule at all"


def test_ssh_only_from_the_bastion_when_one_is_given(evaluate: Callable[..., Evaluator]) -> None:
    stack = evaluate(BastionSecurityGroupId="sg-0bastion0000000")
    assert stack.exists("BastionSshIngress")
    ingress = stack.resource("BastionSshIngress")
    assert (ingress["IpProtocol"], ingress["FromPort"], ingress["ToPort"]) == ("tcp", 22, 22)
    assert ingress["SourceSecurityGroupId"] == "sg-0bastion0000000"
    assert "CidrIp" not in ingress and "CidrIpv6" not in ingress


# ---------------------------------------------------------------------------------------- queues and events
def test_queue_has_a_redrive_policy_retention_and_room_for_s3_events(
    evaluate: Callable[..., Evaluator],
) -> None:
    stack = evaluate()
    queue = stack.resource("FilesQueue")
    dead_letter = stack.resource("FilesDeadLetterQueue")
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": stack.get_att("FilesDeadLetterQueue", "Arn"),
        "maxReceiveCount": 5,
    }
    assert dead_letter["RedriveAllowPolicy"] == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [stack.get_att("FilesQueue", "Arn")],
    }
    assert queue["VisibilityTimeout"] == 300
    assert queue["MessageRetentionPeriod"] == dead_letter["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["MaximumMessageSize"] == 262144
    assert queue["ReceiveMessageWaitTimeSeconds"] == 20


def test_s3_mode_sends_bucket_events_to_the_queue_without_a_cycle(
    evaluate: Callable[..., Evaluator], resources: dict[str, Any]
) -> None:
    stack = evaluate()
    bucket = stack.resource("LandingBucket")
    configurations = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert {c["Event"] for c in configurations} == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    assert {c["Queue"] for c in configurations} == {stack.get_att("FilesQueue", "Arn")}
    assert all("Filter" not in c for c in configurations)
    assert resources["LandingBucket"]["DependsOn"] == "FilesQueuePolicy"
    (allow, deny) = stack.resource("FilesQueuePolicy")["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"] == "arn:aws:s3:::cis-filesearch-landing-dev"
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    # The policy names the bucket by its name, never by a Ref to it: that would be circular.
    assert "LandingBucket" not in json.dumps(resources["FilesQueuePolicy"])
    assert not stack.exists("FilesEventRule")


def test_s3_mode_filters_by_prefix_when_given(evaluate: Callable[..., Evaluator]) -> None:
    stack = evaluate(ObjectKeyPrefix="incoming/")
    for configuration in stack.resource("LandingBucket")["NotificationConfiguration"]["QueueConfigurations"]:
        assert configuration["Filter"] == {"S3Key": {"Rules": [{"Name": "prefix", "Value": "incoming/"}]}}
    statements = {
        s["Sid"]: s for s in stack.resource("WorkerRole")["Policies"][0]["PolicyDocument"]["Statement"]
    }
    assert statements["ReadLandedObjects"]["Resource"] == "arn:aws:s3:::cis-filesearch-landing-dev/incoming/*"


def test_eventbridge_mode_routes_object_events_through_a_rule(evaluate: Callable[..., Evaluator]) -> None:
    stack = evaluate(NotificationMode="eventbridge", ObjectKeyPrefix="incoming/")
    bucket = stack.resource("LandingBucket")
    assert bucket["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    rule = stack.resource("FilesEventRule")
    assert rule["EventPattern"]["source"] == ["aws.s3"]
    assert rule["EventPattern"]["detail-type"] == ["Object Created", "Object Deleted"]
    assert rule["EventPattern"]["detail"]["bucket"] == {"name": ["cis-filesearch-landing-dev"]}
    assert rule["EventPattern"]["detail"]["object"] == {"key": [{"prefix": "incoming/"}]}
    assert "Lifecycle Expiration" not in rule["EventPattern"]["detail"]["reason"]
    (target,) = rule["Targets"]
    assert target["Arn"] == stack.get_att("FilesQueue", "Arn")
    assert target["DeadLetterConfig"]["Arn"] == stack.get_att("FilesDeadLetterQueue", "Arn")
    rule_arn = f"arn:aws:events:ap-northeast-1:123456789012:rule/{rule['Name']}"
    allow = stack.resource("FilesQueuePolicy")["PolicyDocument"]["Statement"][0]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
    dead_letter_allow = stack.resource("FilesDeadLetterQueuePolicy")["PolicyDocument"]["Statement"][0]
    assert dead_letter_allow["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}


def test_bucket_keeps_versions_for_a_while_and_survives_the_stack(
    evaluate: Callable[..., Evaluator], resources: dict[str, Any]
) -> None:
    bucket = evaluate().resource("LandingBucket")
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert (
        resources["LandingBucket"]["DeletionPolicy"],
        resources["LandingBucket"]["UpdateReplacePolicy"],
    ) == ("Retain", "Retain")


# ------------------------------------------------------------------------------------------------ IAM
REQUIRED_DOMAIN = "arn:aws:es:ap-northeast-1:123456789012:domain/files"
ACTIONS_WITHOUT_RESOURCE_LEVEL = {"autoscaling:DescribeLifecycleHooks", "cloudwatch:PutMetricData"}


def _worker_statements(stack: Evaluator) -> list[dict[str, Any]]:
    statements = list(stack.resource("WorkerRole")["Policies"][0]["PolicyDocument"]["Statement"])
    if stack.exists("WorkerBedrockPolicy"):
        statements += stack.resource("WorkerBedrockPolicy")["PolicyDocument"]["Statement"]
    return statements


def test_worker_role_is_scoped_to_this_stacks_resources(evaluate: Callable[..., Evaluator]) -> None:
    stack = evaluate()
    grants: dict[str, set[str]] = {}
    for statement in _worker_statements(stack):
        assert statement["Effect"] == "Allow"
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        targets = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        for action in actions:
            assert "*" not in action, f"no wildcard action: {action}"
            grants.setdefault(action, set()).update(targets)
            if "*" in targets:
                assert action in ACTIONS_WITHOUT_RESOURCE_LEVEL, action
    queue, dead_letter = stack.get_att("FilesQueue", "Arn"), stack.get_att("FilesDeadLetterQueue", "Arn")
    group = "arn:aws:autoscaling:ap-northeast-1:123456789012:autoScalingGroup:*:autoScalingGroupName/" + (
        "ff-test-workers"
    )
    log_group = "arn:aws:logs:ap-northeast-1:123456789012:log-group:/aws/cis-file-processor/dev/workers"
    metrics_group = (
        "arn:aws:logs:ap-northeast-1:123456789012:log-group:/aws/cis-file-processor/dev/worker-metrics"
    )
    log_groups = {log_group, f"{log_group}:*", metrics_group, f"{metrics_group}:*"}
    assert grants == {
        "sqs:ReceiveMessage": {queue},
        "sqs:DeleteMessage": {queue},
        "sqs:ChangeMessageVisibility": {queue},
        "sqs:GetQueueAttributes": {queue, dead_letter},
        "sqs:GetQueueUrl": {queue, dead_letter},
        "sqs:SendMessage": {dead_letter},
        "s3:GetObject": {"arn:aws:s3:::cis-filesearch-landing-dev/*"},
        "s3:GetObjectVersion": {"arn:aws:s3:::cis-filesearch-landing-dev/*"},
        "s3:ListBucket": {"arn:aws:s3:::cis-filesearch-landing-dev"},
        "bedrock:InvokeModel": {
            "arn:aws:bedrock:ap-northeast-1::foundation-model/amazon.titan-embed-image-v1"
        },
        "es:ESHttpGet": {REQUIRED_DOMAIN, f"{REQUIRED_DOMAIN}/*"},
        "es:ESHttpHead": {REQUIRED_DOMAIN, f"{REQUIRED_DOMAIN}/*"},
        "es:ESHttpPost": {REQUIRED_DOMAIN, f"{REQUIRED_DOMAIN}/*"},
        "es:ESHttpPut": {REQUIRED_DOMAIN, f"{REQUIRED_DOMAIN}/*"},
        "cloudwatch:PutMetricData": {"*"},
        "logs:CreateLogStream": log_groups,
        "logs:DescribeLogStreams": log_groups,
        "logs:PutLogEvents": log_groups,
        "autoscaling:DescribeLifecycleHooks": {"*"},
        "autoscaling:RecordLifecycleActionHeartbeat": {group},
        "autoscaling:CompleteLifecycleAction": {group},
        "autoscaling:SetInstanceProtection": {group},
    }
    (metrics,) = [s for s in _worker_statements(stack) if s["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "CISFileProcessor"}}


def test_no_bedrock_permission_without_the_titan_embedder(evaluate: Callable[..., Evaluator]) -> None:
    stack = evaluate(Embedder="local")
    assert not stack.exists("WorkerBedrockPolicy")
    assert not any("bedrock" in json.dumps(s) for s in _worker_statements(stack))


def test_session_manager_is_a_choice(evaluate: Callable[..., Evaluator]) -> None:
    assert evaluate().resource("WorkerRole")["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
    ]
    assert evaluate(EnableSessionManager="false").resource("WorkerRole")["ManagedPolicyArns"] == []


# ------------------------------------------------------------------------------------------------ dashboard
def _worker_metric_types() -> dict[str, str]:
    """Exposed name → type for every metric the worker defines (counters are exposed with _total)."""
    found = {}
    for value in vars(worker_metrics).values():
        if isinstance(value, MetricWrapperBase):
            kind = value._type
            found[value._name + ("_total" if kind == "counter" else "")] = kind
    return found


def test_dashboard_has_the_guides_widgets_and_the_workers_metrics(evaluate: Callable[..., Evaluator]) -> None:
    stack = evaluate()
    dashboard = stack.resource("Dashboard")
    assert dashboard["DashboardName"] == "ff-test-fleet"
    body = json.loads(dashboard["DashboardBody"])
    titles = {w["properties"]["title"]: w for w in body["widgets"]}
    capacity = json.dumps(titles["ASG capacity"]["properties"]["metrics"])
    assert (
        "GroupDesiredCapacity" in capacity
        and "GroupInServiceInstances" in capacity
        and "ff-test-workers" in capacity
    )
    depth = json.dumps(titles["SQS queue depth"]["properties"]["metrics"])
    assert "ApproximateNumberOfMessagesVisible" in depth and "ff-test-files-dlq" in depth
    backlog = titles["Backlog per instance (the scaling metric)"]["properties"]
    assert backlog["annotations"]["horizontal"][0]["value"] == 30
    searched = set(re.findall(r'MetricName=\\?"(filefleet_[a-z_]+)\\?"', json.dumps(body)))
    assert len(searched) >= 6
    assert all(
        'Namespace=\\"CISFileProcessor\\"' in json.dumps(w)
        for w in body["widgets"]
        if "SEARCH(" in json.dumps(w)
    )
    types = _worker_metric_types()
    for name in searched:
        assert name in types, f"the dashboard shows {name}, which the worker does not export"
        # The CloudWatch agent drops Prometheus histograms: a dashboard widget on one would stay empty.
        assert types[name] in ("counter", "gauge"), name
    (log_widget,) = [w for w in body["widgets"] if w["type"] == "log"]
    assert "SOURCE '/aws/cis-file-processor/dev/workers'" in log_widget["properties"]["query"]


def test_template_is_plain_yaml_with_no_tabs() -> None:
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert "\t" not in text
    assert text.endswith("\n")


def test_every_parameter_is_in_a_console_group(template: dict[str, Any]) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])
