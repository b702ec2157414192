"""Alarms, the SNS topic they notify, and the dashboard of the four golden signals.

Paging design: every alarm that means "users are affected" (availability, latency, 5xx,
fast SLO burn), and the checker's heartbeat (nobody is watching), feeds one composite alarm,
ServiceDown, and only the composite notifies; so one outage sends one email, naming the
alarms that tripped. Alarms about the machinery
(checker errors, throttles, missed schedules, an unhealthy pod, a certificate about to
expire, a slow SLO burn) notify on their own.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

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

from cdk_app.config import SHARED, AppConfig
from checker_lambda import contract, timing

MINUTE = Duration.minutes(1)
# Multi-window burn-rate alerting (Google SRE workbook): (long window, short window, burn rate).
FAST_BURN = (Duration.hours(1), Duration.minutes(5), 14.4)  # 2% of a 30-day budget in an hour
SLOW_BURN = (Duration.hours(6), Duration.minutes(30), 6.0)  # 5% of a 30-day budget in six hours


def at_least(k: int, alarms: Sequence[cw.IAlarm]) -> cw.IAlarmRule:
    """ALARM when at least k of the alarms are in ALARM: a composite rule has no counting, so any
    k of them, all in ALARM. The rule grows as C(n, k)·k alarm ARNs; config refuses settings whose
    rule would pass AWS's 10,240 characters (Reader.silent_rule_fits)."""
    if k <= 1:
        return cw.AlarmRule.any_of(*alarms)
    return cw.AlarmRule.any_of(*(cw.AlarmRule.all_of(*combo) for combo in itertools.combinations(alarms, k)))


def checker_metric(
    name: str, target: str, *, statistic: str, period: Duration = MINUTE, location: str | None = None
) -> cw.Metric:
    dims = {contract.TARGET: target} | ({contract.LOCATION: location} if location else {})
    return cw.Metric(
        namespace=contract.NAMESPACE,
        metric_name=name,
        dimensions_map=dims,
        statistic=statistic,
        period=period,
    )


def own_count(
    name: str, *, location: str | None = None, period: Duration = MINUTE, label: str | None = None
) -> cw.Metric:
    """A count the checkers publish about themselves (contract.CHECKER_ERRORS by location,
    contract.URL_READ_FAILURES without dimensions), summed per period."""
    return cw.Metric(
        namespace=contract.NAMESPACE,
        metric_name=name,
        dimensions_map={contract.LOCATION: location} if location else None,
        statistic="Sum",
        period=period,
        label=label,
    )


def alb_metric(
    name: str, load_balancer: str, *, statistic: str, target_group: str | None = None, label: str | None = None
) -> cw.Metric:
    """An AWS/ApplicationELB metric of the service's load balancer (and of its target group), from
    their CloudWatch dimensions, which the health stack reads from the cluster stack's parameters."""
    dims = {"LoadBalancer": load_balancer} | ({"TargetGroup": target_group} if target_group else {})
    return cw.Metric(
        namespace="AWS/ApplicationELB",
        metric_name=name,
        dimensions_map=dims,
        statistic=statistic,
        period=MINUTE,
        label=label,
    )


@dataclass(frozen=True)
class Watched:
    """What the monitoring watches, as the other constructs created it."""

    targets: Sequence[str]  # checker target names; the first is the service's /hello when there is a cluster
    https_targets: Sequence[str]
    checker: lambda_.IFunction  # the home region's checker (machinery alarms, dashboard)
    checker_logs: logs.ILogGroup
    checker_rule: events.Rule
    # The load balancer's and target group's CloudWatch dimensions (app/<name>/<id>,
    # targetgroup/<name>/<id>); None: checker-only (cluster=false).
    load_balancer: str | None
    target_group: str | None
    cluster_name: str | None
    namespace: str | None
    # The checker's locations (regions) when it runs in several, the home one first; empty: one
    # checker and no Location dimension, exactly the single-region alarms.
    locations: Sequence[str] = ()
    quorum: int = 1

    @property
    def home(self) -> str | None:
        """The Location of the home checker: what latency, burn-rate and certificate alarms read."""
        return self.locations[0] if self.locations else None


