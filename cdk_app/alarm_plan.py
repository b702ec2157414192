"""The alarm plan as data: every alarm and composite alarm, computed from the configuration alone.

No CDK here. `cdk_app/monitoring.py` renders the plan into CloudFormation and the dashboard;
`tools/local.py` puts the availability alarm into its emulator and evaluates the quorum from it;
the tests and `tests/simulate.py` evaluate it: composites over member states (`Rule.holds`), metric
alarms over series in time (`Alarm.datapoint` and `evaluate`), the way `promtool test rules` does.

Paging design: every alarm that means "users are affected" (availability or a quorum of
locations, latency, 5xx, fast SLO burn) and the checkers' silence (nobody is watching) feed one
composite alarm, service-down, and only the composite pages; so one outage sends one message,
naming the alarm that tripped. Alarms about the machinery (the checkers' own failures, a pod
failing its health check, a certificate about to expire, a slow SLO burn, one location alone)
notify on their own. The rest (per-location alarms, burn-rate windows) only feed composites.
"""

from __future__ import annotations

import ast
import itertools
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cdk_app.config import SHARED, AppConfig
from checker_lambda import contract, timing
from notifier import contract as notifier
from notifier.contract import Verdict

MINUTE = 60
HOUR = 3600
# Multi-window burn-rate alerting (Google SRE workbook): (long window, short window, burn rate), seconds.
FAST_BURN = (HOUR, 5 * MINUTE, 14.4)  # 2% of a 30-day budget in an hour
SLOW_BURN = (6 * HOUR, 30 * MINUTE, 6.0)  # 5% of a 30-day budget in six hours
SERVICE_DOWN = "ServiceDown"  # the composite that pages
DEFAULT_TARGET = "hello"  # the service's own target, when there is a cluster

# Dimension values only the deploy knows: the renderer puts the resource's name in their place.
CHECKER_FUNCTION = "<checker function name>"
SCHEDULE_RULE = "<checker schedule rule name>"
LOAD_BALANCER = "<load balancer full name>"
TARGET_GROUP = "<target group full name>"
NOTIFIER_FUNCTION = "<notifier function name>"
UNDELIVERED_QUEUE = "<undelivered alerts queue name>"

ALARM, OK, INSUFFICIENT = "ALARM", "OK", "INSUFFICIENT_DATA"


class Missing(StrEnum):
    """TreatMissingData, as CloudFormation spells it."""

    BREACHING = "breaching"
    NOT_BREACHING = "notBreaching"
    IGNORE = "ignore"
    MISSING = "missing"


class Comparison(StrEnum):
    LESS = "LessThanThreshold"
    GREATER = "GreaterThanThreshold"
    GREATER_OR_EQUAL = "GreaterThanOrEqualToThreshold"

    def breaches(self, value: float, threshold: float) -> bool:
        if self is Comparison.LESS:
            return value < threshold
        if self is Comparison.GREATER:
            return value > threshold
        return value >= threshold


@dataclass(frozen=True)
class Metric:
    """One metric's identity and how an alarm reads it."""

    name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    period: int  # seconds
    namespace: str = contract.NAMESPACE

    @property
    def dims(self) -> dict[str, str]:
        return dict(self.dimensions)


@dataclass(frozen=True)
class Math:
    """A metric-math expression over named metrics (CloudWatch's syntax, which Python's parses)."""

    expression: str
    metrics: tuple[tuple[str, Metric], ...]
    label: str
    period: int

    def value(self, values: Mapping[str, float | None]) -> float | None:
        """The expression for one period; `values`: each metric's statistic then, None if it has none."""
        return _math(ast.parse(self.expression, mode="eval").body, values)


def checker_metric(
    name: str, target: str, *, statistic: str, period: int = MINUTE, location: str | None = None
) -> Metric:
    dims = ((contract.TARGET, target),) + (((contract.LOCATION, location),) if location else ())
    return Metric(name, dims, statistic, period)


def own_count(name: str, *, location: str | None = None, period: int = MINUTE) -> Metric:
    """A count the checkers publish about themselves (CHECKER_ERRORS by location,
    URL_READ_FAILURES without dimensions), summed per period."""
    return Metric(name, ((contract.LOCATION, location),) if location else (), "Sum", period)


