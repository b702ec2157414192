"""Alarms, the SNS topic they notify, and the dashboard, all on the checker's metric contract."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from cdk_app.config import AppConfig
from checker_lambda import contract, timing


def checker_metric(name: str, target: str, *, statistic: str, period: Duration) -> cw.Metric:
    return cw.Metric(
        namespace=contract.NAMESPACE,
        metric_name=name,
        dimensions_map={contract.TARGET: target},
        statistic=statistic,
        period=period,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: AppConfig,
        targets: Sequence[str],
        https_targets: Sequence[str],
        checker: lambda_.Function,
        checker_logs: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(self, "Alerts", display_name="Hello World alerts")
        if config.alert_email:
            self.topic.add_subscription(subs.EmailSubscription(config.alert_email))
        action = cw_actions.SnsAction(self.topic)
        probe_period = Duration.seconds(config.probe_interval_seconds)
        self.availability_alarms: dict[str, cw.Alarm] = {}
        for target in targets:
            alarm = cw.Alarm(
                self,
                f"Availability-{target}",
                alarm_description=(
                    f"{target} is failing its health checks (or the checker stopped reporting). "
                    "First: open the dashboard's 'failures by reason' widget, then the checker's "
                    "logs for the failing probes."
                ),
                metric=checker_metric(contract.AVAILABILITY, target, statistic="Minimum", period=probe_period),
                comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                threshold=1,
                datapoints_to_alarm=config.confirm_probes,
                evaluation_periods=timing.evaluation_periods(config.confirm_probes),
                treat_missing_data=cw.TreatMissingData.BREACHING,  # a dead checker pages
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.availability_alarms[target] = alarm

        self.certificate_alarms: dict[str, cw.Alarm] = {}
        for target in https_targets:
            alarm = cw.Alarm(
                self,
                f"Certificate-{target}",
                alarm_description=(
                    f"The TLS certificate of {target} expires in less than {config.cert_expiry_days} days. "
                    "First: check why renewal failed (ACM renews DNS-validated certificates itself while "
                    "the validation CNAME exists)."
                ),
                metric=checker_metric(
                    contract.CERT_DAYS_REMAINING, target, statistic="Minimum", period=Duration.hours(1)
                ),
                comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                threshold=config.cert_expiry_days,
                evaluation_periods=1,
                # No data means no answer; the availability alarm pages for that.
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.certificate_alarms[target] = alarm

        self.checker_errors_alarm = cw.Alarm(
            self,
            "CheckerErrors",
            alarm_description=(
                "The health checker Lambda is failing (bad settings, or it cannot publish metrics). "
                "First: read the newest error in the checker's log group."
            ),
            metric=checker.metric_errors(statistic="Sum", period=Duration.minutes(1)),
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            threshold=1,
            datapoints_to_alarm=2,
            evaluation_periods=3,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.checker_errors_alarm.add_alarm_action(action)
        self.checker_errors_alarm.add_ok_action(action)

        logs.QueryDefinition(
            self,
            "FailedProbesQuery",
            query_definition_name=f"{config.name_prefix}/failed-probes-by-reason",
            log_groups=[checker_logs],
            query_string=logs.QueryString(
                fields=["@timestamp", "target", "reason", "detail", "status", "total_ms"],
                filter_statements=['type = "probe"', 'outcome = "fail"'],
                sort="@timestamp desc",
                limit=200,
            ),
        )
        self.dashboard = self._dashboard(config, targets, checker)
        region = Stack.of(self).region
        self.dashboard_url = (
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#dashboards:name={self.dashboard.dashboard_name}"
        )

    def _dashboard(self, config: AppConfig, targets: Sequence[str], checker: lambda_.Function) -> cw.Dashboard:
        minute = Duration.minutes(1)
        availability = cw.GraphWidget(
            title="Availability (% of probes healthy)",
            left=[
                cw.MathExpression(
                    expression=f"100 * a{i}",
                    using_metrics={
                        f"a{i}": checker_metric(contract.AVAILABILITY, t, statistic="Average", period=minute)
                    },
                    label=t,
                    period=minute,
                )
                for i, t in enumerate(targets)
            ],
            left_y_axis=cw.YAxisProps(min=0, max=100),
            width=12,
        )
        latency = cw.GraphWidget(
            title="Latency (ms)",
            left=[
                checker_metric(contract.LATENCY, t, statistic=stat, period=minute).with_(label=f"{t} {stat}")
                for t in targets
                for stat in ("p50", "p90", "p99")
            ],
            width=12,
        )
        phases = cw.GraphWidget(
            title="Timing phases, p90 (ms)",
            left=[
                checker_metric(name, t, statistic="p90", period=minute).with_(label=f"{t} {name}")
                for t in targets
                for name in contract.PHASE_METRICS
            ],
            stacked=True,
            width=12,
        )
        failures = cw.GraphWidget(
            title="Failed probes by reason",
            left=[
                cw.MathExpression(
                    expression=(
                        f"SEARCH('{{{contract.NAMESPACE},{contract.TARGET},{contract.REASON}}} "
                        f"MetricName=\"{contract.FAILURES}\"', 'Sum', 60)"
                    ),
                    label="",
                    period=minute,
                )
            ],
            width=12,
        )
        checker_health = cw.GraphWidget(
            title="Checker Lambda",
            left=[checker.metric_invocations(period=minute), checker.metric_errors(period=minute)],
            right=[checker.metric_duration(statistic="Maximum", period=minute)],
            width=12,
        )
        alarms = cw.AlarmStatusWidget(
            title="Alarms",
            alarms=[*self.availability_alarms.values(), *self.certificate_alarms.values(), self.checker_errors_alarm],
            width=12,
        )
        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{config.name_prefix}-health")
        dashboard.add_widgets(availability, latency)
        dashboard.add_widgets(phases, failures)
        dashboard.add_widgets(alarms, checker_health)
        if self.certificate_alarms:
            dashboard.add_widgets(
                cw.GraphWidget(
                    title="TLS certificate days remaining",
                    left=[
                        checker_metric(contract.CERT_DAYS_REMAINING, t, statistic="Minimum", period=Duration.hours(1))
                        for t in self.certificate_alarms
                    ],
                    left_annotations=[cw.HorizontalAnnotation(value=config.cert_expiry_days, label="alarm")],
                    width=12,
                )
            )
        return dashboard
