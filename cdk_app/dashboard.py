"""The dashboard of the four golden signals, per location when the checker runs in several."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk_app import alarm_plan as ap
from checker_lambda import contract

MINUTE = Duration.minutes(1)


def render(m: ap.Metric, tokens: Mapping[str, str] | None = None, label: str | None = None) -> cw.Metric:
    """A plan's metric as a CDK metric, its placeholders (ap.CHECKER_FUNCTION, ...) replaced by
    the deploy's names: what the alarms (monitoring.py) and the dashboard read."""
    tokens = tokens or {}
    return cw.Metric(
        namespace=m.namespace,
        metric_name=m.name,
        dimensions_map={k: tokens.get(v, v) for k, v in m.dimensions} or None,
        statistic=m.statistic,
        period=Duration.seconds(m.period),
        label=label,
    )


def checker_metric(
    name: str, target: str, *, statistic: str, period: Duration = MINUTE, location: str | None = None
) -> cw.Metric:
    return render(
        ap.checker_metric(name, target, statistic=statistic, period=int(period.to_seconds()), location=location)
    )


def own_count(name: str, *, location: str | None = None, label: str | None = None) -> cw.Metric:
    return render(ap.own_count(name, location=location), label=label)


def alb_metric(
    name: str, load_balancer: str, *, statistic: str, target_group: str | None = None, label: str | None = None
) -> cw.Metric:
    m = ap.alb_metric(name, statistic=statistic, target_group=target_group is not None)
    tokens = {ap.LOAD_BALANCER: load_balancer, **({ap.TARGET_GROUP: target_group} if target_group else {})}
    return render(m, tokens, label=label)


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
        home = v.locations[0] if v.locations else None
        failures, checker = _failures(v), _checker(v, home)
        alarms = cw.AlarmStatusWidget(title="Alarms", alarms=list(v.alarms), width=8, height=8)
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=v.name, default_interval=Duration.hours(3))
        self.dashboard.add_widgets(*_headline(v, home))
        self.dashboard.add_widgets(_availability(v), _latency(v), _phases(v, home))
        if v.load_balancer is not None and v.target_group is not None:
            self.dashboard.add_widgets(*self._load_balancer(v.load_balancer, v.target_group))
            self.dashboard.add_widgets(failures, self._targets(v.load_balancer, v.target_group), checker)
        else:
            self.dashboard.add_widgets(failures, checker, alarms)
        if v.cluster_name is not None and v.namespace is not None:
            self.dashboard.add_widgets(*self._saturation(v.cluster_name, v.namespace), alarms)
        if v.https_targets:
            self.dashboard.add_widgets(_certificates(v, home))

    def _saturation(self, cluster_name: str, namespace: str) -> tuple[cw.GraphWidget, ...]:
        return (
            cw.GraphWidget(
                title="Saturation: pods (% of limit)",
                left=[
                    self._insights(name, cluster_name, namespace)
                    for name in ("pod_cpu_utilization_over_pod_limit", "pod_memory_utilization_over_pod_limit")
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Saturation: nodes (%)",
                left=[
                    self._insights(name, cluster_name, None)
                    for name in ("node_cpu_utilization", "node_memory_utilization")
                ],
                width=8,
            ),
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


def _headline(v: DashboardView, home: str | None) -> tuple[cw.IWidget, ...]:
    """The first target's availability SLI over 1 h and 24 h, and what the SLO and alarms are."""
    first = v.targets[0]
    sli = [
        cw.MathExpression(
            expression=f"100 * sli{i}",
            using_metrics={
                f"sli{i}": checker_metric(contract.AVAILABILITY, first, statistic="Average", period=p, location=home)
            },
            label=f"availability, last {label}",
            period=p,
        )
        for i, (label, p) in enumerate((("1 h", Duration.hours(1)), ("24 h", Duration.days(1))))
    ]
    return (
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


def _availability(v: DashboardView) -> cw.GraphWidget:
    return cw.GraphWidget(
        title="Availability (% of probes healthy)" + (", per location" if v.locations else ""),
        left=[
            cw.MathExpression(
                expression=f"100 * a{i}",
                using_metrics={f"a{i}": checker_metric(contract.AVAILABILITY, t, statistic="Average", location=loc)},
                label=_label(t, loc),
                period=MINUTE,
            )
            for i, (t, loc) in enumerate(v.series())
        ],
        left_y_axis=cw.YAxisProps(min=0, max=100),
        width=8,
    )


def _latency(v: DashboardView) -> cw.GraphWidget:
    stats = ("p50", "p90", "p99") if not v.locations else ("p90",)
    return cw.GraphWidget(
        title="Latency: checker (ms)" + (", p90 per location" if v.locations else ""),
        left=[
            checker_metric(contract.LATENCY, t, statistic=stat, location=loc).with_(label=f"{_label(t, loc)} {stat}")
            for t, loc in v.series()
            for stat in stats
        ],
        left_annotations=[cw.HorizontalAnnotation(value=v.latency_threshold_ms, label="alarm")],
        width=8,
    )


def _phases(v: DashboardView, home: str | None) -> cw.GraphWidget:
    return cw.GraphWidget(
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


def _failures(v: DashboardView) -> cw.GraphWidget:
    dims = [contract.NAMESPACE, contract.TARGET] + ([contract.LOCATION] if v.locations else []) + [contract.REASON]
    return cw.GraphWidget(
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


def _checker(v: DashboardView, home: str | None) -> cw.GraphWidget:
    # What the checkers count here themselves: the remote ones' failed runs (their Lambda
    # metrics live in their regions) and failed URL reads (every location, one metric).
    own_counts = [
        own_count(contract.CHECKER_ERRORS, location=loc, label=f"failed runs @ {loc}") for loc in v.locations[1:]
    ]
    if v.reads_url:
        own_counts.append(own_count(contract.URL_READ_FAILURES, label="URL reads failed (every location)"))
    return cw.GraphWidget(
        title="Checker Lambda" + (f" ({home}) and the checkers' own counts" if home else ""),
        left=[v.checker.metric_invocations(period=MINUTE), v.checker.metric_errors(period=MINUTE), *own_counts],
        right=[v.checker.metric_duration(statistic="Maximum", period=MINUTE)],
        width=8,
    )


def _certificates(v: DashboardView, home: str | None) -> cw.GraphWidget:
    return cw.GraphWidget(
        title="TLS certificate days remaining",
        left=[
            checker_metric(
                contract.CERT_DAYS_REMAINING, t, statistic="Minimum", period=Duration.hours(1), location=home
            )
            for t in v.https_targets
        ],
        left_annotations=[cw.HorizontalAnnotation(value=v.cert_expiry_days, label="alarm")],
        width=8,
    )