def alb_metric(name: str, *, statistic: str, target_group: bool = False) -> Metric:
    """An AWS/ApplicationELB metric of the service's load balancer (and of its target group)."""
    dims = (("LoadBalancer", LOAD_BALANCER),) + ((("TargetGroup", TARGET_GROUP),) if target_group else ())
    return Metric(name, dims, statistic, MINUTE, namespace="AWS/ApplicationELB")


# --- composite rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Is:
    """An alarm is in a state: CloudWatch's ALARM("arn")."""

    alarm: str  # an alarm's id in the plan
    state: str = ALARM

    def holds(self, states: Mapping[str, str]) -> bool:
        return states[self.alarm] == self.state

    def members(self) -> list[str]:
        return [self.alarm]


@dataclass(frozen=True)
class AnyOf:
    rules: tuple[Rule, ...]

    def holds(self, states: Mapping[str, str]) -> bool:
        return any(r.holds(states) for r in self.rules)

    def members(self) -> list[str]:
        return list(dict.fromkeys(a for r in self.rules for a in r.members()))


@dataclass(frozen=True)
class AllOf:
    rules: tuple[Rule, ...]

    def holds(self, states: Mapping[str, str]) -> bool:
        return all(r.holds(states) for r in self.rules)

    def members(self) -> list[str]:
        return list(dict.fromkeys(a for r in self.rules for a in r.members()))


@dataclass(frozen=True)
class Not:
    rule: Rule

    def holds(self, states: Mapping[str, str]) -> bool:
        return not self.rule.holds(states)

    def members(self) -> list[str]:
        return self.rule.members()


Rule = Is | AnyOf | AllOf | Not


def any_of(ids: Iterable[str]) -> AnyOf:
    return AnyOf(tuple(Is(i) for i in ids))


def at_least(k: int, ids: Sequence[str]) -> AnyOf:
    """ALARM when at least k of the alarms are: a composite rule has no counting, so any k of them,
    all in ALARM. The rule grows as C(n, k)·k alarm ARNs; config refuses settings whose rule would
    pass AWS's 10,240 characters (config's silent_rule_fits)."""
    if k <= 1:
        return any_of(ids)
    return AnyOf(tuple(AllOf(tuple(Is(i) for i in combo)) for combo in itertools.combinations(ids, k)))


# --- alarms -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alarm:
    id: str  # the construct id, unique in the plan
    description: str
    metric: Metric | Math
    comparison: Comparison
    threshold: float
    periods: int  # N, EvaluationPeriods
    missing: Missing
    # M, DatapointsToAlarm; None: not set, which CloudWatch reads as N.
    datapoints_to_alarm: int | None = None
    actions: bool = False  # notifies the topic on ALARM and on OK by itself
    feeds_service_down: bool = False
    name: str | None = None  # a fixed AlarmName, where notifications or tools read it
    sliding: bool = False  # the evaluation window slides (stated, so a default cannot change under us)
    verdict: Verdict = Verdict.DEGRADED  # what its notification says, in words (notifier/page.py)

    @property
    def datapoints(self) -> int:
        return self.datapoints_to_alarm or self.periods

    def datapoint(self, values: Mapping[str, float | None]) -> bool | None:
        """Whether one period breaches, given the statistic of each metric it reads (by name for a
        Math, under "" for a plain metric); None: no datapoint."""
        value = self.metric.value(values) if isinstance(self.metric, Math) else values.get("")
        return None if value is None else self.comparison.breaches(value, self.threshold)

    def metrics(self) -> list[Metric]:
        return [m for _, m in self.named_metrics()]

    def named_metrics(self) -> list[tuple[str, Metric]]:
        """The metrics it reads by their id in its expression ("" for a plain metric)."""
        return list(self.metric.metrics) if isinstance(self.metric, Math) else [("", self.metric)]


@dataclass(frozen=True)
class Composite:
    id: str
    description: str
    rule: Rule
    actions: bool = False
    feeds_service_down: bool = False
    name: str | None = None
    suppressor: str | None = None  # the alarm whose ALARM suppresses this one's actions
    suppressor_wait: int = 0  # seconds
    suppressor_extension: int = 0
    verdict: Verdict = Verdict.DEGRADED


