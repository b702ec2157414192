"""The one stack: wires the cluster, the workload, the checker and the monitoring together."""

from __future__ import annotations

from typing import Any

from aws_cdk import App, CfnOutput, Stack
from constructs import Construct

from cdk_app import nag
from cdk_app.checker import HealthChecker
from cdk_app.cluster import HelloCluster
from cdk_app.config import STACK_NAME, AppConfig
from cdk_app.monitoring import Monitoring, Watched
from cdk_app.workload import HelloWorkload
from service import settings as svc

DEFAULT_TARGET = "hello"


class HelloStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.cluster = HelloCluster(self, "Cluster", config=config)
        self.workload = HelloWorkload(
            self, "Workload", cluster=self.cluster.cluster, vpc=self.cluster.vpc, config=config
        )
        default_target = {
            "name": DEFAULT_TARGET,
            "url": self.workload.url,
            "expect_status": 200,
            "expect_body": svc.HELLO_BODY,
            "timeout": config.probe_timeout_seconds,
        }
        self.checker = HealthChecker(self, "Checker", config=config, default_target=default_target)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            watched=Watched(
                targets=[DEFAULT_TARGET, *(t.name for t in config.extra_targets)],
                https_targets=[
                    *([DEFAULT_TARGET] if config.https else []),
                    *(t.name for t in config.extra_targets if t.https),
                ],
                checker=self.checker.function,
                checker_logs=self.checker.log_group,
                checker_rule=self.checker.rule,
                load_balancer=self.workload.load_balancer,
                target_group=self.workload.target_group,
                cluster_name=config.cluster_name,
                namespace=config.namespace,
            ),
        )
        for name, value, description in (
            ("HelloUrl", self.workload.url, "Public URL of the service"),
            ("DashboardUrl", self.monitoring.dashboard_url, "CloudWatch dashboard"),
            ("AlertTopicArn", self.monitoring.topic.topic_arn, "SNS topic the alarms notify"),
        ):
            CfnOutput(self, name, value=value, description=description).override_logical_id(name)


def build(app: App) -> HelloStack:
    """The whole app: configuration from context, the stack, and cdk-nag on every synth."""
    config = AppConfig.from_context(app.node.try_get_context, keys=app.node.get_all_context())
    stack = HelloStack(app, STACK_NAME, config=config, description="Hello World service on EKS with health checks")
    nag.enable(app)
    return stack
