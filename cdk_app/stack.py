"""The stacks: the cluster and its service; the checker with its alarms, topic and dashboard;
and one more checker per extra checker region. Each mostly wires constructs together.

Updating an alarm deploys only the monitoring stack. The cluster stack hands the others two
kinds of values (`cdk_app/shared.py`, docs/decisions.md §8): the URL as an SSM parameter in the
home region that every checker Lambda reads at run time (so a replaced load balancer reaches
every checker at its next invocation, and no deploy asks CloudFormation to resolve an SSM
parameter), and the load balancer's and target group's full
names as exports under pinned names that the health stack imports for its ALB alarms. The CLI
deploys the cluster stack first (explicit dependencies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_cdk import App, CfnOutput, Environment, Fn, Stack
from constructs import Construct

from cdk_app import alarm_plan, nag, shared, versions
from cdk_app.checker import CheckerView, FirstRun, HealthChecker
from cdk_app.cluster import ClusterView, HelloCluster
from cdk_app.config import (
    MONITORING_STACK_NAME,
    SHARED,
    STACK_NAME,
    AppConfig,
    checker_stack_description,
    checker_stack_name,
)
from cdk_app.monitoring import Monitoring, MonitoringView, Watched
from cdk_app.workload import Domain, HelloWorkload
from service import settings as svc

DEFAULT_TARGET = alarm_plan.DEFAULT_TARGET


def _outputs(stack: Stack, *outputs: tuple[str, str, str]) -> None:
    for name, value, description in outputs:
        CfnOutput(stack, name, value=value, description=description).override_logical_id(name)


class ClusterStack(Stack):
    """The EKS cluster and the Hello World service behind its load balancer."""

    def __init__(self, scope: Construct, id: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.cluster = HelloCluster(self, "Cluster", config=ClusterView.of(config))
        self.workload = HelloWorkload(
            self,
            "Workload",
            cluster=self.cluster.cluster,
            vpc=self.cluster.vpc,
            arm64=config.node_arm64,
            namespace=config.namespace,
            min_replicas=config.pod_min_replicas,
            max_replicas=config.pod_max_replicas,
            domain=domain(config),
        )
        self.url = self.workload.url
        # What the other stacks take: the URL every checker reads at run time (home region only),
        # and the alarms' dimensions as exports under pinned names.
        self.url_parameter = shared.write_url(self, self.url, after=self.workload)
        lb, tg = self.workload.load_balancer, self.workload.target_group
        shared.export(
            self,
            "LoadBalancerFullNameExport",
            value=lb.load_balancer_full_name,
            name=SHARED.load_balancer_export,
            description="The load balancer's full name (the LoadBalancer dimension of the health stack's alarms)",
        )
        shared.export(
            self,
            "TargetGroupFullNameExport",
            value=tg.target_group_full_name,
            name=SHARED.target_group_export,
            description="The target group's full name (the TargetGroup dimension of the health stack's alarms)",
        )
        if config.keep_exports:
            self._keep_exports()
        _outputs(
            self,
            ("HelloUrl", self.url, "Public URL of the service"),
            # make drill MODE=outage finds the listener by it (with a custom domain, the only way).
            ("LoadBalancerArn", self.workload.load_balancer.load_balancer_arn, "The service's load balancer"),
        )

    def _keep_exports(self) -> None:
        """What a health stack deployed before this release imports, under the names aws-cdk-lib
        gave those exports (the same function names them), so this stack's update is not refused
        while that health stack still imports them; the update after it drops them."""
        lb, tg = self.workload.load_balancer, self.workload.target_group
        for value in (
            lb.load_balancer_dns_name,
            lb.load_balancer_full_name,
            tg.target_group_full_name,
            *(listener.listener_arn for listener in lb.listeners),
        ):
            self.export_value(value)


def domain(config: AppConfig) -> Domain | None:
    """The service's HTTPS name and zone, when domainName is set (config checks the three go together)."""
    if config.domain_name is None or config.hosted_zone_id is None or config.hosted_zone_name is None:
        return None
    return Domain(name=config.domain_name, zone_id=config.hosted_zone_id, zone_name=config.hosted_zone_name)


def default_target(config: AppConfig) -> dict[str, Any]:
    """The service's own target: it names the URL's parameter (and its region, the home one),
    which the checker reads at each invocation (checker_lambda/urls.py)."""
    return {
        "name": DEFAULT_TARGET,
        "url": "",
        "url_parameter": SHARED.url,
        "url_parameter_region": shared.url_region(config.home_region),
        "expect_status": 200,
        "expect_body": svc.HELLO_BODY,
        "timeout": config.probe_timeout_seconds,
    }


