"""The alarm plan (cdk_app/alarm_plan.py) rendered into CloudWatch alarms, with the SNS topic
they notify, the saved failed-probes query and the dashboard (cdk_app/dashboard.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import assert_never, cast

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from cdk_app import alarm_plan as ap
from cdk_app.config import AppConfig, Channel
from cdk_app.dashboard import Dashboard, DashboardView
from cdk_app.dashboard import render as metric
from cdk_app.notifier import Notifier

COMPARISONS = {
    ap.Comparison.LESS: cw.ComparisonOperator.LESS_THAN_THRESHOLD,
    ap.Comparison.GREATER: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
    ap.Comparison.GREATER_OR_EQUAL: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
}


def rule(r: ap.Rule, alarms: Mapping[str, cw.IAlarm]) -> cw.IAlarmRule:
    if isinstance(r, ap.Is):
        return cw.AlarmRule.from_alarm(alarms[r.alarm], cw.AlarmState(r.state))
    if isinstance(r, ap.AnyOf):
        return cw.AlarmRule.any_of(*(rule(x, alarms) for x in r.rules))
    if isinstance(r, ap.AllOf):
        return cw.AlarmRule.all_of(*(rule(x, alarms) for x in r.rules))
    if isinstance(r, ap.Not):
        return cw.AlarmRule.not_(rule(r.rule, alarms))
    assert_never(r)


@dataclass(frozen=True)
class Watched:
    """What the monitoring watches, as the other constructs created it."""

    checker: lambda_.IFunction  # the home region's checker (machinery alarms, dashboard)
    checker_logs: logs.ILogGroup
    checker_rule: events.Rule
    # The load balancer's and target group's CloudWatch dimensions (app/<name>/<id>,
    # targetgroup/<name>/<id>); None: checker-only (cluster=false).
    load_balancer: str | None
    target_group: str | None


@dataclass(frozen=True)
class MonitoringView:
    """What the alarms, the topic and the dashboard take from the configuration: who is told
    (email, webhooks, the notifier's channels and runbook link), the names, the dashboard's
    SLO, percentile and certificate threshold, the cluster and namespace it shows (None in a
    checker-only deploy), and the logs' retention."""

    name_prefix: str
    alert_email: str | None
    alert_webhooks: tuple[str, ...]
    alert_channels: tuple[Channel, ...]
    runbook_url: str | None
    log_retention_days: int
    slo_target_percent: float
    latency_percentile: str
    cert_expiry_days: int
    cluster_name: str | None
    namespace: str | None

    @classmethod
    def of(cls, config: AppConfig) -> MonitoringView:
        return cls(
            name_prefix=config.name_prefix,
            alert_email=config.alert_email,
            alert_webhooks=config.alert_webhooks,
            alert_channels=config.alert_channels,
            runbook_url=config.runbook_url,
            log_retention_days=config.log_retention_days,
            slo_target_percent=config.slo_target_percent,
            latency_percentile=config.latency_percentile,
            cert_expiry_days=config.cert_expiry_days,
            cluster_name=config.cluster_name if config.deploy_cluster else None,
            namespace=config.namespace if config.deploy_cluster else None,
        )


class Monitoring(Construct):
    def __init__(
        self, scope: Construct, id: str, *, view: MonitoringView, plan: ap.Plan, watched: Watched, after: Construct
    ) -> None:
        """`after`: the home checker's first run (checker.FirstRun); every metric alarm is created
        (and updated) after it, so none starts without data (docs/decisions.md §3)."""
        super().__init__(scope, id)
        self.topic = self._topic(view)
        self.notifier = self._notifier(view, plan)
        self.alarms = self._alarms(plan, watched, after)
        self.service_down = self.alarms[ap.SERVICE_DOWN]
        self.drill_alarms = {target: self.alarms[a] for target, a in plan.drill.items()}

        logs.QueryDefinition(
            self,
            "FailedProbesQuery",
            query_definition_name=f"{view.name_prefix}/failed-probes-by-reason",
            log_groups=[watched.checker_logs],
            query_string=logs.QueryString(
                fields=["@timestamp", "target", "reason", "detail", "status", "total_ms"],
                filter_statements=['type = "probe"', 'outcome = "fail"'],
                sort="@timestamp desc",
                limit=200,
            ),
        )
        name = f"{view.name_prefix}-health"
        self.dashboard = self._dashboard(name, view, plan, watched)
        region = Stack.of(self).region
        self.dashboard_url = (
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#dashboards:name={self.dashboard.dashboard_name}"
        )
        if self.notifier:  # the dashboard by its fixed name: a Ref would close a cycle through its alarm widgets
            self.notifier.describe(plan, self.alarms, self.dashboard_url.replace(self.dashboard.dashboard_name, name))

    def _notifier(self, view: MonitoringView, plan: ap.Plan) -> Notifier | None:
        """Only with alertChannels: none of it otherwise (the templates stay as they were)."""
        if not view.alert_channels:
            return None
        return Notifier(
            self,
            "Notifier",
            topic=self.topic,
            key=self.key,
            channels=view.alert_channels,
            service=view.name_prefix,
            locations=plan.locations,
            runbook_url=view.runbook_url,
            log_retention_days=view.log_retention_days,
        )

    def _alarms(self, plan: ap.Plan, watched: Watched, after: Construct) -> dict[str, cw.AlarmBase]:
        """The plan's alarms, in its order, the placeholders replaced by this deploy's names."""
        action = cw_actions.SnsAction(self.topic)
        tokens = {
            ap.CHECKER_FUNCTION: watched.checker.function_name,
            ap.SCHEDULE_RULE: watched.checker_rule.rule_name,
            **({ap.LOAD_BALANCER: watched.load_balancer} if watched.load_balancer else {}),
            **({ap.TARGET_GROUP: watched.target_group} if watched.target_group else {}),
            **(
                {
                    ap.NOTIFIER_FUNCTION: self.notifier.function.function_name,
                    ap.UNDELIVERED_QUEUE: self.notifier.queue.queue_name,
                }
                if self.notifier
                else {}
            ),
        }
        alarms: dict[str, cw.AlarmBase] = {}
        for a in plan.alarms:
            alarms[a.id] = alarm = self._alarm(a, tokens) if isinstance(a, ap.Alarm) else self._composite(a, alarms)
            if isinstance(a, ap.Alarm):
                alarm.node.add_dependency(after)
            if a.actions:
                alarm.add_alarm_action(action)
                alarm.add_ok_action(action)
        return alarms

    def _dashboard(self, name: str, view: MonitoringView, plan: ap.Plan, watched: Watched) -> cw.Dashboard:
        shown = [ap.SERVICE_DOWN, *plan.feeding(), *(i for i in plan.notifying() if i != ap.SERVICE_DOWN)]
        return Dashboard(
            self,
            "Dashboard",
            view=DashboardView(
                name=name,
                targets=plan.targets,
                https_targets=plan.https_targets,
                locations=plan.locations,
                slo_target_percent=view.slo_target_percent,
                latency_percentile=view.latency_percentile,
                # The alarms' own thresholds, as planned.
                latency_threshold_ms=int(plan[f"Latency-{plan.targets[0]}"].threshold),  # type: ignore[union-attr]
                cert_expiry_days=view.cert_expiry_days,
                alarms=tuple(self.alarms[i] for i in shown),
                checker=watched.checker,
                load_balancer=watched.load_balancer,
                target_group=watched.target_group,
                cluster_name=view.cluster_name,
                namespace=view.namespace,
                reads_url=view.cluster_name is not None,
            ),
        ).dashboard

    def _alarm(self, a: ap.Alarm, tokens: Mapping[str, str]) -> cw.Alarm:
        m = a.metric
        rendered: cw.IMetric = (
            cw.MathExpression(
                expression=m.expression,
                using_metrics={name: metric(x, tokens) for name, x in m.metrics},
                label=m.label,
                period=Duration.seconds(m.period),
            )
            if isinstance(m, ap.Math)
            else metric(m, tokens)
        )
        alarm = cw.Alarm(
            self,
            a.id,
            alarm_name=a.name,
            alarm_description=a.description,
            metric=rendered,
            comparison_operator=COMPARISONS[a.comparison],
            threshold=a.threshold,
            datapoints_to_alarm=a.datapoints_to_alarm,
            evaluation_periods=a.periods,
            treat_missing_data=cw.TreatMissingData[a.missing.name],
        )
        if a.sliding:
            cfn = cast(cw.CfnAlarm, alarm.node.default_child)
            cfn.evaluation_window = cw.CfnAlarm.EvaluationWindowProperty(sliding_window={})
        return alarm

    def _composite(self, c: ap.Composite, alarms: Mapping[str, cw.IAlarm]) -> cw.CompositeAlarm:
        return cw.CompositeAlarm(
            self,
            c.id,
            composite_alarm_name=c.name,
            alarm_description=c.description,
            alarm_rule=rule(c.rule, alarms),
            actions_suppressor=alarms[c.suppressor] if c.suppressor else None,
            actions_suppressor_wait_period=Duration.seconds(c.suppressor_wait) if c.suppressor else None,
            actions_suppressor_extension_period=Duration.seconds(c.suppressor_extension) if c.suppressor else None,
        )

    # --- the topic -------------------------------------------------------------------------

    def _topic(self, view: MonitoringView) -> sns.Topic:
        self.key = key = kms.Key(
            self,
            "AlertsKey",
            description="Encrypts the alert topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # CloudWatch alarms publish to the encrypted topic, so CloudWatch may use the key: the
        # statement the SNS Developer Guide gives ("Enable compatibility between event sources
        # from AWS services and encrypted topics"), without conditions. AWS documents no
        # aws:SourceAccount on the KMS request CloudWatch makes, and a condition that does not
        # match fails every page silently; the topic policy scopes who may publish.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        topic = sns.Topic(
            self,
            "Alerts",
            display_name="Hello World alerts",
            master_key=key,
            enforce_ssl=True,  # denies publishing over plain HTTP
        )
        # enforce_ssl makes CloudFormation write a topic policy, which replaces SNS's default one:
        # without this statement CloudWatch may not publish, and every alarm action fails quietly
        # (only the alarm's history says so). Scoped to this account's alarms in this region
        # (SNS Developer Guide, "Example cases for Amazon SNS access control").
        stack = Stack.of(self)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                    },
                },
            )
        )
        if view.alert_email:
            topic.add_subscription(subs.EmailSubscription(view.alert_email))
        for url in view.alert_webhooks:
            topic.add_subscription(subs.UrlSubscription(url, protocol=sns.SubscriptionProtocol.HTTPS))
        return topic
