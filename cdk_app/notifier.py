"""The notifier (notifier/): a Lambda subscribed to the alert topic that posts each alarm to the
alertChannels destinations, reading their URLs and keys at run time from the secrets they name.

Nothing is lost: what the notifier fails to deliver (its handler raises) goes to the
undelivered-alerts queue as its on-failure destination; what SNS fails to hand it goes there as
the subscription's redrive policy. The alarm plan's notifier-failures and undelivered-alerts
alarms email through the topic (cdk_app/alarm_plan.py `notifier`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, Duration, ILocalBundling, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app import alarm_plan as ap
from cdk_app import nag
from cdk_app.catalog import catalog
from cdk_app.checker import IGNORE, RUNTIME
from cdk_app.config import ConfigError
from cdk_app.logs import retained_logs
from notifier import contract
from notifier.contract import Channel

ROOT = Path(__file__).resolve().parent.parent
# The notifier reads the checker's metric contract (the Failures metric): one source, both bundled.
BUNDLED = (ROOT / "notifier", ROOT / "checker_lambda" / "__init__.py", ROOT / "checker_lambda" / "contract.py")
TIMEOUT = 60  # seconds: every channel's retries end 5 s before it (notifier/handler.py MARGIN)


@jsii.implements(ILocalBundling)
class CopyNotifier:
    """The notifier needs the standard library and boto3 (in the Lambda runtime): bundling is copying."""

    def try_bundle(self, output_dir: str, options: Any) -> bool:
        for path in BUNDLED:
            target = Path(output_dir) / path.relative_to(ROOT)
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns(*IGNORE))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
        return True


def lambda_code() -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(ROOT / "notifier"),
        exclude=list(IGNORE),
        # Hashed after bundling: a change to the bundled checker contract is a new asset too.
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,
            local=CopyNotifier(),  # type: ignore[arg-type]
            # Docker sees only notifier/, not the checker contract it needs: refuse rather than ship half.
            command=["bash", "-c", "echo 'the notifier bundles locally only (cdk_app/notifier.py)' >&2; exit 1"],
        ),
    )


def secret_arns(stack: Stack, channel: Channel) -> tuple[str, str]:
    """(IAM action, resource ARN) that reads exactly this channel's secret."""
    if channel.parameter is not None:
        name = channel.parameter.lstrip("/")
        return "ssm:GetParameter", f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter/{name}"
    # Secrets Manager appends a hyphen and six characters to the name in the ARN.
    return (
        "secretsmanager:GetSecretValue",
        f"arn:{stack.partition}:secretsmanager:{stack.region}:{stack.account}:secret:{channel.secret}-??????",
    )