@dataclass(frozen=True)
class Plan:
    alarms: tuple[Alarm | Composite, ...]  # in the order they are created; members before composites
    targets: tuple[str, ...]  # the first is the service's own when there is a cluster
    https_targets: tuple[str, ...]
    locations: tuple[str, ...]  # empty: one checker, no Location dimension
    quorum: int
    drill: Mapping[str, str] = field(default_factory=dict)  # per target, the alarm whose ALARM pages for it

    def __getitem__(self, id: str) -> Alarm | Composite:
        for a in self.alarms:
            if a.id == id:
                return a
        raise KeyError(id)

    @property
    def metric_alarms(self) -> list[Alarm]:
        return [a for a in self.alarms if isinstance(a, Alarm)]

    @property
    def composites(self) -> list[Composite]:
        return [a for a in self.alarms if isinstance(a, Composite)]

    def feeding(self) -> list[str]:
        return [a.id for a in self.alarms if a.feeds_service_down]

    def notifying(self) -> list[str]:
        return [a.id for a in self.alarms if a.actions]

    def pages(self, states: Mapping[str, str]) -> bool:
        """Whether service-down is in ALARM, given every other alarm's state (composites are
        computed from their members)."""
        return self.states(states)[SERVICE_DOWN] == ALARM

    def states(self, metric_states: Mapping[str, str]) -> dict[str, str]:
        """Every alarm's state: the metric alarms' as given (OK where not), each composite's from
        its rule, in the plan's order (members first)."""
        states = {a.id: metric_states.get(a.id, OK) for a in self.metric_alarms}
        for c in self.composites:
            states[c.id] = ALARM if c.rule.holds(states) else OK
        return states


def plan(config: AppConfig) -> Plan:
    return _Planner(config).plan()


def availability_alarm(target: str, *, interval: int, confirm: int) -> Alarm:
    """One checker's view of a target (no Location): `confirm` failed probes of the last
    2·confirm − 1 periods of one probe each page, through service-down."""
    return Alarm(
        f"Availability-{target}",
        description=(
            f"{target} failed {confirm} of its last {timing.evaluation_periods(confirm)} health checks. "
            "First: dashboard 'Failed probes by reason', then the saved query failed-probes-by-reason."
        ),
        metric=checker_metric(contract.AVAILABILITY, target, statistic="Minimum", period=interval),
        comparison=Comparison.LESS,
        threshold=1,
        datapoints_to_alarm=confirm,
        periods=timing.evaluation_periods(confirm),
        # Datapoints not yet published are not failures; the checker publishes every failure
        # at once, and a silent checker pages through the heartbeat (docs/decisions.md §3).
        missing=Missing.IGNORE,
        feeds_service_down=True,
        verdict=Verdict.DOWN,
    )


def quorum_alarm(target: str, *, interval: int, confirm: int, locations: Sequence[str], quorum: int) -> Alarm:
    """Page when at least `quorum` locations fail in `confirm` of the last `2·confirm − 1` periods.

    Per period, the number of locations whose probe failed: each location's Availability
    (Minimum: 0 when its probe failed), a period it has not published counted as healthy
    (FILL with 1). Every location publishes each failure at once (checker_lambda/run.py), so
    what is not published yet is a success or a probe still running (docs/decisions.md §8).
    """
    ids = {f"a{i}": loc for i, loc in enumerate(locations)}
    return Alarm(
        f"Quorum-{target}",
        description=(
            f"{target} failed {confirm} of its last {timing.evaluation_periods(confirm)} health checks from "
            f"at least {quorum} of {len(locations)} locations ({', '.join(locations)}). First: dashboard 'Failed "
            "probes by reason', then the saved query failed-probes-by-reason."
        ),
        metric=Math(
            expression=" + ".join(f"(1 - FILL({i}, 1))" for i in ids),
            metrics=tuple(
                (i, checker_metric(contract.AVAILABILITY, target, statistic="Minimum", period=interval, location=loc))
                for i, loc in ids.items()
            ),
            label=f"{target}: locations failing",
            period=interval,
        ),
        comparison=Comparison.GREATER_OR_EQUAL,
        threshold=quorum,
        datapoints_to_alarm=confirm,
        periods=timing.evaluation_periods(confirm),
        missing=Missing.IGNORE,
        feeds_service_down=True,
        verdict=Verdict.DOWN,
    )


