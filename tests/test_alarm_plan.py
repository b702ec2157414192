"""The alarm plan by what it does, in every configuration the README offers.

Three layers, the way `promtool test rules` tests alerting rules:
- the synthesized template is the plan: every alarm and composite read back from the template
  (composite rules parsed, not grepped) equals one in the plan, and nothing else is there;
- composites over member states: an oracle written from the paging design (docs/alarms.md) says
  which composites are in ALARM for any member states; the plan's rules must agree, for every
  member alone, every pair, and seeded random states;
- series over time: probes of a world where targets fail and checkers fall silent, read by each
  alarm's own statistic, period, M of N and missing-data rule, and the composites after them.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import pytest

from cdk_app import alarm_plan as ap
from cdk_app.alarm_plan import ALARM, OK
from cdk_app.config import MONITORING_STACK_NAME, SHARED, AppConfig
from checker_lambda import contract, timing
from tests.infra import DEFAULTS, as_json, render, stack_templates

EMAIL = "oncall@example.com"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
DOMAIN = {"domainName": "hello.example.com", "hostedZoneId": "Z0123456789ABC", "hostedZoneName": "example.com"}
# The configurations the README offers, as other tests already synthesize them (one synthesis each).
CONFIGS: dict[str, dict[str, Any]] = {
    "one region": {"alertEmail": EMAIL},
    "three regions": {"checkerRegions": json.dumps(REGIONS), "alertEmail": EMAIL},
    "checker only, two regions": {
        "cluster": "false",
        "extraTargets": json.dumps([{"name": "site", "url": "https://www.example.com/"}]),
        "checkerRegions": json.dumps(REGIONS[:2]),
    },
    "domain and extra targets": {
        "alertEmail": EMAIL,
        **DOMAIN,
        "extraTargets": json.dumps([{"name": "api", "url": "https://api.example.com/health", "expect_regex": "ok"}]),
    },
    "alert channels": {"alertEmail": EMAIL, "alertChannels": json.dumps([{"type": "slack", "secret": "hello/slack"}])},
}
PLAN_ONLY: dict[str, dict[str, Any]] = {  # evaluated, not synthesized: quorum edges
    "three regions, quorum 3": {"checkerRegions": json.dumps(REGIONS), "checkerQuorum": 3},
    "four regions, quorum 2": {"checkerRegions": json.dumps([*REGIONS, "sa-east-1"]), "checkerQuorum": 2},
    "two regions, probes every 30 s": {  # the quorum may take over a minute to detect
        "checkerRegions": json.dumps(REGIONS[:2]),
        "probeIntervalSeconds": 30,
        "confirmProbes": 2,
        "probeTimeoutSeconds": 10,
    },
    "two regions, extra targets, scheduled every 2 min": {
        "checkerRegions": json.dumps(REGIONS[:2]),
        "scheduleMinutes": 2,
        "extraTargets": json.dumps([{"name": "api", "url": "http://api.example.com/"}]),
    },
}
EVERY = {**CONFIGS, **PLAN_ONLY}


@cache
def config(name: str) -> AppConfig:
    return AppConfig.from_context({**DEFAULTS, **EVERY[name]}.get)


@cache
def plan(name: str) -> ap.Plan:
    return ap.plan(config(name))


# --- the template, read back as a plan ----------------------------------------------------------

RULE_TOKEN = re.compile(r'\s*(?:(ALARM|OK|INSUFFICIENT_DATA)\("\$\{(\w+)\.Arn\}"\)|(AND|OR|NOT|\(|\)))')


def parse_rule(text: str, names: Mapping[str, str]) -> ap.Rule:
    """A composite's AlarmRule (CloudWatch's syntax, intrinsics rendered) as a rule tree over plan
    ids; `names`: logical id -> plan id. AND and OR mixed without parentheses are refused."""
    tokens: list[tuple[str, ...]] = []
    pos = 0
    while pos < len(text.rstrip()):
        m = RULE_TOKEN.match(text, pos)
        assert m, f"cannot read the rule at: {text[pos : pos + 40]!r}"
        tokens.append((m[3],) if m[3] else (m[1], m[2]))
        pos = m.end()
    at = [0]

    def take() -> tuple[str, ...]:
        at[0] += 1
        return tokens[at[0] - 1]

    def unary() -> ap.Rule:
        token = take()
        if token == ("NOT",):
            return ap.Not(unary())
        if token == ("(",):
            inner = expression()
            assert take() == (")",)
            return inner
        state, logical_id = token
        return ap.Is(names[logical_id], state)

    def expression() -> ap.Rule:
        items, ops = [unary()], set()
        while at[0] < len(tokens) and tokens[at[0]] in (("AND",), ("OR",)):
            ops.add(take()[0])
            items.append(unary())
        assert len(ops) <= 1, "AND and OR mixed without parentheses"
        if not ops:
            return items[0]
        return ap.AllOf(tuple(items)) if ops == {"AND"} else ap.AnyOf(tuple(items))

    rule = expression()
    assert at[0] == len(tokens), "text after the rule"
    return rule


def simplified(rule: ap.Rule) -> ap.Rule:
    """The same rule as it reads back from CloudWatch's syntax: a one-member ANY/ALL is its member."""
    if isinstance(rule, ap.AnyOf | ap.AllOf):
        rules = tuple(simplified(r) for r in rule.rules)
        return rules[0] if len(rules) == 1 else type(rule)(rules)
    if isinstance(rule, ap.Not):
        return ap.Not(simplified(rule.rule))
    return rule


