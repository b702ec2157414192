"""Alarms, the SNS topic they notify, and the dashboard of the four golden signals.

Paging design: every alarm that means "users are affected" (availability, latency, 5xx,
fast SLO burn) feeds one composite alarm, ServiceDown, and only the composite notifies; so
one outage sends one email, naming the alarms that tripped. Alarms about the machinery
(checker errors, throttles, missed schedules, an unhealthy pod, a certificate about to
expire, a slow SLO burn) notify on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from cdk_app.config import AppConfig
from checker_lambda import contract, timing

MINUTE = Duration.minutes(1)
# Multi-window burn-rate alerting (Google SRE workbook): (long window, short window, burn rate).
FAST_BURN = (Duration.hours(1), Duration.minutes(5), 14.4)  # 2% of a 30-day budget in an hour
SLOW_BURN = (Duration.hours(6), Duration.minutes(30), 6.0)  # 5% of a 30-day budget in six hours


def checker_metric(name: str, target: str, *, statistic: str, period: Duration = MINUTE) -> cw.Metric:
    return cw.Metric(
        namespace=contract.NAMESPACE,
        metric_name=name,
        dimensions_map={contract.TARGET: target},
        statistic=statistic,
        period=period,
    )


@dataclass(frozen=True)
class Watched:
    """What the monitoring watches, as the other constructs created it."""

    targets: Sequence[str]  # checker target names; the first is the service's /hello
    https_targets: Sequence[str]
    checker: lambda_.IFunction
    checker_logs: logs.ILogGroup
    checker_rule: events.Rule
    load_balancer: elbv2.ApplicationLoadBalancer
    target_group: elbv2.ApplicationTargetGroup
    cluster_name: str
    namespace: str


class Monitoring(Construct):
    def __init__(self, scope: Construct, id: str, *, config: AppConfig, watched: Watched) -> None:
        super().__init__(scope, id)
        self.config = config
        self.watched = watched
        self.topic = self._topic(config)
        self.action = cw_actions.SnsAction(self.topic)
        self.user_facing: list[cw.IAlarm] = []  # feed ServiceDown, no actions of their own
        self.own_actions: list[cw.IAlarm] = []  # notify by themselves

        for target in watched.targets:
            self._availability(target)
            self._latency(target)
        for target in watched.https_targets:
            self._certificate(target)
        self._load_balancer()
        self._checker_health()
        self.fast_burn = self._burn_rate("FastBurn", *FAST_BURN, page=True)
        self.slow_burn = self._burn_rate("SlowBurn", *SLOW_BURN, page=False)

        self.service_down = cw.CompositeAlarm(
            self,
            "ServiceDown",
            composite_alarm_name=f"{config.name_prefix}-service-down",
            alarm_description=(
                "Users cannot use /hello (see the triggering alarm in this message). First: open the "
                "dashboard; if 'Failed probes by reason' shows refused/timeout, check the pods "
                f"(kubectl -n {watched.namespace} get pods,events)."
            ),
            alarm_rule=cw.AlarmRule.any_of(*self.user_facing),
        )
        self.service_down.add_alarm_action(self.action)
        self.service_down.add_ok_action(self.action)
        for alarm in self.own_actions:
            alarm.add_alarm_action(self.action)  # type: ignore[attr-defined]
            alarm.add_ok_action(self.action)  # type: ignore[attr-defined]

        logs.QueryDefinition(
            self,
            "FailedProbesQuery",
            query_definition_name=f"{config.name_prefix}/failed-probes-by-reason",
            log_groups=[watched.checker_logs],
            query_string=logs.QueryString(
                fields=["@timestamp", "target", "reason", "detail", "status", "total_ms"],
                filter_statements=['type = "probe"', 'outcome = "fail"'],
                sort="@timestamp desc",
                limit=200,
            ),
        )
        self.dashboard = Dashboard(self, "Dashboard", monitoring=self).dashboard
        region = Stack.of(self).region
        self.dashboard_url = (
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#dashboards:name={self.dashboard.dashboard_name}"
        )

    # --- the topic -------------------------------------------------------------------------

    def _topic(self, config: AppConfig) -> sns.Topic:
        key = kms.Key(
            self,
            "AlertsKey",
            description="Encrypts the alert topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # CloudWatch alarms publish to the encrypted topic, so CloudWatch may use the key.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
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
        if config.alert_email:
            topic.add_subscription(subs.EmailSubscription(config.alert_email))
        for url in config.alert_webhooks:
            topic.add_subscription(subs.UrlSubscription(url, protocol=sns.SubscriptionProtocol.HTTPS))
        return topic

    # --- alarms ----------------------------------------------------------------------------

    def _alarm(self, id: str, *, user_facing: bool, **props: object) -> cw.Alarm:
        alarm = cw.Alarm(self, id, **props)  # type: ignore[arg-type]
        (self.user_facing if user_facing else self.own_actions).append(alarm)
        return alarm

    def _availability(self, target: str) -> None:
        confirm = self.config.confirm_probes
        self._alarm(
            f"Availability-{target}",
            user_facing=True,
            alarm_description=(
                f"{target} failed {confirm} health checks in a row (or the checker stopped reporting). "
                "First: dashboard 'Failed probes by reason', then the saved query failed-probes-by-reason."
            ),
            metric=checker_metric(
                contract.AVAILABILITY,
                target,
                statistic="Minimum",
                period=Duration.seconds(self.config.probe_interval_seconds),
            ),
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            threshold=1,
            datapoints_to_alarm=confirm,
            evaluation_periods=timing.evaluation_periods(confirm),
            treat_missing_data=cw.TreatMissingData.BREACHING,  # a dead checker pages
        )

    def _latency(self, target: str) -> None:
        c = self.config
        self._alarm(
            f"Latency-{target}",
            user_facing=True,
            alarm_description=(
                f"{target}: {c.latency_percentile} latency above {c.latency_threshold_ms} ms for 3 of 5 minutes. "
                "First: dashboard 'Timing phases' shows which phase grew (DNS, connect, TLS or the app)."
            ),
            metric=checker_metric(contract.LATENCY, target, statistic=c.latency_percentile),
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            threshold=c.latency_threshold_ms,
            datapoints_to_alarm=3,
            evaluation_periods=5,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,  # no answers: availability pages
        )

    def _certificate(self, target: str) -> None:
        days = self.config.cert_expiry_days
        self._alarm(
            f"Certificate-{target}",
            user_facing=False,
            alarm_description=(
                f"The TLS certificate of {target} expires in less than {days} days. First: check why renewal "
                "failed (ACM renews a DNS-validated certificate itself while its validation CNAME exists)."
            ),
            metric=checker_metric(contract.CERT_DAYS_REMAINING, target, statistic="Minimum", period=Duration.hours(1)),
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            threshold=days,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,  # no answer: availability pages
        )

    def _load_balancer(self) -> None:
        lb, tg = self.watched.load_balancer, self.watched.target_group
        self.lb_unhealthy = self._alarm(
            "UnhealthyTargets",
            user_facing=False,
            alarm_description=(
                "A hello pod has failed the load balancer's health check for 3 minutes. First: "
                f"kubectl -n {self.watched.namespace} describe pods (readiness probe, restarts, OOMKilled)."
            ),
            metric=tg.metrics.unhealthy_host_count(statistic="Maximum", period=MINUTE),
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            threshold=1,
            evaluation_periods=3,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        errors = lb.metrics.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, statistic="Sum", period=MINUTE)
        requests = lb.metrics.request_count(statistic="Sum", period=MINUTE)
        self.lb_5xx = self._alarm(
            "Backend5xx",
            user_facing=True,
            alarm_description=(
                "More than 5% of requests got a 5xx from the pods for 3 of 5 minutes. First: "
                f"kubectl -n {self.watched.namespace} logs deploy/hello | grep '\"status\":5'."
            ),
            metric=cw.MathExpression(
                expression="IF(requests >= 10, 100 * errors / requests, 0)",
                using_metrics={"errors": errors, "requests": requests},
                label="5xx % of requests",
                period=MINUTE,
            ),
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            threshold=5,
            datapoints_to_alarm=3,
            evaluation_periods=5,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )

    def _checker_health(self) -> None:
        fn, rule = self.watched.checker, self.watched.checker_rule
        failed_invocations = cw.Metric(
            namespace="AWS/Events",
            metric_name="FailedInvocations",
            dimensions_map={"RuleName": rule.rule_name},
            statistic="Sum",
            period=MINUTE,
        )
        for alarm_id, metric, description in (
            (
                "CheckerErrors",
                fn.metric_errors(statistic="Sum", period=MINUTE),
                "The health checker Lambda failed in 2 of 3 minutes (bad settings, or it cannot publish "
                "metrics). First: read the newest error in its log group.",
            ),
            (
                "CheckerThrottles",
                fn.metric_throttles(statistic="Sum", period=MINUTE),
                "The health checker Lambda was throttled in 2 of 3 minutes: the account's concurrency is "
                "exhausted. First: Lambda console, account-level ConcurrentExecutions.",
            ),
            (
                "ScheduleFailures",
                failed_invocations,
                "EventBridge could not invoke the health checker in 2 of 3 minutes. First: check the "
                "Lambda's resource policy and that the function exists.",
            ),
        ):
            self._alarm(
                alarm_id,
                user_facing=False,
                alarm_description=description,
                metric=metric,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                threshold=1,
                datapoints_to_alarm=2,
                evaluation_periods=3,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )

    def _burn_rate(
        self, id: str, long_window: Duration, short_window: Duration, burn: float, *, page: bool
    ) -> cw.CompositeAlarm:
        """Both windows must burn the error budget `burn` times faster than sustainable."""
        budget = 1 - self.config.slo_target_percent / 100
        target = self.watched.targets[0]
        windows = []
        for window in (long_window, short_window):
            windows.append(
                cw.Alarm(
                    self,
                    f"{id}-{int(window.to_minutes())}m",
                    alarm_description=f"Error-budget burn rate over {int(window.to_minutes())} min (no actions).",
                    metric=cw.MathExpression(
                        expression=f"(1 - availability) / {budget:.6g}",
                        using_metrics={
                            "availability": checker_metric(
                                contract.AVAILABILITY, target, statistic="Average", period=window
                            )
                        },
                        label=f"burn rate, {int(window.to_minutes())} min",
                        period=window,
                    ),
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    threshold=burn,
                    evaluation_periods=1,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,  # silence pages elsewhere
                )
            )
        slo = self.config.slo_target_percent
        composite = cw.CompositeAlarm(
            self,
            id,
            alarm_description=(
                f"{target} is spending its {slo}% / 30 days error budget {burn}x too fast "
                f"({int(long_window.to_minutes())} and {int(short_window.to_minutes())} min windows). "
                + (
                    "First: treat as an outage."
                    if page
                    else "First: look for a recurring error in the failed-probes query; a ticket, not a page."
                )
            ),
            alarm_rule=cw.AlarmRule.all_of(*windows),
        )
        (self.user_facing if page else self.own_actions).append(composite)
        return composite


class Dashboard(Construct):
    """Is it up, how fast, how loaded, what failed."""

    def __init__(self, scope: Construct, id: str, *, monitoring: Monitoring) -> None:
        super().__init__(scope, id)
        m, w = monitoring, monitoring.watched
        lb, tg = w.load_balancer, w.target_group
        hello = w.targets[0]
        sli = [
            cw.MathExpression(
                expression=f"100 * sli{i}",
                using_metrics={f"sli{i}": checker_metric(contract.AVAILABILITY, hello, statistic="Average", period=p)},
                label=f"availability, last {label}",
                period=p,
            )
            for i, (label, p) in enumerate((("1 h", Duration.hours(1)), ("24 h", Duration.days(1))))
        ]
        availability = cw.GraphWidget(
            title="Availability (% of probes healthy)",
            left=[
                cw.MathExpression(
                    expression=f"100 * a{i}",
                    using_metrics={f"a{i}": checker_metric(contract.AVAILABILITY, t, statistic="Average")},
                    label=t,
                    period=MINUTE,
                )
                for i, t in enumerate(w.targets)
            ],
            left_y_axis=cw.YAxisProps(min=0, max=100),
            width=8,
        )
        latency = cw.GraphWidget(
            title="Latency: checker (ms)",
            left=[
                checker_metric(contract.LATENCY, t, statistic=stat).with_(label=f"{t} {stat}")
                for t in w.targets
                for stat in ("p50", "p90", "p99")
            ],
            left_annotations=[cw.HorizontalAnnotation(value=m.config.latency_threshold_ms, label="alarm")],
            width=8,
        )
        phases = cw.GraphWidget(
            title="Timing phases, p90 (ms)",
            left=[
                checker_metric(name, t, statistic="p90").with_(label=f"{t} {name}")
                for t in w.targets
                for name in contract.PHASE_METRICS
                if name != contract.TLS_TIME or t in w.https_targets  # plain HTTP has no TLS phase
            ],
            stacked=True,
            width=8,
        )
        lb_latency = cw.GraphWidget(
            title="Latency: load balancer to pods (s)",
            left=[
                lb.metrics.target_response_time(statistic=s, period=MINUTE).with_(label=s)
                for s in ("p50", "p90", "p99")
            ],
            width=8,
        )
        traffic = cw.GraphWidget(
            title="Traffic: requests per second",
            left=[
                cw.MathExpression(
                    expression="requests / PERIOD(requests)",
                    using_metrics={"requests": lb.metrics.request_count(statistic="Sum", period=MINUTE)},
                    label="requests/s",
                    period=MINUTE,
                )
            ],
            width=8,
        )
        status_codes = cw.GraphWidget(
            title="Errors: responses by class",
            left=[
                lb.metrics.http_code_target(code, statistic="Sum", period=MINUTE).with_(label=label)
                for code, label in (
                    (elbv2.HttpCodeTarget.TARGET_2XX_COUNT, "2xx"),
                    (elbv2.HttpCodeTarget.TARGET_3XX_COUNT, "3xx"),
                    (elbv2.HttpCodeTarget.TARGET_4XX_COUNT, "4xx"),
                    (elbv2.HttpCodeTarget.TARGET_5XX_COUNT, "5xx"),
                )
            ]
            + [
                lb.metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, statistic="Sum", period=MINUTE).with_(
                    label="5xx from the ALB"
                )
            ],
            width=8,
        )
        failures = cw.GraphWidget(
            title="Errors: failed probes by reason",
            left=[
                cw.MathExpression(
                    expression=(
                        f"SEARCH('{{{contract.NAMESPACE},{contract.TARGET},{contract.REASON}}} "
                        f"MetricName=\"{contract.FAILURES}\"', 'Sum', 60)"
                    ),
                    label="",
                    period=MINUTE,
                )
            ],
            width=8,
        )
        healthy = cw.GraphWidget(
            title="Load balancer targets",
            left=[
                tg.metrics.healthy_host_count(statistic="Minimum", period=MINUTE).with_(label="healthy"),
                tg.metrics.unhealthy_host_count(statistic="Maximum", period=MINUTE).with_(label="unhealthy"),
            ],
            width=8,
        )
        saturation_pods = cw.GraphWidget(
            title="Saturation: pods (% of limit)",
            left=[
                self._insights(name, w, pod=True)
                for name in ("pod_cpu_utilization_over_pod_limit", "pod_memory_utilization_over_pod_limit")
            ],
            width=8,
        )
        saturation_nodes = cw.GraphWidget(
            title="Saturation: nodes (%)",
            left=[self._insights(name, w, pod=False) for name in ("node_cpu_utilization", "node_memory_utilization")],
            width=8,
        )
        checker = cw.GraphWidget(
            title="Checker Lambda",
            left=[w.checker.metric_invocations(period=MINUTE), w.checker.metric_errors(period=MINUTE)],
            right=[w.checker.metric_duration(statistic="Maximum", period=MINUTE)],
            width=8,
        )
        alarms = cw.AlarmStatusWidget(
            title="Alarms",
            alarms=[m.service_down, *m.user_facing, *m.own_actions],
            width=8,
            height=8,
        )
        self.dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=f"{m.config.name_prefix}-health", default_interval=Duration.hours(3)
        )
        self.dashboard.add_widgets(
            cw.SingleValueWidget(title="Availability SLI (/hello)", metrics=sli, width=8, height=4),
            cw.TextWidget(
                markdown=(
                    f"**SLO** {m.config.slo_target_percent}% of probes healthy over 30 days. "
                    f"Latency alarm: {m.config.latency_percentile} > {m.config.latency_threshold_ms} ms."
                ),
                width=16,
                height=4,
            ),
        )
        self.dashboard.add_widgets(availability, latency, phases)
        self.dashboard.add_widgets(lb_latency, traffic, status_codes)
        self.dashboard.add_widgets(failures, healthy, checker)
        self.dashboard.add_widgets(saturation_pods, saturation_nodes, alarms)
        if w.https_targets:
            self.dashboard.add_widgets(
                cw.GraphWidget(
                    title="TLS certificate days remaining",
                    left=[
                        checker_metric(contract.CERT_DAYS_REMAINING, t, statistic="Minimum", period=Duration.hours(1))
                        for t in w.https_targets
                    ],
                    left_annotations=[cw.HorizontalAnnotation(value=m.config.cert_expiry_days, label="alarm")],
                    width=8,
                )
            )

    @staticmethod
    def _insights(name: str, w: Watched, *, pod: bool) -> cw.Metric:
        dims = {"ClusterName": w.cluster_name}
        if pod:
            dims |= {"Namespace": w.namespace, "PodName": "hello"}
        return cw.Metric(
            namespace="ContainerInsights", metric_name=name, dimensions_map=dims, statistic="Average", period=MINUTE
        )