class _Planner:
    def __init__(self, config: AppConfig) -> None:
        self.c = config
        self.cluster = config.deploy_cluster
        self.targets = (*([DEFAULT_TARGET] if self.cluster else []), *(t.name for t in config.extra_targets))
        self.https = (
            *([DEFAULT_TARGET] if self.cluster and config.https else []),
            *(t.name for t in config.extra_targets if t.https),
        )
        self.locations = config.locations
        self.home = self.locations[0] if self.locations else None
        self.alarms: list[Alarm | Composite] = []
        self.drill: dict[str, str] = {}

    def add(self, alarm: Alarm | Composite) -> str:
        self.alarms.append(alarm)
        return alarm.id

    def plan(self) -> Plan:
        for target in self.targets:
            if self.locations:
                self.quorum(target)
            else:
                self.availability(target)
            self.latency(target)
        if self.locations:
            self.heartbeats()
            self.remote_checker_errors()
        else:
            self.heartbeat()
        if self.cluster:  # the service's own target: its URL is read at run time
            self.url_read_failures()
        for target in self.https:
            self.certificate(target)
        if self.cluster:
            self.load_balancer()
        self.checker_health()
        if self.c.alert_channels:
            self.notifier()
        # With several locations these read the home checker only: one location's view notifies,
        # the quorum alarm is what pages (issue 13: one location alone never pages).
        self.burn_rate("FastBurn", *FAST_BURN, page=not self.locations)
        self.burn_rate("SlowBurn", *SLOW_BURN, page=False)
        namespace = self.c.namespace if self.cluster else None
        self.add(
            Composite(
                SERVICE_DOWN,
                name=f"{self.c.name_prefix}-service-down",
                description=(
                    "Users cannot use the service (see the triggering alarm in this message). First: open the "
                    "dashboard; if 'Failed probes by reason' shows refused/timeout, check "
                    + (f"the pods (kubectl -n {namespace} get pods,events)." if namespace else "the target.")
                ),
                rule=any_of(a.id for a in self.alarms if a.feeds_service_down),
                actions=True,
                verdict=Verdict.DOWN,
            )
        )
        return Plan(
            alarms=tuple(self.alarms),
            targets=self.targets,
            https_targets=self.https,
            locations=self.locations,
            quorum=self.c.quorum,
            drill=self.drill,
        )

    def availability(self, target: str) -> None:
        c = self.c
        self.drill[target] = self.add(
            availability_alarm(target, interval=c.probe_interval_seconds, confirm=c.confirm_probes)
        )

    def heartbeat(self) -> None:
        """A dead man's switch: minutes with no probe at all, long enough never to be a healthy gap."""
        periods = timing.heartbeat_periods(self.c.schedule_minutes * 60)
        self.add(
            Alarm(
                "CheckerHeartbeat",
                description=(
                    f"The health checker published no probe for {periods} minutes: nothing watches the service. "
                    "First: the checker Lambda's newest log lines and its Errors/Throttles alarms."
                ),
                metric=checker_metric(contract.AVAILABILITY, self.targets[0], statistic="SampleCount"),
                comparison=Comparison.LESS,
                threshold=1,
                datapoints_to_alarm=periods,
                periods=periods,
                missing=Missing.BREACHING,  # silence is the failure
                feeds_service_down=True,
                verdict=Verdict.CHECKER,
            )
        )

    def quorum(self, target: str) -> None:
        """The quorum alarm (quorum_alarm), and what each location sees alone."""
        c, locations, k = self.c, self.locations, self.c.quorum
        confirm, n = c.confirm_probes, len(locations)
        quorum = self.add(
            quorum_alarm(target, interval=c.probe_interval_seconds, confirm=confirm, locations=locations, quorum=k)
        )
        self.drill[target] = quorum
        # One location alone: a notification about the machinery (its network, its region), not a
        # page. Suppressed while the quorum alarm catches up with it or clears after it.
        bound = timing.worst_case_quorum_detection(
            interval=c.probe_interval_seconds,
            confirm=confirm,
            timeout=c.probe_timeout_seconds,
            locations=n,
            quorum=k,
        )
        settle = 60 * math.ceil(bound / 60)
        seen = [
            self.add(
                Alarm(
                    f"Availability-{target}-{loc}",
                    name=f"{c.name_prefix}-{target}-availability-{loc}",  # read in notifications
                    description=(
                        f"{target} failed {confirm} of its last {timing.evaluation_periods(confirm)} health checks "
                        f"from {loc} (no actions: the quorum alarm pages)."
                    ),
                    metric=checker_metric(
                        contract.AVAILABILITY,
                        target,
                        statistic="Minimum",
                        period=c.probe_interval_seconds,
                        location=loc,
                    ),
                    comparison=Comparison.LESS,
                    threshold=1,
                    datapoints_to_alarm=confirm,
                    periods=timing.evaluation_periods(confirm),
                    missing=Missing.IGNORE,
                    verdict=Verdict.DOWN,
                )
            )
            for loc in locations
        ]
        # One composite per target, not per location ($0.50 each): its notification names the
        # location's alarm that triggered it, as service-down's names the alarm that paged.
        self.add(
            Composite(
                f"Alone-{target}",
                name=f"{c.name_prefix}-{target}-location-alone",
                description=(
                    f"A location sees {target} failing and the others do not (fewer than {k} of {n}): the "
                    "triggering alarm in this message names the location. Not a page. First: the dashboard's "
                    "per-location lines; a problem on the path from that region, or the start of an outage the "
                    "others will see."
                ),
                rule=AllOf((any_of(seen), Not(Is(quorum)))),
                actions=True,
                suppressor=quorum,
                suppressor_wait=settle,
                suppressor_extension=settle,
            )
        )

    def heartbeats(self) -> None:
        """Per location, the single-region heartbeat without actions; a page when so many are silent
        that a quorum can no longer be reached; one silent location alone notifies."""
        periods = timing.heartbeat_periods(self.c.schedule_minutes * 60)
        silent = [
            self.add(
                Alarm(
                    f"CheckerHeartbeat-{loc}",
                    description=f"The checker in {loc} published no probe for {periods} minutes (no actions).",
                    metric=checker_metric(
                        contract.AVAILABILITY, self.targets[0], statistic="SampleCount", location=loc
                    ),
                    comparison=Comparison.LESS,
                    threshold=1,
                    datapoints_to_alarm=periods,
                    periods=periods,
                    missing=Missing.BREACHING,
                    verdict=Verdict.CHECKER,
                )
            )
            for loc in self.locations
        ]
        n, k = len(self.locations), self.c.quorum
        too_many = n - k + 1  # silent locations that leave fewer than a quorum watching
        self.add(
            Composite(
                "CheckersSilent",
                description=(
                    f"At least {too_many} of {n} checker locations published no probe for {periods} minutes: fewer "
                    f"than {k} are watching, so the quorum alarm cannot page. First: each checker Lambda's newest "
                    "log lines."
                ),
                rule=at_least(too_many, silent),
                feeds_service_down=True,
                verdict=Verdict.CHECKER,
            )
        )
        self.add(
            Composite(
                "CheckerSilent",
                description=(
                    f"A checker location published no probe for {periods} minutes (see the per-location heartbeat "
                    "alarms). Not a page while a quorum still watches. First: that region's checker Lambda logs."
                ),
                rule=any_of(silent),
                actions=True,
                verdict=Verdict.CHECKER,
            )
        )

    def failed_runs(
        self,
        id: str,
        *,
        description: str,
        metric: Metric | Math,
        name: str | None = None,
        datapoints: int = 2,
        verdict: Verdict = Verdict.CHECKER,
    ) -> None:
        """A notification when a count of the checkers' failed runs is non-zero in 2 of the last 3
        periods (one run each): the home checker's Errors, Throttles and FailedInvocations alarms,
        and the counts the checkers publish about themselves."""
        self.add(
            Alarm(
                id,
                name=name,
                description=description,
                metric=metric,
                comparison=Comparison.GREATER_OR_EQUAL,
                threshold=1,
                datapoints_to_alarm=datapoints,
                periods=2 * datapoints - 1,
                missing=Missing.NOT_BREACHING,  # counted only on a failure
                actions=True,
                verdict=verdict,
            )
        )

    def remote_checker_errors(self) -> None:
        """Per checker in another region, its failed runs, which it counts here itself
        (checker_lambda/handler.py): its Lambda's Errors metric is in its region, where no alarm
        here can read it. The rule of the home checker's Errors alarm, 2 of 3, over periods of one
        schedule (one invocation each, stamped with its scheduled time). A notification: the
        quorum still watches, and a checker that stops reporting is its heartbeat's."""
        for loc in self.locations[1:]:
            self.failed_runs(
                f"CheckerErrors-{loc}",
                name=f"{self.c.name_prefix}-checker-errors-{loc}",  # read in notifications
                description=(
                    f"The health checker in {loc} failed in 2 of its last 3 runs, and said so (its Lambda's own "
                    f"Errors metric is in {loc}). Not a page while a quorum still watches. First: the newest "
                    f"error in its log group in {loc}."
                ),
                metric=own_count(contract.CHECKER_ERRORS, location=loc, period=self.c.schedule_minutes * 60),
            )

    def notifier(self) -> None:
        """The notifier's own failures and what it could not deliver (cdk_app/notifier.py): both
        email through the topic, so email stays the path of last resort."""
        function = (("FunctionName", NOTIFIER_FUNCTION),)
        self.failed_runs(
            "NotifierFailures",
            name=f"{self.c.name_prefix}-notifier-failures",
            description=(
                "The notifier could not deliver a page to every alertChannels destination (or failed, or could "
                "not queue what it failed to deliver). First: its log lines of type delivery (which channel, "
                "which error), then the undelivered-alerts queue."
            ),
            metric=Math(
                expression="FILL(undelivered, 0) + FILL(errors, 0) + FILL(unqueued, 0)",
                metrics=(
                    ("undelivered", Metric(notifier.DELIVERY_FAILURES, (), "Sum", MINUTE, notifier.NAMESPACE)),
                    ("errors", Metric("Errors", function, "Sum", MINUTE, namespace="AWS/Lambda")),
                    (
                        "unqueued",
                        Metric("DestinationDeliveryFailures", function, "Sum", MINUTE, namespace="AWS/Lambda"),
                    ),
                ),
                label="notifier failures",
                period=MINUTE,
            ),
            datapoints=1,
            verdict=Verdict.DELIVERY,
        )
        self.add(
            Alarm(
                "UndeliveredAlerts",
                name=f"{self.c.name_prefix}-undelivered-alerts",
                description=(
                    "Pages wait in the undelivered-alerts queue: a chat or paging channel did not take them. "
                    "First: read them (the original alarm message is in each) and the notifier's delivery log lines."
                ),
                metric=Metric(
                    "ApproximateNumberOfMessagesVisible",
                    (("QueueName", UNDELIVERED_QUEUE),),
                    "Maximum",
                    MINUTE,
                    namespace="AWS/SQS",
                ),
                comparison=Comparison.GREATER,
                threshold=0,
                periods=1,
                missing=Missing.NOT_BREACHING,
                actions=True,
                verdict=Verdict.DELIVERY,
            )
        )

    def url_read_failures(self) -> None:
        """The checkers' runs whose read of the service's URL failed and that probed the last good
        URL instead (checker_lambda/urls.py), which each counts here itself. A persistent failure
        (an IAM change, a deleted parameter, a bad value) would otherwise probe a stale URL with
        nobody told. One metric without dimensions for every location, so one alarm however many
        there are (each alarm is $0.10 a month); the url_read_failed log lines say which checker.
        A notification: the probes still run, against the URL last read."""
        where = " in one of the locations" if self.locations else ""
        self.failed_runs(
            "UrlReadFailures",
            name=f"{self.c.name_prefix}-url-read-failures",
            description=(
                f"The health checker{where} could not read the service's URL (SSM parameter {SHARED.url} in the "
                "home region) in 2 of its last 3 runs, and probes the URL it read last, which may be stale. "
                "First: the checkers' log lines of type url_read_failed (their 'why'), in each checker region."
            ),
            metric=own_count(contract.URL_READ_FAILURES, period=self.c.schedule_minutes * 60),
        )

    def latency(self, target: str) -> None:
        c = self.c
        self.add(
            Alarm(
                f"Latency-{target}",
                description=(
                    f"{target}: {c.latency_percentile} latency above {c.latency_threshold_ms} ms for 3 of 5 minutes. "
                    "First: dashboard 'Timing phases' shows which phase grew (DNS, connect, TLS or the app)."
                ),
                metric=checker_metric(contract.LATENCY, target, statistic=c.latency_percentile, location=self.home),
                comparison=Comparison.GREATER,
                threshold=c.latency_threshold_ms,
                datapoints_to_alarm=3,
                periods=5,
                missing=Missing.NOT_BREACHING,  # no answers: availability pages
                # Home checker only: with several locations, one location's view notifies.
                feeds_service_down=not self.locations,
                actions=bool(self.locations),
            )
        )

    def certificate(self, target: str) -> None:
        days = self.c.cert_expiry_days
        self.add(
            Alarm(
                f"Certificate-{target}",
                description=(
                    f"The TLS certificate of {target} expires in less than {days} days. First: check why renewal "
                    "failed (ACM renews a DNS-validated certificate itself while its validation CNAME exists)."
                ),
                metric=checker_metric(
                    contract.CERT_DAYS_REMAINING, target, statistic="Minimum", period=HOUR, location=self.home
                ),
                comparison=Comparison.LESS,
                threshold=days,
                periods=1,
                missing=Missing.NOT_BREACHING,  # no answer: availability pages
                actions=True,
            )
        )

    def load_balancer(self) -> None:
        namespace = self.c.namespace
        self.add(
            Alarm(
                "UnhealthyTargets",
                description=(
                    "A hello pod has failed the load balancer's health check for 3 minutes. First: "
                    f"kubectl -n {namespace} describe pods (readiness probe, restarts, OOMKilled)."
                ),
                metric=alb_metric("UnHealthyHostCount", statistic="Maximum", target_group=True),
                comparison=Comparison.GREATER_OR_EQUAL,
                threshold=1,
                periods=3,
                missing=Missing.NOT_BREACHING,
                actions=True,
            )
        )
        self.add(
            Alarm(
                "Backend5xx",
                description=(
                    "More than 5% of requests got a 5xx from the pods for 3 of 5 minutes. First: "
                    f"kubectl -n {namespace} logs deploy/hello | grep '\"status\":5'."
                ),
                metric=Math(
                    expression="IF(requests >= 10, 100 * errors / requests, 0)",
                    metrics=(
                        ("errors", alb_metric("HTTPCode_Target_5XX_Count", statistic="Sum")),
                        ("requests", alb_metric("RequestCount", statistic="Sum")),
                    ),
                    label="5xx % of requests",
                    period=MINUTE,
                ),
                comparison=Comparison.GREATER,
                threshold=5,
                datapoints_to_alarm=3,
                periods=5,
                missing=Missing.NOT_BREACHING,
                feeds_service_down=True,
                verdict=Verdict.DOWN,
            )
        )

    def checker_health(self) -> None:
        """The checker's own failures, 2 of its last 3 runs. A period is one schedule (one
        invocation): with 1-minute periods and `scheduleMinutes` 2 or more, at most one period in
        three could hold a failure and the alarms could never fire."""
        run = self.c.schedule_minutes * 60
        function = (("FunctionName", CHECKER_FUNCTION),)
        for alarm_id, metric, description in (
            (
                "CheckerErrors",
                Metric("Errors", function, "Sum", run, namespace="AWS/Lambda"),
                "The health checker Lambda failed in 2 of its last 3 runs (bad settings, or it cannot publish "
                "metrics). First: read the newest error in its log group.",
            ),
            (
                "CheckerThrottles",
                Metric("Throttles", function, "Sum", run, namespace="AWS/Lambda"),
                "The health checker Lambda was throttled in 2 of its last 3 runs: the account's concurrency is "
                "exhausted. First: Lambda console, account-level ConcurrentExecutions.",
            ),
            (
                "ScheduleFailures",
                Metric("FailedInvocations", (("RuleName", SCHEDULE_RULE),), "Sum", run, namespace="AWS/Events"),
                "EventBridge could not invoke the health checker in 2 of its last 3 runs. First: check the "
                "Lambda's resource policy and that the function exists.",
            ),
        ):
            self.failed_runs(alarm_id, description=description, metric=metric)

    def burn_rate(self, id: str, long_window: int, short_window: int, burn: float, *, page: bool) -> None:
        """Both windows must burn the error budget `burn` times faster than sustainable."""
        budget = 1 - self.c.slo_target_percent / 100
        target = self.targets[0]
        windows = []
        for window in (long_window, short_window):
            minutes = window // 60
            windows.append(
                self.add(
                    Alarm(
                        f"{id}-{minutes}m",
                        description=f"Error-budget burn rate over {minutes} min (no actions).",
                        metric=Math(
                            expression=f"(1 - availability) / {budget:.6g}",
                            metrics=(
                                (
                                    "availability",
                                    checker_metric(
                                        contract.AVAILABILITY,
                                        target,
                                        statistic="Average",
                                        period=window,
                                        location=self.home,
                                    ),
                                ),
                            ),
                            label=f"burn rate, {minutes} min",
                            period=window,
                        ),
                        comparison=Comparison.GREATER,
                        threshold=burn,
                        periods=1,
                        missing=Missing.NOT_BREACHING,  # silence pages elsewhere
                        # The window must be the last `window` minutes, not the last clock hour.
                        sliding=True,
                    )
                )
            )
        slo = self.c.slo_target_percent
        self.add(
            Composite(
                id,
                description=(
                    f"{target} is spending its {slo}% / 30 days error budget {burn}x too fast "
                    f"({long_window // 60} and {short_window // 60} min windows). "
                    + (
                        "First: treat as an outage."
                        if page
                        else "First: look for a recurring error in the failed-probes query; a ticket, not a page."
                    )
                ),
                rule=AllOf(tuple(Is(w) for w in windows)),
                feeds_service_down=page,
                actions=not page,
            )
        )


