"""The health checker: a Lambda on an EventBridge schedule that publishes CloudWatch metrics."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import Aws, BundlingOptions, CustomResource, Duration, ILocalBundling, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_app import nag
from cdk_app.config import AppConfig
from cdk_app.logs import retained_logs
from checker_lambda import contract, first_run

PACKAGE = Path(__file__).resolve().parent.parent / "checker_lambda"
# The Python the image runs and the tests use (.python-version; tests/test_python.py checks).
RUNTIME = lambda_.Runtime.PYTHON_3_13
IGNORE = ("__pycache__", "*.pyc")


@jsii.implements(ILocalBundling)
class CopyPackage:
    """Bundles the checker without Docker.

    The checker needs only the standard library and boto3, which the Lambda runtime provides,
    so bundling is copying the package; the asset is the same on any machine.
    """

    def try_bundle(self, output_dir: str, options: Any) -> bool:
        shutil.copytree(PACKAGE, Path(output_dir) / PACKAGE.name, ignore=shutil.ignore_patterns(*IGNORE))
        return True


def lambda_code() -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(PACKAGE),
        exclude=list(IGNORE),
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,
            local=CopyPackage(),  # type: ignore[arg-type]  # jsii passes the options as one object
            # Fallback when local bundling is off (cdk --no-staging...): the same copy, in Docker.
            command=["bash", "-c", f"mkdir -p /asset-output/{PACKAGE.name} && cp -r . /asset-output/{PACKAGE.name}"],
        ),
    )


@dataclass(frozen=True)
class CheckerView:
    """What one checker is made of: its Lambda's environment (Settings.to_env, read back by
    Settings.from_env) and timeout, its schedule and its logs' retention."""

    environment: Mapping[str, str]
    timeout_seconds: int
    schedule_minutes: int
    log_retention_days: int

    @classmethod
    def of(
        cls,
        config: AppConfig,
        default_target: dict[str, Any] | None,
        *,
        location: str | None = None,
        metrics_region: str | None = None,
    ) -> CheckerView:
        """The checker at `location` (with several checkerRegions), publishing to `metrics_region`
        (the home region) when that is not its own."""
        return cls(
            environment=config.checker_environment(default_target, location=location, metrics_region=metrics_region),
            timeout_seconds=config.checker_timeout_seconds(remote=metrics_region is not None),
            schedule_minutes=config.schedule_minutes,
            log_retention_days=config.log_retention_days,
        )


class HealthChecker(Construct):
    """`url_parameter_arn`: the SSM parameter its default target's URL is read from at run time."""

    def __init__(self, scope: Construct, id: str, *, view: CheckerView, url_parameter_arn: str | None = None) -> None:
        super().__init__(scope, id)
        self.log_group = retained_logs(self, "Logs", view.log_retention_days)
        self.role = self._role(url_parameter_arn)
        self.environment = dict(view.environment)
        self.timeout = view.timeout_seconds
        self.memory = 128
        self.function = self._function()
        # Only its own namespace: a compromised checker cannot forge other metrics. IAM is global:
        # the same statement lets a checker in another region write the home region's CloudWatch.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource-level permissions
                conditions={"StringEquals": {"cloudwatch:namespace": contract.NAMESPACE}},
            )
        )
        nag.acknowledge(
            self.function,
            "L1",
            "The runtime is the Python the image runs and the tests use (.python-version), not the newest "
            "Lambda offers: shipped code runs on the interpreter it was tested on.",
        )
        nag.acknowledge(
            self.role,
            "IAM5[Resource::*]",
            "cloudwatch:PutMetricData has no resource-level permissions; the cloudwatch:namespace "
            "condition limits it to the checker's own namespace.",
        )
        self.rule = events.Rule(
            self,
            "Schedule",
            schedule=events.Schedule.rate(Duration.minutes(view.schedule_minutes)),
            description="Runs the health checker",
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function,
                retry_attempts=0,  # a late run is useless: the next one is already due
                max_event_age=Duration.seconds(60),
            )
        )

    def _role(self, url_parameter_arn: str | None) -> iam.Role:
        """Its own role: write its own logs, read its URL's parameter, put metrics into its own
        namespace (added once the function exists), nothing else."""
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Hello World health checker",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        if url_parameter_arn:
            # The URL's parameter, read at each invocation (checker_lambda/urls.py): that one only.
            role.add_to_policy(iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[url_parameter_arn]))
        return role

    def _function(self) -> lambda_.Function:
        return lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="checker_lambda.handler.handler",
            code=lambda_code(),
            memory_size=self.memory,
            # An invocation covers one schedule period; its last slot's probe and publish may
            # run a few seconds into the next period (checker_lambda/timing.py).
            timeout=Duration.seconds(self.timeout),
            environment=self.environment,
            log_group=self.log_group,
            role=self.role,
            description="Probes the Hello World service and publishes CloudWatch metrics",
            # Lambda's own async queue would retry a failed run twice and keep a throttled one
            # for 6 h; a late run probes slots already past. 60 s is the least it accepts.
            retry_attempts=0,
            max_event_age=Duration.seconds(60),
        )