class Notifier(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        topic: sns.ITopic,
        key: kms.IKey,
        channels: Sequence[Channel],
        service: str,
        locations: Sequence[str],
        runbook_url: str | None,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id)
        self.log_group = retained_logs(self, "Logs", log_retention_days)
        self.queue = self._queue(key)
        self.role = self._role(channels)
        self.environment = {
            contract.ENV_CHANNELS: json.dumps([[c.type, c.secret] for c in channels]),
            contract.ENV_SERVICE: service,
            contract.ENV_LOCATIONS: json.dumps(list(locations)),
            contract.ENV_RUNBOOK: runbook_url or "",
        }
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="notifier.handler.handler",
            code=lambda_code(),
            memory_size=128,
            timeout=Duration.seconds(TIMEOUT),
            environment=self.environment,
            log_group=self.log_group,
            role=self.role,
            description="Posts each alarm to the chat and paging channels of alertChannels",
            # A retry would post again to the channels that did take it; what failed is in the queue.
            retry_attempts=0,
            on_failure=destinations.SqsDestination(self.queue),
        )
        nag.acknowledge(
            self.function, "L1", "The runtime is the Python the image runs and the tests use, as the checker's."
        )
        topic.add_subscription(subs.LambdaSubscription(self.function, dead_letter_queue=self.queue))

    def _queue(self, key: kms.IKey) -> sqs.Queue:
        stack = Stack.of(self)
        # What it could not deliver, and what SNS could not hand it: kept 14 days (SQS's longest).
        # Encrypted with the topic's key: SNS sends to an encrypted dead-letter queue only under a
        # customer-managed key whose policy lets SNS use it (SNS Developer Guide, "Amazon SNS
        # dead-letter queues"); the function's sends are granted by its on-failure destination.
        queue = sqs.Queue(
            self,
            "Undelivered",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                # This account's topics in this region: the topic's own ARN would be a cycle (it uses this key).
                conditions={
                    "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:sns:{stack.region}:{stack.account}:*"}
                },
            )
        )
        nag.acknowledge(queue, "SQS3", "This queue is the dead-letter queue (of the subscription and the notifier).")
        return queue

    def _role(self, channels: Sequence[Channel]) -> iam.Role:
        """Its logs, exactly the named secrets (a customer-managed key only through the service that
        holds them), failure counts read, its own namespace written."""
        stack = Stack.of(self)
        role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description="Alert notifier"
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[self.log_group.log_group_arn]
            )
        )
        reads: dict[str, list[str]] = {}
        for channel in channels:
            action, arn = secret_arns(stack, channel)
            reads.setdefault(action, []).append(arn)
        for action, arns in sorted(reads.items()):
            role.add_to_policy(iam.PolicyStatement(actions=[action], resources=sorted(set(arns))))
        services = sorted(f"{a.split(':')[0]}.{stack.region}.amazonaws.com" for a in reads)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"], resources=["*"], conditions={"StringEquals": {"kms:ViaService": services}}
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": contract.NAMESPACE}},
            )
        )
        nag.acknowledge(
            role,
            "IAM5[Resource::*]",
            "cloudwatch:GetMetricData and PutMetricData have no resource-level permissions (PutMetricData is held "
            "to the notifier's namespace); kms:Decrypt is only through Secrets Manager or SSM (kms:ViaService), "
            "for secrets under a customer-managed key.",
        )
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            nag.acknowledge(
                role,
                f"IAM5[Action::{action}]",
                "aws-cdk-lib's grant to send to the KMS-encrypted queue (its on-failure destination), on that one key.",
            )
        for channel in channels:
            if channel.parameter is None:
                nag.acknowledge(
                    role,
                    f"IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:"
                    f"{channel.secret}-??????]",
                    "Secrets Manager appends six random characters to a secret's name in its ARN: this is one secret.",
                )
        return role

    def describe(self, plan: ap.Plan, alarms: Mapping[str, cw.IAlarm], dashboard_url: str) -> None:
        """Tells the function what each alarm means (by its name, known at deploy) and the dashboard."""
        # A fixed name as itself: a Ref would make the function depend on the alarms that watch it.
        rows = [[plan[i].name or alarms[i].alarm_name, *rest] for i, *rest in catalog(plan)]
        stack = Stack.of(self)
        self.environment[contract.ENV_ALARMS] = stack.to_json_string(rows)
        self.environment[contract.ENV_DASHBOARD] = dashboard_url
        for key in (contract.ENV_ALARMS, contract.ENV_DASHBOARD):
            self.function.add_environment(key, self.environment[key])
        size = sum(len(k) + deployed_length(stack, stack.resolve(v)) for k, v in self.environment.items())
        if size > ENVIRONMENT_MAX:
            raise ConfigError(
                f"context keys 'alertChannels', 'extraTargets' and 'checkerRegions' are invalid together: the "
                f"notifier's environment would hold about {size} bytes, more than Lambda's {ENVIRONMENT_MAX}; "
                "allowed is fewer targets, regions or channels"
            )


ENVIRONMENT_MAX = 4096  # Lambda: all environment variables together, in bytes


def deployed_length(stack: Stack, value: Any) -> int:
    """A resolved value's length once deployed; a Ref to an alarm without a fixed name becomes the
    name CloudFormation generates, <stack>-<logical id>-<12 characters>."""
    if isinstance(value, str):
        return len(value.encode())
    if "Ref" in value:
        return len(stack.stack_name) + len(value["Ref"]) + 14
    if "Fn::Join" in value:
        return sum(deployed_length(stack, v) for v in value["Fn::Join"][1])
    return 64  # another intrinsic (the region): generously