class HealthStack(Stack):
    """The home region's checker, the alarms, the alert topic and the dashboard."""

    def __init__(
        self, scope: Construct, id: str, *, config: AppConfig, cluster: ClusterStack | None, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        home = config.locations[0] if config.locations else None
        if cluster:
            self.add_stack_dependency(cluster, "imports the cluster stack's exports; its checker reads the URL")
        self.checker = HealthChecker(
            self,
            "Checker",
            view=CheckerView.of(config, default_target(config) if cluster else None, location=home),
            url_parameter_arn=shared.url_parameter_arn(self, config.home_region) if cluster else None,
        )
        self.plan = alarm_plan.plan(config)
        # Its answer waits until every location's heartbeat metric reads back (first_run.settle).
        self.first_run = FirstRun(
            self,
            "CheckerFirstRun",
            checker=self.checker,
            log_retention_days=config.log_retention_days,
            location=home or self.region,
            heartbeats=[
                {"Namespace": m.namespace, "MetricName": m.name, **m.dims}
                for a in self.plan.metric_alarms
                if a.missing is alarm_plan.Missing.BREACHING
                for m in a.metrics()
            ],
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            view=MonitoringView.of(config),
            plan=self.plan,
            after=self.first_run.resource,
            watched=Watched(
                checker=self.checker.function,
                checker_logs=self.checker.log_group,
                checker_rule=self.checker.rule,
                load_balancer=Fn.import_value(SHARED.load_balancer_export) if cluster else None,
                target_group=Fn.import_value(SHARED.target_group_export) if cluster else None,
            ),
        )
        m = self.monitoring
        _outputs(
            self,
            ("DashboardUrl", m.dashboard_url, "CloudWatch dashboard"),
            ("AlertTopicArn", m.topic.topic_arn, "SNS topic the alarms notify"),
            ("ServiceDownAlarmName", m.service_down.alarm_name, "The composite alarm that pages"),
            ("FirstRun", self.first_run.summary, "What the checker saw in its run during this deploy"),
            (
                "DrillAlarmName",
                m.drill_alarms[self.plan.targets[0]].alarm_name,
                f"The alarm a drill forces to page for {self.plan.targets[0]} (it feeds ServiceDownAlarmName)",
            ),
        )
        if m.notifier:  # make drill reads which channel took its page, and what waits undelivered
            _outputs(
                self,
                ("NotifierLogGroup", m.notifier.log_group.log_group_name, "The notifier's log group (delivery lines)"),
                ("UndeliveredAlertsQueueUrl", m.notifier.queue.queue_url, "Pages no channel took, with the alarm"),
            )


class CheckerStack(Stack):
    """The same checker in another region, publishing to the home region's CloudWatch."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: AppConfig,
        location: str,
        cluster: ClusterStack | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        if cluster:
            self.add_stack_dependency(cluster, "its checker reads the URL the cluster stack writes")
        self.checker = HealthChecker(
            self,
            "Checker",
            view=CheckerView.of(
                config,
                default_target(config) if cluster else None,
                location=location,
                metrics_region=config.home_region,
            ),
            url_parameter_arn=shared.url_parameter_arn(self, config.home_region) if cluster else None,
        )
        first_run = FirstRun(
            self,
            "CheckerFirstRun",
            checker=self.checker,
            log_retention_days=config.log_retention_days,
            location=location,
        )
        _outputs(
            self, ("FirstRun", first_run.summary, f"What the checker in {location} saw in its run during this deploy")
        )


@dataclass
class Stacks:
    cluster: ClusterStack | None
    health: HealthStack
    checkers: dict[str, CheckerStack] = field(default_factory=dict)  # by region, the home one excluded

    def all(self) -> list[Stack]:
        return [s for s in (self.cluster, self.health, *self.checkers.values()) if s is not None]


def build(app: App) -> Stacks:
    """The whole app: configuration from context, the stacks, and cdk-nag on every synth."""
    versions.check()  # a Kubernetes version without its upstream facts stops here, in one line
    config = AppConfig.from_context(app.node.try_get_context, keys=app.node.get_all_context())

    def env(region: str | None) -> Environment | None:
        # Pinned to a region (no account: synth stays offline) only when checkerRegions names them.
        return Environment(region=region) if region else None

    home = config.home_region
    cluster = (
        ClusterStack(app, STACK_NAME, config=config, env=env(home), description="Hello World service on EKS")
        if config.deploy_cluster
        else None
    )
    health = HealthStack(
        app,
        MONITORING_STACK_NAME,
        config=config,
        cluster=cluster,
        env=env(home),
        description="Hello World health checker, alarms, alert topic and dashboard",
    )
    stacks = Stacks(cluster=cluster, health=health)
    for region in config.locations[1:]:
        stacks.checkers[region] = CheckerStack(
            app,
            checker_stack_name(region),
            config=config,
            location=region,
            cluster=cluster,
            env=env(region),
            description=checker_stack_description(region, config.locations[0]),
        )
        # The alarms read what every checker's first run published: each checker stack first.
        health.add_stack_dependency(stacks.checkers[region], "its alarms read what this checker's first run published")
    nag.enable(app)
    return stacks