class Monitoring(Construct):
    def __init__(self, scope: Construct, id: str, *, config: AppConfig, watched: Watched) -> None:
        super().__init__(scope, id)
        self.config = config
        self.watched = watched
        self.topic = self._topic(config)
        self.action = cw_actions.SnsAction(self.topic)
        self.user_facing: list[cw.IAlarm] = []  # feed ServiceDown, no actions of their own
        self.own_actions: list[cw.IAlarm] = []  # notify by themselves
        self.per_location: list[cw.IAlarm] = []  # read by the quorum alarms; no actions at all
        self.drill_alarms: dict[str, cw.IAlarm] = {}  # per target: the alarm whose ALARM pages for it

        for target in watched.targets:
            if watched.locations:
                self._quorum(target)
            else:
                self._availability(target)
            self._latency(target)
        if watched.locations:
            self._heartbeats()
            self._remote_checker_errors()
        else:
            self._heartbeat()
        if config.deploy_cluster:  # the service's own target: its URL is read at run time
            self._url_read_failures()
        for target in watched.https_targets:
            self._certificate(target)
        if watched.load_balancer is not None and watched.target_group is not None:
            self._load_balancer(watched.load_balancer, watched.target_group)
        self._checker_health()
        # With several locations these read the home checker only: one location's view notifies,
        # the quorum alarm is what pages (issue 13: one location alone never pages).
        self.fast_burn = self._burn_rate("FastBurn", *FAST_BURN, page=not watched.locations)
        self.slow_burn = self._burn_rate("SlowBurn", *SLOW_BURN, page=False)

        self.service_down = cw.CompositeAlarm(
            self,
            "ServiceDown",
            composite_alarm_name=f"{config.name_prefix}-service-down",
            alarm_description=(
                "Users cannot use the service (see the triggering alarm in this message). First: open the "
                "dashboard; if 'Failed probes by reason' shows refused/timeout, check "
                + (
                    f"the pods (kubectl -n {watched.namespace} get pods,events)."
                    if watched.namespace
                    else "the target."
                )
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
        self.dashboard = Dashboard(
            self,
            "Dashboard",
            view=DashboardView(
                name=f"{config.name_prefix}-health",
                targets=tuple(watched.targets),
                https_targets=tuple(watched.https_targets),
                locations=tuple(watched.locations),
                slo_target_percent=config.slo_target_percent,
                latency_percentile=config.latency_percentile,
                latency_threshold_ms=config.latency_threshold_ms,
                cert_expiry_days=config.cert_expiry_days,
                alarms=(self.service_down, *self.user_facing, *self.own_actions),
                checker=watched.checker,
                load_balancer=watched.load_balancer,
                target_group=watched.target_group,
                cluster_name=watched.cluster_name,
                namespace=watched.namespace,
                reads_url=config.deploy_cluster,
            ),
        ).dashboard
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
        self.drill_alarms[target] = self._alarm(
            f"Availability-{target}",
            user_facing=True,
            alarm_description=(
                f"{target} failed {confirm} of its last {timing.evaluation_periods(confirm)} health checks. "
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
            # Datapoints not yet published are not failures; the checker publishes every failure
            # at once, and a silent checker pages through the heartbeat (docs/decisions.md §3).
            treat_missing_data=cw.TreatMissingData.IGNORE,
        )

    def _heartbeat(self) -> None:
        """A dead man's switch: minutes with no probe at all, long enough never to be a healthy gap."""
        periods = timing.heartbeat_periods(self.config.schedule_minutes * 60)
        self._alarm(
            "CheckerHeartbeat",
            user_facing=True,
            alarm_description=(
                f"The health checker published no probe for {periods} minutes: nothing watches the service. "
                "First: the checker Lambda's newest log lines and its Errors/Throttles alarms."
            ),
            metric=checker_metric(contract.AVAILABILITY, self.watched.targets[0], statistic="SampleCount"),
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            threshold=1,
            datapoints_to_alarm=periods,
            evaluation_periods=periods,
            treat_missing_data=cw.TreatMissingData.BREACHING,  # silence is the failure
        )

    def _location_availability(self, target: str, location: str) -> cw.Alarm:
        """One location's view of a target: the single-region availability alarm, without actions."""
        confirm = self.config.confirm_probes
        alarm = cw.Alarm(
            self,
            f"Availability-{target}-{location}",
            alarm_name=f"{self.config.name_prefix}-{target}-availability-{location}",  # read in notifications
            alarm_description=(
                f"{target} failed {confirm} of its last {timing.evaluation_periods(confirm)} health checks "
                f"from {location} (no actions: the quorum alarm pages)."
            ),
            metric=self._availability_metric(target, location),
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            threshold=1,
            datapoints_to_alarm=confirm,
            evaluation_periods=timing.evaluation_periods(confirm),
            treat_missing_data=cw.TreatMissingData.IGNORE,
        )
        self.per_location.append(alarm)
        return alarm

    def _availability_metric(self, target: str, location: str) -> cw.Metric:
        interval = Duration.seconds(self.config.probe_interval_seconds)
        return checker_metric(contract.AVAILABILITY, target, statistic="Minimum", period=interval, location=location)

    def _quorum(self, target: str) -> None:
        """Page when at least `quorum` locations fail in `confirm` of the last `2·confirm − 1` periods.

        Per period, the number of locations whose probe failed: each location's Availability
        (Minimum: 0 when its probe failed), a period it has not published counted as healthy
        (FILL with 1). Every location publishes each failure at once (checker_lambda/run.py), so
        what is not published yet is a success or a probe still running (docs/decisions.md §8).
        """
        c, w = self.config, self.watched
        confirm, n = c.confirm_probes, len(w.locations)
        ids = {f"a{i}": loc for i, loc in enumerate(w.locations)}
        quorum = self._alarm(
            f"Quorum-{target}",
            user_facing=True,
            alarm_description=(
                f"{target} failed {confirm} of its last {timing.evaluation_periods(confirm)} health checks from at "
                f"least {w.quorum} of {n} locations ({', '.join(w.locations)}). First: dashboard 'Failed probes by "
                "reason', then the saved query failed-probes-by-reason."
            ),
            metric=cw.MathExpression(
                expression=" + ".join(f"(1 - FILL({i}, 1))" for i in ids),
                using_metrics={i: self._availability_metric(target, loc) for i, loc in ids.items()},
                label=f"{target}: locations failing",
                period=Duration.seconds(c.probe_interval_seconds),
            ),
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            threshold=w.quorum,
            datapoints_to_alarm=confirm,
            evaluation_periods=timing.evaluation_periods(confirm),
            treat_missing_data=cw.TreatMissingData.IGNORE,
        )
        self.drill_alarms[target] = quorum
        # One location alone: a notification about the machinery (its network, its region), not a
        # page. Suppressed while the quorum alarm catches up with it or clears after it.
        bound = timing.worst_case_quorum_detection(
            interval=c.probe_interval_seconds,
            confirm=confirm,
            timeout=c.probe_timeout_seconds,
            locations=n,
            quorum=w.quorum,
        )
        settle = Duration.seconds(60 * math.ceil(bound / 60))
        # One composite per target, not per location ($0.50 each): its notification names the
        # location's alarm that triggered it, as service-down's names the alarm that paged.
        alone = cw.CompositeAlarm(
            self,
            f"Alone-{target}",
            composite_alarm_name=f"{c.name_prefix}-{target}-location-alone",
            alarm_description=(
                f"A location sees {target} failing and the others do not (fewer than {w.quorum} of {n}): the "
                "triggering alarm in this message names the location. Not a page. First: the dashboard's "
                "per-location lines; a problem on the path from that region, or the start of an outage the "
                "others will see."
            ),
            alarm_rule=cw.AlarmRule.all_of(
                cw.AlarmRule.any_of(*(self._location_availability(target, loc) for loc in w.locations)),
                cw.AlarmRule.not_(cw.AlarmRule.from_alarm(quorum, cw.AlarmState.ALARM)),
            ),
            actions_suppressor=quorum,
            actions_suppressor_wait_period=settle,
            actions_suppressor_extension_period=settle,
        )
        self.own_actions.append(alone)

    def _heartbeats(self) -> None:
        """Per location, the single-region heartbeat without actions; a page when so many are silent
        that a quorum can no longer be reached; one silent location alone notifies."""
        w = self.watched
        periods = timing.heartbeat_periods(self.config.schedule_minutes * 60)
        silent = []
        for loc in w.locations:
            alarm = cw.Alarm(
                self,
                f"CheckerHeartbeat-{loc}",
                alarm_description=f"The checker in {loc} published no probe for {periods} minutes (no actions).",
                metric=checker_metric(contract.AVAILABILITY, w.targets[0], statistic="SampleCount", location=loc),
                comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                threshold=1,
                datapoints_to_alarm=periods,
                evaluation_periods=periods,
                treat_missing_data=cw.TreatMissingData.BREACHING,
            )
            self.per_location.append(alarm)
            silent.append(alarm)
        n, k = len(w.locations), w.quorum
        too_many = n - k + 1  # silent locations that leave fewer than a quorum watching
        self._rule_alarm(
            "CheckersSilent",
            user_facing=True,
            description=(
                f"At least {too_many} of {n} checker locations published no probe for {periods} minutes: fewer than "
                f"{k} are watching, so the quorum alarm cannot page. First: each checker Lambda's newest log lines."
            ),
            rule=at_least(too_many, silent),
        )
        self._rule_alarm(
            "CheckerSilent",
            user_facing=False,
            description=(
                f"A checker location published no probe for {periods} minutes (see the per-location heartbeat "
                "alarms). Not a page while a quorum still watches. First: that region's checker Lambda logs."
            ),
            rule=cw.AlarmRule.any_of(*silent),
        )

    def _remote_checker_errors(self) -> None:
        """Per checker in another region, its failed runs, which it counts here itself
        (checker_lambda/handler.py): its Lambda's Errors metric is in its region, where no alarm
        here can read it. The rule of the home checker's Errors alarm, 2 of 3, over periods of one
        schedule (one invocation each, stamped with its scheduled time). A notification: the
        quorum still watches, and a checker that stops reporting is its heartbeat's."""
        schedule = Duration.minutes(self.config.schedule_minutes)
        for loc in self.watched.locations[1:]:
            self._failed_runs_alarm(
                f"CheckerErrors-{loc}",
                alarm_name=f"{self.config.name_prefix}-checker-errors-{loc}",  # read in notifications
                alarm_description=(
                    f"The health checker in {loc} failed in 2 of its last 3 runs, and said so (its Lambda's own "
                    f"Errors metric is in {loc}). Not a page while a quorum still watches. First: the newest "
                    f"error in its log group in {loc}."
                ),
                metric=own_count(contract.CHECKER_ERRORS, location=loc, period=schedule),
            )

    def _failed_runs_alarm(
        self, id: str, *, alarm_description: str, metric: cw.Metric, alarm_name: str | None = None
    ) -> None:
        """A notification when a count of the checkers' failed runs is non-zero in 2 of the last 3
        periods (one run each): the home checker's Errors, Throttles and FailedInvocations alarms,
        and the counts the checkers publish about themselves."""
        self._alarm(
            id,
            user_facing=False,
            alarm_name=alarm_name,
            alarm_description=alarm_description,
            metric=metric,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            threshold=1,
            datapoints_to_alarm=2,
            evaluation_periods=3,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,  # counted only on a failure
        )

    def _url_read_failures(self) -> None:
        """The checkers' runs whose read of the service's URL failed and that probed the last good
        URL instead (checker_lambda/urls.py), which each counts here itself. A persistent failure
        (an IAM change, a deleted parameter, a bad value) would otherwise probe a stale URL with
        nobody told. One metric without dimensions for every location, so one alarm however many
        there are (each alarm is $0.10 a month); the url_read_failed log lines say which checker.
        2 of the last 3 periods of one schedule, as the checkers' Errors alarms. A notification:
        the probes still run, against the URL last read."""
        where = " in one of the locations" if self.watched.locations else ""
        self._failed_runs_alarm(
            "UrlReadFailures",
            alarm_name=f"{self.config.name_prefix}-url-read-failures",
            alarm_description=(
                f"The health checker{where} could not read the service's URL (SSM parameter {SHARED.url} in the "
                "home region) in 2 of its last 3 runs, and probes the URL it read last, which may be stale. "
                "First: the checkers' log lines of type url_read_failed (their 'why'), in each checker region."
            ),
            metric=own_count(contract.URL_READ_FAILURES, period=Duration.minutes(self.config.schedule_minutes)),
        )

    def _rule_alarm(self, id: str, *, user_facing: bool, description: str, rule: cw.IAlarmRule) -> None:
        alarm = cw.CompositeAlarm(self, id, alarm_description=description, alarm_rule=rule)
        (self.user_facing if user_facing else self.own_actions).append(alarm)

    def _latency(self, target: str) -> None:
        c = self.config
        self._alarm(
            f"Latency-{target}",
            user_facing=not self.watched.locations,  # home checker only: with several, it notifies
            alarm_description=(
                f"{target}: {c.latency_percentile} latency above {c.latency_threshold_ms} ms for 3 of 5 minutes. "
                "First: dashboard 'Timing phases' shows which phase grew (DNS, connect, TLS or the app)."
            ),
            metric=checker_metric(contract.LATENCY, target, statistic=c.latency_percentile, location=self.watched.home),
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
            metric=checker_metric(
                contract.CERT_DAYS_REMAINING,
                target,
                statistic="Minimum",
                period=Duration.hours(1),
                location=self.watched.home,
            ),
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            threshold=days,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,  # no answer: availability pages
        )

    def _load_balancer(self, lb: str, tg: str) -> None:
        self.lb_unhealthy = self._alarm(
            "UnhealthyTargets",
            user_facing=False,
            alarm_description=(
                "A hello pod has failed the load balancer's health check for 3 minutes. First: "
                f"kubectl -n {self.watched.namespace} describe pods (readiness probe, restarts, OOMKilled)."
            ),
            metric=alb_metric("UnHealthyHostCount", lb, target_group=tg, statistic="Maximum"),
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            threshold=1,
            evaluation_periods=3,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        errors = alb_metric("HTTPCode_Target_5XX_Count", lb, statistic="Sum")
        requests = alb_metric("RequestCount", lb, statistic="Sum")
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
        """The checker's own failures, 2 of its last 3 runs. A period is one schedule (one
        invocation): with 1-minute periods and `scheduleMinutes` 2 or more, at most one period in
        three could hold a failure and the alarms could never fire."""
        fn, rule = self.watched.checker, self.watched.checker_rule
        run = Duration.minutes(self.config.schedule_minutes)
        failed_invocations = cw.Metric(
            namespace="AWS/Events",
            metric_name="FailedInvocations",
            dimensions_map={"RuleName": rule.rule_name},
            statistic="Sum",
            period=run,
        )
        for alarm_id, metric, description in (
            (
                "CheckerErrors",
                fn.metric_errors(statistic="Sum", period=run),
                "The health checker Lambda failed in 2 of its last 3 runs (bad settings, or it cannot publish "
                "metrics). First: read the newest error in its log group.",
            ),
            (
                "CheckerThrottles",
                fn.metric_throttles(statistic="Sum", period=run),
                "The health checker Lambda was throttled in 2 of its last 3 runs: the account's concurrency is "
                "exhausted. First: Lambda console, account-level ConcurrentExecutions.",
            ),
            (
                "ScheduleFailures",
                failed_invocations,
                "EventBridge could not invoke the health checker in 2 of its last 3 runs. First: check the "
                "Lambda's resource policy and that the function exists.",
            ),
        ):
            self._failed_runs_alarm(alarm_id, alarm_description=description, metric=metric)

    def _burn_rate(
        self, id: str, long_window: Duration, short_window: Duration, burn: float, *, page: bool
    ) -> cw.CompositeAlarm:
        """Both windows must burn the error budget `burn` times faster than sustainable."""
        budget = 1 - self.config.slo_target_percent / 100
        target = self.watched.targets[0]
        windows = []
        for window in (long_window, short_window):
            alarm = cw.Alarm(
                self,
                f"{id}-{int(window.to_minutes())}m",
                alarm_description=f"Error-budget burn rate over {int(window.to_minutes())} min (no actions).",
                metric=cw.MathExpression(
                    expression=f"(1 - availability) / {budget:.6g}",
                    using_metrics={
                        "availability": checker_metric(
                            contract.AVAILABILITY,
                            target,
                            statistic="Average",
                            period=window,
                            location=self.watched.home,
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
            # The window must be the last `window` minutes, not the last clock hour: a sliding
            # evaluation window (CloudWatch's default, stated so a default cannot change under us).
            cfn = cast(cw.CfnAlarm, alarm.node.default_child)
            cfn.evaluation_window = cw.CfnAlarm.EvaluationWindowProperty(sliding_window={})
            windows.append(alarm)
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


@dataclass(frozen=True)
class DashboardView:
    """What the dashboard shows, and nothing else."""

    name: str
    targets: Sequence[str]
    https_targets: Sequence[str]
    locations: Sequence[str]  # empty: one checker, no Location dimension
    slo_target_percent: float
    latency_percentile: str
    latency_threshold_ms: int
    cert_expiry_days: int
    alarms: Sequence[cw.IAlarm]
    checker: lambda_.IFunction
    load_balancer: str | None = None  # CloudWatch dimensions, as in Watched
    target_group: str | None = None
    cluster_name: str | None = None
    namespace: str | None = None
    reads_url: bool = False  # the service's own target: its URL read from SSM at each run

    def series(self) -> list[tuple[str, str | None]]:
        """(target, location) pairs, one line each; location None without locations."""
        locations: Sequence[str | None] = self.locations or [None]
        return [(t, loc) for t in self.targets for loc in locations]


def _label(target: str, location: str | None) -> str:
    return f"{target} @ {location}" if location else target


class Dashboard(Construct):
    """Is it up, how fast, how loaded, what failed; per location when the checker runs in several."""

    def __init__(self, scope: Construct, id: str, *, view: DashboardView) -> None:
        super().__init__(scope, id)
        v = view
        first = v.targets[0]
        home = v.locations[0] if v.locations else None
        sli = [
            cw.MathExpression(
                expression=f"100 * sli{i}",
                using_metrics={
                    f"sli{i}": checker_metric(
                        contract.AVAILABILITY, first, statistic="Average", period=p, location=home
                    )
                },
                label=f"availability, last {label}",
                period=p,
            )
            for i, (label, p) in enumerate((("1 h", Duration.hours(1)), ("24 h", Duration.days(1))))
        ]
        availability = cw.GraphWidget(
            title="Availability (% of probes healthy)" + (", per location" if v.locations else ""),
            left=[
                cw.MathExpression(
                    expression=f"100 * a{i}",
                    using_metrics={
                        f"a{i}": checker_metric(contract.AVAILABILITY, t, statistic="Average", location=loc)
                    },
                    label=_label(t, loc),
                    period=MINUTE,
                )
                for i, (t, loc) in enumerate(v.series())
            ],
            left_y_axis=cw.YAxisProps(min=0, max=100),
            width=8,
        )
        stats = ("p50", "p90", "p99") if not v.locations else ("p90",)
        latency = cw.GraphWidget(
            title="Latency: checker (ms)" + (", p90 per location" if v.locations else ""),
            left=[
                checker_metric(contract.LATENCY, t, statistic=stat, location=loc).with_(
                    label=f"{_label(t, loc)} {stat}"
                )
                for t, loc in v.series()
                for stat in stats
            ],
            left_annotations=[cw.HorizontalAnnotation(value=v.latency_threshold_ms, label="alarm")],
            width=8,
        )
        phases = cw.GraphWidget(
            title="Timing phases, p90 (ms)" + (f", from {home}" if home else ""),
            left=[
                checker_metric(name, t, statistic="p90", location=home).with_(label=f"{t} {name}")
                for t in v.targets
                for name in contract.PHASE_METRICS
                if name != contract.TLS_TIME or t in v.https_targets  # plain HTTP has no TLS phase
            ],
            stacked=True,
            width=8,
        )
        dims = [contract.NAMESPACE, contract.TARGET] + ([contract.LOCATION] if v.locations else []) + [contract.REASON]
        failures = cw.GraphWidget(
            title="Errors: failed probes by reason" + (" and location" if v.locations else ""),
            left=[
                cw.MathExpression(
                    expression=f"SEARCH('{{{','.join(dims)}}} MetricName=\"{contract.FAILURES}\"', 'Sum', 60)",
                    label="",
                    period=MINUTE,
                )
            ],
            width=8,
        )
        # What the checkers count here themselves: the remote ones' failed runs (their Lambda
        # metrics live in their regions) and failed URL reads (every location, one metric).
        own_counts = [
            own_count(contract.CHECKER_ERRORS, location=loc, label=f"failed runs @ {loc}") for loc in v.locations[1:]
        ]
        if v.reads_url:
            own_counts.append(own_count(contract.URL_READ_FAILURES, label="URL reads failed (every location)"))
        checker = cw.GraphWidget(
            title="Checker Lambda" + (f" ({home}) and the checkers' own counts" if home else ""),
            left=[v.checker.metric_invocations(period=MINUTE), v.checker.metric_errors(period=MINUTE), *own_counts],
            right=[v.checker.metric_duration(statistic="Maximum", period=MINUTE)],
            width=8,
        )
        alarms = cw.AlarmStatusWidget(title="Alarms", alarms=list(v.alarms), width=8, height=8)
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=v.name, default_interval=Duration.hours(3))
        self.dashboard.add_widgets(
            cw.SingleValueWidget(title=f"Availability SLI ({first})", metrics=sli, width=8, height=4),
            cw.TextWidget(
                markdown=(
                    f"**SLO** {v.slo_target_percent}% of probes healthy over 30 days. "
                    f"Latency alarm: {v.latency_percentile} > {v.latency_threshold_ms} ms."
                    + (f" Locations: {', '.join(v.locations)} (home {home})." if v.locations else "")
                ),
                width=16,
                height=4,
            ),
        )
        self.dashboard.add_widgets(availability, latency, phases)
        if v.load_balancer is not None and v.target_group is not None:
            self.dashboard.add_widgets(*self._load_balancer(v.load_balancer, v.target_group))
            self.dashboard.add_widgets(failures, self._targets(v.load_balancer, v.target_group), checker)
        else:
            self.dashboard.add_widgets(failures, checker, alarms)
        if v.cluster_name is not None and v.namespace is not None:
            self.dashboard.add_widgets(
                cw.GraphWidget(
                    title="Saturation: pods (% of limit)",
                    left=[
                        self._insights(name, v.cluster_name, v.namespace)
                        for name in ("pod_cpu_utilization_over_pod_limit", "pod_memory_utilization_over_pod_limit")
                    ],
                    width=8,
                ),
                cw.GraphWidget(
                    title="Saturation: nodes (%)",
                    left=[
                        self._insights(name, v.cluster_name, None)
                        for name in ("node_cpu_utilization", "node_memory_utilization")
                    ],
                    width=8,
                ),
                alarms,
            )
        if v.https_targets:
            self.dashboard.add_widgets(
                cw.GraphWidget(
                    title="TLS certificate days remaining",
                    left=[
                        checker_metric(
                            contract.CERT_DAYS_REMAINING,
                            t,
                            statistic="Minimum",
                            period=Duration.hours(1),
                            location=home,
                        )
                        for t in v.https_targets
                    ],
                    left_annotations=[cw.HorizontalAnnotation(value=v.cert_expiry_days, label="alarm")],
                    width=8,
                )
            )

    @staticmethod
    def _load_balancer(lb: str, tg: str) -> tuple[cw.GraphWidget, ...]:
        lb_latency = cw.GraphWidget(
            title="Latency: load balancer to pods (s)",
            left=[alb_metric("TargetResponseTime", lb, statistic=s, label=s) for s in ("p50", "p90", "p99")],
            width=8,
        )
        traffic = cw.GraphWidget(
            title="Traffic: requests per second",
            left=[
                cw.MathExpression(
                    expression="requests / PERIOD(requests)",
                    using_metrics={"requests": alb_metric("RequestCount", lb, statistic="Sum")},
                    label="requests/s",
                    period=MINUTE,
                )
            ],
            width=8,
        )
        status_codes = cw.GraphWidget(
            title="Errors: responses by class",
            left=[
                alb_metric(f"HTTPCode_Target_{code}_Count", lb, statistic="Sum", label=code.lower())
                for code in ("2XX", "3XX", "4XX", "5XX")
            ]
            + [alb_metric("HTTPCode_ELB_5XX_Count", lb, statistic="Sum", label="5xx from the ALB")],
            width=8,
        )
        return lb_latency, traffic, status_codes

    @staticmethod
    def _targets(lb: str, tg: str) -> cw.GraphWidget:
        return cw.GraphWidget(
            title="Load balancer targets",
            left=[
                alb_metric("HealthyHostCount", lb, target_group=tg, statistic="Minimum", label="healthy"),
                alb_metric("UnHealthyHostCount", lb, target_group=tg, statistic="Maximum", label="unhealthy"),
            ],
            width=8,
        )

    @staticmethod
    def _insights(name: str, cluster_name: str, namespace: str | None) -> cw.Metric:
        dims = {"ClusterName": cluster_name}
        if namespace is not None:
            dims |= {"Namespace": namespace, "PodName": "hello"}
        return cw.Metric(
            namespace="ContainerInsights", metric_name=name, dimensions_map=dims, statistic="Average", period=MINUTE
        )