# --- evaluation, as CloudWatch documents it -------------------------------------------------------


def evaluate(values: Sequence[bool | None], *, n: int, m: int, treat: str, state: str) -> str:
    """One evaluation of a metric alarm, as "Configuring how CloudWatch alarms treat missing
    data" (CloudWatch User Guide) documents it. `values`: the evaluation range, oldest first;
    True breaching, None missing. Evaluating the same values again keeps the state this gave.

    With at least N real datapoints in the range, the N most recent decide and the treatment is
    unused; with fewer, the shortfall is filled (only as few times as possible) with the
    treatment and every real datapoint in the range is kept; `ignore` retains the current state,
    and with no good datapoint in the range it retains it too (the tables' rows "- - X - -" and
    "- - - X -")."""
    real = [v for v in values if v is not None]
    if len(real) >= n:
        return ALARM if sum(real[-n:]) >= m else OK
    if not real:
        return {"breaching": ALARM, "notBreaching": OK, "ignore": state, "missing": INSUFFICIENT}[treat]
    breaching = sum(real) + (n - len(real) if treat == "breaching" else 0)
    if breaching >= m:
        return ALARM
    if treat in ("breaching", "notBreaching") or not all(real):
        return OK
    # Only breaching datapoints, fewer than M: `ignore` retains the state; `missing` goes to
    # ALARM when the oldest breaching one in the last N periods is at least M periods old
    # ("Avoiding premature transitions to alarm state").
    if treat == "ignore":
        return state
    last = list(values[-n:])
    oldest = next((i for i, v in enumerate(last) if v), None)
    return ALARM if oldest is not None and len(last) - oldest >= m else OK


