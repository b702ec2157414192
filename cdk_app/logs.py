"""Log groups: the ones the stack names and owns, and the ones AWS names and writes.

A group whose name the stack chooses (or lets CloudFormation choose) is an ordinary
AWS::Logs::LogGroup. A group whose name is fixed by an AWS service that writes to it (EKS
control-plane logs, Container Insights) cannot be: the writer creates it whenever it writes and
the group is missing, so a group recreated after `cdk destroy` makes the next deploy fail with
"already exists". Those are adopted instead: created if absent, given our retention, deleted
with the stack, and an existing one is taken over rather than an error.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack, Token
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from cdk_app import nag
from cdk_app.config import LOG_RETENTION_DAYS

# CloudWatch's retention choices, in the same order as aws_cdk's RetentionDays (INFINITE last).
RETENTION = dict(zip(LOG_RETENTION_DAYS, list(logs.RetentionDays)[:-1], strict=True))


def retained_logs(scope: Construct, id: str, retention_days: int) -> logs.LogGroup:
    """A log group the stack owns, named by CloudFormation: explicit retention, deleted with the stack."""
    return logs.LogGroup(scope, id, retention=RETENTION[retention_days], removal_policy=RemovalPolicy.DESTROY)


class AdoptedLogGroup(Construct):
    """A log group with a name an AWS service fixes and writes to (see the module docstring).

    Make the writer depend on this construct: the group then exists, with its retention, before
    the writer starts, and is deleted only after the writer is gone.
    """

    def __init__(self, scope: Construct, id: str, *, name: str, retention_days: int) -> None:
        super().__init__(scope, id)
        self.log_group_name = name
        stack = Stack.of(self)
        arn = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{name}"
        policy = cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[arn, f"{arn}:*"])
        group = {"logGroupName": name}
        create = cr.AwsSdkCall(
            service="CloudWatchLogs",
            action="createLogGroup",
            parameters=group,
            physical_resource_id=cr.PhysicalResourceId.of(name),
            ignore_error_codes_matching="ResourceAlreadyExistsException",  # adopt a leftover
        )
        self.group = cr.AwsCustomResource(
            self,
            "Group",
            resource_type="Custom::AdoptedLogGroup",
            on_create=create,
            # A new name is a new group: a new physical id, so CloudFormation deletes the old one.
            on_update=create,
            on_delete=cr.AwsSdkCall(
                service="CloudWatchLogs",
                action="deleteLogGroup",
                parameters=group,
                ignore_error_codes_matching="ResourceNotFoundException",
            ),
            policy=policy,
            install_latest_aws_sdk=False,
        )
        set_retention = cr.AwsSdkCall(
            service="CloudWatchLogs",
            action="putRetentionPolicy",
            parameters={**group, "retentionInDays": retention_days},
            physical_resource_id=cr.PhysicalResourceId.of(f"{name}:retention"),
        )
        self.retention = cr.AwsCustomResource(
            self,
            "Retention",
            resource_type="Custom::LogGroupRetention",
            on_create=set_retention,
            on_update=set_retention,
            policy=policy,
            install_latest_aws_sdk=False,
        )
        self.retention.node.add_dependency(self.group)
        nag.acknowledge_aws_custom_resource_provider(stack)
        # cdk-nag spells the region as written: a token, or the name when the stack is pinned.
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        nag.acknowledge(
            self,
            f"IAM5[Resource::arn:<AWS::Partition>:logs:{region}:<AWS::AccountId>:log-group:{name}:*]",
            "CloudWatch Logs' documented ARN for a log group ends in ':*'; this names one group only.",
        )