def placeholders(t: dict[str, Any]) -> dict[str, str]:
    """The template's spelling of the values the plan leaves to the deploy, as render() writes them."""
    resources = t["Resources"]
    [fn] = [k for k, r in resources.items() if r["Properties"].get("Handler") == "checker_lambda.handler.handler"]
    [rule] = [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::Events::Rule"
        and any(x["Arn"] == {"Fn::GetAtt": [fn, "Arn"]} for x in r["Properties"]["Targets"])
    ]
    notifier = [k for k, r in resources.items() if r["Properties"].get("Handler") == "notifier.handler.handler"]
    queue = [k for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue"]
    return {
        **({"${" + notifier[0] + "}": ap.NOTIFIER_FUNCTION} if notifier else {}),
        **({"${" + queue[0] + ".QueueName}": ap.UNDELIVERED_QUEUE} if queue else {}),
        "${" + fn + "}": ap.CHECKER_FUNCTION,
        "${" + rule + "}": ap.SCHEDULE_RULE,
        json.dumps({"Fn::ImportValue": SHARED.load_balancer_export}): ap.LOAD_BALANCER,
        json.dumps({"Fn::ImportValue": SHARED.target_group_export}): ap.TARGET_GROUP,
    }


def read_metric(stat: dict[str, Any], tokens: Mapping[str, str]) -> ap.Metric:
    """A MetricStat, or an alarm's own metric properties."""
    metric = stat.get("Metric", stat)

    def value(v: Any) -> str:
        r = render(v)
        return tokens.get(r if isinstance(r, str) else json.dumps(v), r)

    dims = tuple(sorted((d["Name"], value(d["Value"])) for d in metric.get("Dimensions", [])))
    statistic = stat.get("Stat") or stat.get("Statistic") or stat.get("ExtendedStatistic")
    return ap.Metric(metric["MetricName"], dims, statistic, stat["Period"], namespace=metric["Namespace"])


def read_alarm(logical_id: str, p: dict[str, Any], tokens: Mapping[str, str], topic: str) -> ap.Alarm:
    if "Metrics" in p:
        [expression] = [m for m in p["Metrics"] if "Expression" in m]
        stats = [(m["Id"], read_metric(m["MetricStat"], tokens)) for m in p["Metrics"] if "MetricStat" in m]
        [period] = {m.period for _, m in stats}
        metric: ap.Metric | ap.Math = ap.Math(expression["Expression"], tuple(stats), expression["Label"], period)
    else:
        metric = read_metric(p, tokens)
    return ap.Alarm(
        logical_id,
        description=p["AlarmDescription"],
        metric=metric,
        comparison=ap.Comparison(p["ComparisonOperator"]),
        threshold=p["Threshold"],
        periods=p["EvaluationPeriods"],
        missing=ap.Missing(p["TreatMissingData"]),
        datapoints_to_alarm=p.get("DatapointsToAlarm"),
        actions=actions(p, topic),
        name=p.get("AlarmName"),
        sliding=p.get("EvaluationWindow") == {"SlidingWindow": {}},
    )


def actions(p: dict[str, Any], topic: str) -> bool:
    """An alarm notifies the topic on ALARM and on OK, or has no actions at all."""
    notify = [{"Ref": topic}]
    assert (p.get("AlarmActions"), p.get("OKActions")) in ((notify, notify), (None, None)), p["AlarmDescription"]
    return "AlarmActions" in p


def comparable(a: ap.Alarm) -> ap.Alarm:
    """What the template shows of a planned alarm: dimensions sorted, no id, no routing, no verdict."""

    def sort(m: ap.Metric) -> ap.Metric:
        return dataclasses.replace(m, dimensions=tuple(sorted(m.dimensions)))

    metric = a.metric
    metric = (
        dataclasses.replace(metric, metrics=tuple((i, sort(m)) for i, m in metric.metrics))
        if isinstance(metric, ap.Math)
        else sort(metric)
    )
    return dataclasses.replace(a, id="", metric=metric, feeds_service_down=False, verdict=ap.Verdict.DEGRADED)


@cache
def rendered_ids(name: str) -> dict[str, str]:
    """Logical id -> plan id, asserting on the way that the template holds exactly the plan."""
    templates = stack_templates(**CONFIGS[name])
    for stack, t in templates.items():
        if stack != MONITORING_STACK_NAME:  # checker and cluster stacks hold no alarm
            assert not {"AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"} & {
                r["Type"] for r in as_json(t)["Resources"].values()
            }, stack
    t = as_json(templates[MONITORING_STACK_NAME])
    resources = t["Resources"]
    [topic] = [k for k, r in resources.items() if r["Type"] == "AWS::SNS::Topic"]
    tokens = placeholders(t)
    alarms = {
        k: read_alarm(k, r["Properties"], tokens, topic)
        for k, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    composites = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::CompositeAlarm"}
    names: dict[str, str] = {}
    for planned in plan(name).alarms:
        if isinstance(planned, ap.Alarm):
            matches = [k for k, a in alarms.items() if dataclasses.replace(a, id="") == comparable(planned)]
        else:
            matches = [
                k
                for k, c in composites.items()
                if k not in names
                and all(m in names.values() for m in planned.rule.members())
                and (c["AlarmDescription"], actions(c, topic)) == (planned.description, planned.actions)
                # Without a name in the plan, aws-cdk-lib makes one up (a composite needs one).
                and c["AlarmName"] == (planned.name or c["AlarmName"])
                and parse_rule(render(c["AlarmRule"]), {k: k for k in composites} | names) == simplified(planned.rule)
                and c.get("ActionsSuppressor")
                == ({"Fn::GetAtt": [_logical(names, planned.suppressor), "Arn"]} if planned.suppressor else None)
                and c.get("ActionsSuppressorWaitPeriod") == (planned.suppressor_wait or None)
                and c.get("ActionsSuppressorExtensionPeriod") == (planned.suppressor_extension or None)
            ]
        assert len(matches) == 1, f"{name}: {planned.id} is rendered {len(matches)} times"
        names[matches[0]] = planned.id
    assert set(names) == set(alarms) | set(composites), (
        f"{name}: not in the plan: {set(alarms) | set(composites) - set(names)}"
    )
    return names


def _logical(names: Mapping[str, str], plan_id: str | None) -> str | None:
    return next((k for k, v in names.items() if v == plan_id), None)


@pytest.mark.parametrize("name", CONFIGS)
def test_the_synthesized_alarms_are_the_plan_and_nothing_else(name: str) -> None:
    names = rendered_ids(name)
    assert sorted(names.values()) == sorted(a.id for a in plan(name).alarms)


def test_the_reader_tells_a_changed_rule_from_the_planned_one() -> None:
    """The comparison above can fail: ANY and ALL, or a member left out, read back differently."""
    names = {"A1": "a", "B1": "b"}
    text = 'ALARM("${A1.Arn}") OR ALARM("${B1.Arn}")'
    assert parse_rule(f"({text})", names) == ap.any_of(["a", "b"])
    assert parse_rule(f"({text.replace('OR', 'AND')})", names) != ap.any_of(["a", "b"])
    assert parse_rule('(NOT (ALARM("${A1.Arn}")))', names) == ap.Not(ap.Is("a"))
    with pytest.raises(AssertionError, match="mixed"):
        parse_rule(f'{text} AND OK("${{A1.Arn}}")', names)


# --- composites over member states: an oracle from the paging design ---------------------------


def expected(name: str, states: Mapping[str, str]) -> dict[str, bool]:
    """Which composites are in ALARM, written from the design, not from the plan: service-down
    pages on any user-facing signal (availability or a quorum of locations; with one location,
    latency and the fast SLO burn too; 5xx from the pods; too few checkers watching), never on
    one location alone or on the machinery."""
    c = config(name)
    p = plan(name)
    on = {k for k, s in states.items() if s == ALARM}
    locations, k = c.locations, c.quorum
    out: dict[str, bool] = {}
    fast = {"FastBurn-60m", "FastBurn-5m"} <= on
    out["FastBurn"] = fast
    out["SlowBurn"] = {"SlowBurn-360m", "SlowBurn-30m"} <= on
    if locations:
        silent = sum(f"CheckerHeartbeat-{loc}" in on for loc in locations)
        out["CheckersSilent"] = silent >= len(locations) - k + 1
        out["CheckerSilent"] = silent >= 1
        for t in p.targets:
            out[f"Alone-{t}"] = any(f"Availability-{t}-{loc}" in on for loc in locations) and f"Quorum-{t}" not in on
        user_facing = any(f"Quorum-{t}" in on for t in p.targets) or out["CheckersSilent"]
    else:
        user_facing = (
            any(f"Availability-{t}" in on or f"Latency-{t}" in on for t in p.targets)
            or "CheckerHeartbeat" in on
            or fast
        )
    out[ap.SERVICE_DOWN] = user_facing or (c.deploy_cluster and "Backend5xx" in on)
    return out


def composite_states(p: ap.Plan, on: set[str]) -> dict[str, bool]:
    states = p.states(dict.fromkeys(on, ALARM))
    return {c.id: states[c.id] == ALARM for c in p.composites}


def member_sets(p: ap.Plan, seed: int = 19) -> list[set[str]]:
    """Every metric alarm alone, every pair, every set of heartbeats, and seeded random sets."""
    ids = [a.id for a in p.metric_alarms]
    heartbeats = [i for i in ids if i.startswith("CheckerHeartbeat")]
    rng = random.Random(seed)
    sets = [set(), *({i} for i in ids), *(set(pair) for pair in itertools.combinations(ids, 2))]
    sets += [set(s) for r in range(len(heartbeats) + 1) for s in itertools.combinations(heartbeats, r)]
    sets += [{i for i in ids if rng.random() < rng.choice((0.1, 0.3, 0.6))} for _ in range(300)]
    return sets


@pytest.mark.parametrize("name", EVERY)
def test_every_composite_is_in_alarm_exactly_when_the_design_says(name: str) -> None:
    p = plan(name)
    assert {c.id for c in p.composites} == set(expected(name, {}))  # the oracle knows every composite
    for on in member_sets(p):
        assert composite_states(p, on) == expected(name, dict.fromkeys(on, ALARM)), (name, sorted(on))


@pytest.mark.parametrize("name", EVERY)
def test_all_ok_is_quiet_and_each_signal_that_should_page_pages_alone(name: str) -> None:
    p, c = plan(name), config(name)
    assert not any(composite_states(p, set()).values())
    paging = [f"Quorum-{t}" if c.locations else f"Availability-{t}" for t in p.targets]
    if not c.locations:
        paging += [f"Latency-{t}" for t in p.targets] + ["CheckerHeartbeat"]
    paging += ["Backend5xx"] if c.deploy_cluster else []
    for signal in paging:
        assert p.pages({signal: ALARM}), (name, signal)
    assert p.pages(dict.fromkeys(["FastBurn-60m", "FastBurn-5m"], ALARM)) == (not c.locations)
    # The drill forces each target's paging alarm: it must page.
    assert all(p.pages({alarm: ALARM}) for alarm in p.drill.values())
    assert list(p.drill) == list(p.targets)


@pytest.mark.parametrize("name", [n for n in EVERY if config(n).locations])
def test_one_location_alone_never_pages_and_a_quorum_does(name: str) -> None:
    p, c = plan(name), config(name)
    for t in p.targets:
        for seeing in itertools.chain.from_iterable(
            itertools.combinations(c.locations, r) for r in range(1, len(c.locations) + 1)
        ):
            # What the quorum alarm reads when these locations fail: its own expression, per period.
            assert isinstance(quorum := p[f"Quorum-{t}"], ap.Alarm)
            failing = {i: 0.0 if m.dims[contract.LOCATION] in seeing else 1.0 for i, m in quorum.metric.metrics}  # type: ignore[union-attr]
            breaching = quorum.datapoint(failing)
            assert breaching == (len(seeing) >= c.quorum), (name, t, seeing)
            # Alone, the per-location alarms only notify.
            states = dict.fromkeys((f"Availability-{t}-{loc}" for loc in seeing), ALARM)
            assert not p.pages(states) and p.states(states)[f"Alone-{t}"] == ALARM
            if breaching:
                assert (
                    p.pages({**states, f"Quorum-{t}": ALARM})
                    and p.states({**states, f"Quorum-{t}": ALARM})[f"Alone-{t}"] == OK
                )
        # A location that has not published yet counts as healthy, never as failing.
        assert quorum.datapoint(dict.fromkeys((i for i, _ in quorum.metric.metrics), None)) is not True  # type: ignore[union-attr]


@pytest.mark.parametrize("name", EVERY)
def test_every_locations_heartbeat_reads_silence_as_breaching(name: str) -> None:
    p, c = plan(name), config(name)
    ids = [f"CheckerHeartbeat-{loc}" for loc in c.locations] or ["CheckerHeartbeat"]
    minutes = timing.heartbeat_periods(c.schedule_minutes * 60)
    for loc, i in zip(c.locations or [None], ids, strict=True):
        hb = p[i]
        assert isinstance(hb, ap.Alarm) and isinstance(hb.metric, ap.Metric)
        assert hb.missing is ap.Missing.BREACHING and hb.periods == hb.datapoints == minutes
        assert hb.metric.name == contract.AVAILABILITY and hb.metric.statistic == "SampleCount"
        assert hb.metric.dims == {contract.TARGET: p.targets[0], **({contract.LOCATION: loc} if loc else {})}
        assert hb.metric.period == 60
    assert {a.id for a in p.metric_alarms if a.missing is ap.Missing.BREACHING} == set(ids)


# --- series over time ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class World:
    """Every location probes every target each `interval` seconds: a failed probe is 0, a healthy
    one 1 (with 50 ms of latency); a silent location publishes nothing."""

    interval: int
    down: Mapping[tuple[str | None, str], tuple[float, float]] = dataclasses.field(default_factory=dict)
    blips: Mapping[tuple[str | None, str], float] = dataclasses.field(default_factory=dict)  # one failed probe
    silent: Mapping[str | None, float] = dataclasses.field(default_factory=dict)  # from then on
    cert_days: float | None = None  # what every HTTPS target's certificate has left, per probe
    requests: float = 0  # per minute at the load balancer, and how many got a 5xx from the pods
    errors_5xx: float = 0

    def values(self, m: ap.Metric, start: int) -> list[float]:
        if m.namespace == "AWS/ApplicationELB":  # the ALB publishes no zero counts
            value = {"RequestCount": self.requests, "HTTPCode_Target_5XX_Count": self.errors_5xx}.get(m.name, 0)
            return [value] if value else []
        if m.name == contract.CERT_DAYS_REMAINING and self.cert_days is not None:
            return [self.cert_days + 60, self.cert_days]  # a renewed edge and an old one: the least counts
        if m.namespace != contract.NAMESPACE or m.name not in (contract.AVAILABILITY, contract.LATENCY):
            return []
        target, loc = m.dims[contract.TARGET], m.dims.get(contract.LOCATION)
        out = []
        for slot in range(start - start % self.interval, start + m.period, self.interval):
            if slot < start or slot >= self.silent.get(loc, float("inf")):
                continue
            a, b = self.down.get((loc, target), (0, 0))
            failed = a <= slot < b or self.blips.get((loc, target)) == slot
            if m.name == contract.AVAILABILITY:
                out.append(0.0 if failed else 1.0)
            elif not failed:
                out.append(50.0)
        return out


def run(p: ap.Plan, world: World, until: int, step: int = 10, extra: int = 0) -> list[tuple[int, dict[str, str]]]:
    """Every alarm evaluated every `step` seconds on an evaluation range of N + `extra` periods
    complete by then (CloudWatch retrieves more than N; how many it does not say), a sliding
    window on the last `period` seconds; the composites after them."""
    states: dict[str, str] = {a.id: OK for a in p.metric_alarms}
    out = []
    for t in range(step, until + 1, step):
        for a in p.metric_alarms:
            period = a.metric.period
            size = a.periods + extra
            starts = [t - period] if a.sliding else [t - t % period - (i + 1) * period for i in range(size)][::-1]
            named: Callable[[int], dict[str, float | None]] = lambda s, a=a: (  # noqa: E731
                {i: ap.statistic(m.statistic, world.values(m, s)) for i, m in a.metric.metrics}
                if isinstance(a.metric, ap.Math)
                else {"": ap.statistic(a.metric.statistic, world.values(a.metric, s))}
            )
            values = [a.datapoint(named(s)) if s >= 0 else False for s in starts]
            states[a.id] = ap.evaluate(values, n=a.periods, m=a.datapoints, treat=a.missing, state=states[a.id])
        out.append((t, p.states(states)))
    return out


def first(timeline: list[tuple[int, dict[str, str]]], alarm: str, state: str = ALARM) -> int | None:
    return next((t for t, s in timeline if s[alarm] == state), None)


@pytest.mark.parametrize("name", EVERY)
def test_an_outage_of_each_target_pages_within_the_bound_and_clears(name: str) -> None:
    p, c = plan(name), config(name)
    interval = c.probe_interval_seconds
    bound = timing.worst_case_quorum_detection(
        interval=interval,
        confirm=c.confirm_probes,
        timeout=0,  # a refused probe fails at once in this world
        locations=max(1, len(c.locations)),
        quorum=c.quorum,
    )
    for target in p.targets:
        start, end = 600, 900
        world = World(interval, down={(loc, target): (start, end) for loc in c.locations or [None]})
        timeline = run(p, world, 1200)
        paged = first(timeline, ap.SERVICE_DOWN)
        assert paged is not None and start + (c.confirm_probes - 1) * interval < paged, (name, target, paged)
        assert paged <= start + bound + 2 * interval, (name, target, paged)
        assert all(s[ap.SERVICE_DOWN] == ALARM for t, s in timeline if paged <= t < end), (name, target)
        assert timeline[-1][1][ap.SERVICE_DOWN] == OK, (name, target)
        assert not any(s.get(f"Alone-{target}") == ALARM for t, s in timeline), (
            "an outage everywhere is not one location"
        )


@pytest.mark.parametrize("name", EVERY)
def test_a_single_failed_probe_or_fewer_than_confirm_in_a_row_never_page(name: str) -> None:
    p, c = plan(name), config(name)
    blips = {(loc, t): 600 for t in p.targets for loc in c.locations or [None]}
    timeline = run(p, World(c.probe_interval_seconds, blips=blips), 1200)
    assert all(s[ap.SERVICE_DOWN] == OK for _, s in timeline), name
    short = (600, 600 + (c.confirm_probes - 1) * c.probe_interval_seconds)
    timeline = run(p, World(c.probe_interval_seconds, down=dict.fromkeys(blips, short)), 1200)
    assert all(s[ap.SERVICE_DOWN] == OK for _, s in timeline), name


@pytest.mark.parametrize("name", EVERY)
def test_every_checkers_failed_runs_notify_two_of_three_runs(name: str) -> None:
    """The home checker's Lambda Errors, Throttles and failed schedules, and each remote checker's
    own count (its Lambda metrics stay in its region): a notification each, on 2 of 3 runs."""
    p, c = plan(name), config(name)
    run_seconds = c.schedule_minutes * 60
    wanted = [
        ("AWS/Lambda", "Errors", {"FunctionName": ap.CHECKER_FUNCTION}),
        ("AWS/Lambda", "Throttles", {"FunctionName": ap.CHECKER_FUNCTION}),
        ("AWS/Events", "FailedInvocations", {"RuleName": ap.SCHEDULE_RULE}),
        *((contract.NAMESPACE, contract.CHECKER_ERRORS, {contract.LOCATION: loc}) for loc in c.locations[1:]),
        *([(contract.NAMESPACE, contract.URL_READ_FAILURES, {})] if c.deploy_cluster else []),
    ]
    for namespace, metric, dims in wanted:
        [alarm] = [
            a
            for a in p.metric_alarms
            if isinstance(a.metric, ap.Metric)
            and (a.metric.namespace, a.metric.name, a.metric.dims) == (namespace, metric, dims)
        ]
        assert alarm.actions and not p.pages({alarm.id: ALARM}), (name, metric)
        assert (alarm.metric.statistic, alarm.metric.period, alarm.datapoints, alarm.periods) == (
            "Sum",
            run_seconds,
            2,
            3,
        )
        assert [alarm.datapoint({"": v}) for v in (None, 0.0, 1.0)] == [None, False, True]


@pytest.mark.parametrize("name", [n for n in EVERY if config(n).locations])
def test_one_location_down_notifies_and_a_quorum_down_pages(name: str) -> None:
    p, c = plan(name), config(name)
    target = p.targets[-1]
    minority = c.locations[: c.quorum - 1] or c.locations[-1:]
    alone = run(p, World(c.probe_interval_seconds, down={(loc, target): (600, 900) for loc in minority}), 1200)
    if len(minority) < c.quorum:
        assert all(s[ap.SERVICE_DOWN] == OK for _, s in alone), name
        assert first(alone, f"Alone-{target}") is not None
    quorum = c.locations[: c.quorum]
    paged = run(p, World(c.probe_interval_seconds, down={(loc, target): (600, 900) for loc in quorum}), 1200)
    assert first(paged, ap.SERVICE_DOWN) is not None, name


@pytest.mark.parametrize("name", EVERY)
def test_silent_checkers_page_and_a_silent_minority_only_notifies(name: str) -> None:
    p, c = plan(name), config(name)
    minutes = timing.heartbeat_periods(c.schedule_minutes * 60)
    every = c.locations or (None,)
    for extra in (0, minutes):  # an evaluation range of N, or 2N, minutes
        world = World(c.probe_interval_seconds, silent=dict.fromkeys(every, 600))
        everyone = run(p, world, 600 + (minutes + extra + 3) * 60, step=30, extra=extra)
        paged = first(everyone, ap.SERVICE_DOWN)
        # A real datapoint in the range keeps it OK: N minutes of silence, or up to 2N + 1.
        assert paged is not None and paged <= 600 + (minutes + extra + 1) * 60, (name, extra, paged)
        assert all(s[ap.SERVICE_DOWN] == OK for t, s in everyone if t <= 600 + (minutes - 1) * 60), name
    if c.locations:
        few = c.locations[: len(c.locations) - c.quorum]  # still a quorum watching
        timeline = run(p, World(c.probe_interval_seconds, silent=dict.fromkeys(few or c.locations[:1], 600)), 1500)
        if few:
            assert all(s[ap.SERVICE_DOWN] == OK for _, s in timeline), name
        assert first(timeline, "CheckerSilent") is not None


def notifying_by_design(name: str) -> set[str]:
    """What notifies by itself, from the design (README "Alarms and the dashboard"), not the plan:
    service-down; the machinery (the checkers' failures, a pod failing its health check, a
    certificate, a slow burn, URL reads); with several locations, what one location or the home
    checker alone sees (latency, fast burn, a location alone, one checker silent); with alert
    channels, the notifier's failures and its undelivered pages."""
    c = config(name)
    targets = [*(["hello"] if c.deploy_cluster else []), *(t.name for t in c.extra_targets)]
    https = [*(["hello"] if c.deploy_cluster and c.https else []), *(t.name for t in c.extra_targets if t.https)]
    out = {ap.SERVICE_DOWN, "CheckerErrors", "CheckerThrottles", "ScheduleFailures", "SlowBurn"}
    out |= {f"Certificate-{t}" for t in https}
    out |= {"UnhealthyTargets", "UrlReadFailures"} if c.deploy_cluster else set()
    if c.locations:
        out |= {f"Latency-{t}" for t in targets} | {f"Alone-{t}" for t in targets} | {"FastBurn", "CheckerSilent"}
        out |= {f"CheckerErrors-{loc}" for loc in c.locations[1:]}
    if c.alert_channels:  # the notifier's own failures, and what waits undelivered (docs/notifications.md)
        out |= {"NotifierFailures", "UndeliveredAlerts"}
    return out


@pytest.mark.parametrize("name", EVERY)
def test_what_notifies_by_itself_is_what_the_design_says(name: str) -> None:
    assert set(plan(name).notifying()) == notifying_by_design(name)


@pytest.mark.parametrize("name", EVERY)
def test_a_certificate_notifies_before_its_last_days_and_not_before(name: str) -> None:
    p, c = plan(name), config(name)
    for t in p.https_targets:
        days = run(p, World(c.probe_interval_seconds, cert_days=c.cert_expiry_days), 7200, step=600)
        fewer = run(p, World(c.probe_interval_seconds, cert_days=c.cert_expiry_days - 1), 7200, step=600)
        assert all(s[f"Certificate-{t}"] == OK for _, s in days) and fewer[-1][1][f"Certificate-{t}"] == ALARM
        assert all(s[ap.SERVICE_DOWN] == OK for _, s in fewer)  # a ticket, not a page


@pytest.mark.parametrize("name", [n for n in EVERY if config(n).deploy_cluster])
def test_5xx_from_the_pods_pages_over_5_percent_of_at_least_10_requests(name: str) -> None:
    p, c = plan(name), config(name)
    for requests, errors, pages in ((9, 9, False), (10, 1, True), (100, 5, False), (100, 6, True)):
        timeline = run(p, World(c.probe_interval_seconds, requests=requests, errors_5xx=errors), 600, step=60)
        assert (timeline[-1][1][ap.SERVICE_DOWN] == ALARM) == pages, (requests, errors)


@pytest.mark.parametrize("name", [n for n in EVERY if config(n).locations])
def test_a_location_alone_is_held_back_until_the_quorum_could_have_caught_up(name: str) -> None:
    """The one-location notification waits for the quorum alarm as long as the quorum can take to
    detect an outage, so an outage everywhere, seen first from one location, is one page."""
    p, c = plan(name), config(name)
    bound = timing.worst_case_quorum_detection(
        interval=c.probe_interval_seconds,
        confirm=c.confirm_probes,
        timeout=c.probe_timeout_seconds,
        locations=len(c.locations),
        quorum=c.quorum,
    )
    for t in p.targets:
        alone = p[f"Alone-{t}"]
        assert isinstance(alone, ap.Composite) and alone.suppressor == f"Quorum-{t}"
        assert alone.suppressor_wait >= bound and alone.suppressor_extension >= bound


@pytest.mark.parametrize("name", [n for n in EVERY if config(n).locations])
def test_a_location_that_failed_then_fell_silent_keeps_its_alarm(name: str) -> None:
    """Missing data is ignored per location: silence after failures is not a recovery (its
    heartbeat says it is silent)."""
    p, c = plan(name), config(name)
    loc, t = c.locations[-1], p.targets[0]
    world = World(c.probe_interval_seconds, down={(loc, t): (600, 2000)}, silent={loc: 700})
    timeline = run(p, world, 1200)
    assert first(timeline, f"Availability-{t}-{loc}") is not None
    assert timeline[-1][1][f"Availability-{t}-{loc}"] == ALARM


def test_the_dashboard_lists_service_down_what_feeds_it_and_everything_that_notifies() -> None:
    for name in CONFIGS:
        t = as_json(stack_templates(**CONFIGS[name])[MONITORING_STACK_NAME])
        [body] = [
            render(r["Properties"]["DashboardBody"])
            for r in t["Resources"].values()
            if r["Type"] == "AWS::CloudWatch::Dashboard"
        ]
        [widget] = [w for w in json.loads(body)["widgets"] if w["properties"].get("alarms")]
        names = rendered_ids(name)
        shown = [names[re.fullmatch(r"\$\{(\w+)\.Arn\}", a)[1]] for a in widget["properties"]["alarms"]]  # type: ignore[index]
        p = plan(name)
        assert shown[0] == ap.SERVICE_DOWN and set(shown) == {ap.SERVICE_DOWN, *p.feeding(), *p.notifying()}, name