def _math(node: ast.expr, values: Mapping[str, float | None]) -> float | None:
    """The subset of CloudWatch metric math the plan writes: numbers, metric ids, + - * /,
    comparisons, IF(c, a, b) and FILL(m, value). None propagates as "no value"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        return values.get(node.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = node.args
        if node.func.id == "FILL":
            value = _math(args[0], values)
            return _math(args[1], values) if value is None else value
        if node.func.id == "IF":
            condition = _math(args[0], values)
            return None if condition is None else _math(args[1] if condition else args[2], values)
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = _math(node.left, values), _math(node.comparators[0], values)
        if left is None or right is None:
            return None
        compare = {ast.GtE: operator.ge, ast.Gt: operator.gt, ast.Lt: operator.lt, ast.LtE: operator.le}
        return float(compare[type(node.ops[0])](left, right))
    if isinstance(node, ast.BinOp):
        left, right = _math(node.left, values), _math(node.right, values)
        if left is None or right is None:
            return None
        ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
        return float(ops[type(node.op)](left, right))
    raise ValueError(f"metric math the plan does not write: {ast.unparse(node)}")


def statistic(name: str, values: Sequence[float]) -> float | None:
    """A period's statistic over the values published for it (None: no datapoint). Percentiles
    by nearest rank; the plan reads pNN only from the latency alarm."""
    if not values:
        return None
    ordered = sorted(values)
    if name.startswith("p"):
        return ordered[max(0, math.ceil(float(name[1:]) / 100 * len(ordered)) - 1)]
    return {
        "Minimum": ordered[0],
        "Maximum": ordered[-1],
        "Sum": sum(ordered),
        "Average": sum(ordered) / len(ordered),
        "SampleCount": float(len(ordered)),
    }[name]