def code_digest() -> str:
    """The checker package's source, as the Lambda gets it."""
    digest = hashlib.sha256()
    for path in sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def release(checker: HealthChecker) -> dict[str, str]:
    """What makes a new first run due: the checker's code (a digest of the package's files), its
    settings (its environment), its timeout and memory, and its role's policy. Any change is an
    Update of the FirstRun resource, which runs the new checker before the alarms that depend on
    it are updated."""
    policy = checker.role.node.try_find_child("DefaultPolicy")
    return {
        "Code": code_digest(),
        **checker.environment,
        "Timeout": str(checker.timeout),
        "Memory": str(checker.memory),
        **({"Policy": Stack.of(checker).to_json_string(policy.document)} if isinstance(policy, iam.Policy) else {}),
    }


class FirstRun(Construct):
    """Runs the checker once, synchronously, whenever a deploy creates or changes it, so that its
    metrics exist before the alarms that read them (checker_lambda/first_run.py; docs/decisions.md
    §3). `summary`: one line of what it saw, for the stack's outputs. `heartbeats`: in the alarms'
    stack, the heartbeat metrics of every location, which it waits to read back before answering."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        checker: HealthChecker,
        log_retention_days: int,
        location: str,
        heartbeats: Sequence[Mapping[str, str]] = (),
    ) -> None:
        super().__init__(scope, id)
        log_group = retained_logs(self, "Logs", log_retention_days)
        role = self._role(checker, log_group, reads_metrics=bool(heartbeats))
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="checker_lambda.first_run.on_event",
            code=lambda_code(),
            memory_size=128,
            timeout=Duration.seconds(first_run.TIMEOUT),
            log_group=log_group,
            role=role,
            description="Runs the Hello World health checker once during a deploy, before its alarms",
            # It always answers CloudFormation; a retry would run and answer twice.
            retry_attempts=0,
            max_event_age=Duration.seconds(60),
        )
        nag.acknowledge(
            self.function,
            "L1",
            "The runtime is the Python the image runs and the tests use (.python-version), as the checker's.",
        )
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.function.function_arn,
            resource_type="Custom::CheckerFirstRun",
            properties={
                "Function": checker.function.function_name,
                "Location": location,
                "Heartbeats": json.dumps([dict(h) for h in heartbeats]),
                **release(checker),
            },
            # The function always answers first (its own timeout is shorter); this only bounds a
            # function that could not start at all.
            service_timeout=Duration.seconds(first_run.TIMEOUT + 60),
        )
        # After the checker, its role's policy and both functions' asynchronous settings.
        self.resource.node.add_dependency(checker.function, checker.role, self.function)
        self.summary = self.resource.get_att_string("Summary")

    def _role(self, checker: HealthChecker, log_group: logs.ILogGroup, *, reads_metrics: bool) -> iam.Role:
        role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description="Checker first run"
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        # The checker; its own stack's status (a rollback's Update is not run); in the alarms'
        # stack, reading the heartbeat metrics back.
        role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[checker.function.function_arn])
        )
        role.add_to_policy(iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[Aws.STACK_ID]))
        if reads_metrics:
            role.add_to_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricStatistics"], resources=["*"]))
            nag.acknowledge(
                role,
                "IAM5[Resource::*]",
                "cloudwatch:GetMetricStatistics has no resource-level permissions; it reads the heartbeat "
                "metrics back before the alarms are made.",
            )
        return role
