"""Alarms, topic and dashboard: who gets told, about what, from which metric."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from cdk_app.dashboard import Dashboard, DashboardView
from checker_lambda import contract
from checker_lambda.metrics import metric_data, url_read_failures_datum
from checker_lambda.probe import ProbeResult
from tests.infra import ALARMS_TUNED, EVERY_ALARM, resources, synth


@pytest.fixture(scope="module")
def template():
    """Defaults plus an HTTPS extra target and a webhook, so every kind of alarm exists."""
    return synth(**EVERY_ALARM)


def metric_alarms(t) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in resources(t, "AWS::CloudWatch::Alarm").items()}


def composites(t) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in resources(t, "AWS::CloudWatch::CompositeAlarm").items()}


def rule_text(rule: Any) -> str:
    return json.dumps(rule)


def test_one_composite_pages_for_every_user_facing_alarm_and_the_rest_page_alone(template) -> None:
    [topic] = resources(template, "AWS::SNS::Topic")
    notify = [{"Ref": topic}]
    alarms, comps = metric_alarms(template), composites(template)
    [service_down] = [c for c in comps.values() if c["AlarmName"] == "hello-service-down"]
    assert service_down["AlarmActions"] == notify and service_down["OKActions"] == notify

    def notified(logical_id: str, seen: tuple[str, ...] = ()) -> bool:
        props = alarms.get(logical_id) or comps[logical_id]
        if props.get("AlarmActions") == notify and props.get("OKActions") == notify:
            return True
        parents = [k for k, c in comps.items() if logical_id in rule_text(c["AlarmRule"]) and k not in seen]
        return any(notified(p, (*seen, logical_id)) for p in parents)

    for logical_id in [*alarms, *comps]:
        assert notified(logical_id), f"{logical_id} reaches nobody"

    rule = rule_text(service_down["AlarmRule"])
    for logical_id, props in alarms.items():
        name = props.get("MetricName")
        in_composite = logical_id in rule
        if name in (contract.AVAILABILITY, contract.LATENCY):
            assert in_composite and "AlarmActions" not in props, logical_id  # one email per outage
        if name in ("Errors", "Throttles", "FailedInvocations", "UnHealthyHostCount", contract.CERT_DAYS_REMAINING):
            assert not in_composite and props["AlarmActions"] == notify, logical_id


def test_every_alarm_treats_missing_data_on_purpose(template) -> None:
    for logical_id, props in metric_alarms(template).items():
        expected = {
            (contract.AVAILABILITY, "Minimum"): "ignore",  # unpublished is not failed; see the heartbeat
            (contract.AVAILABILITY, "SampleCount"): "breaching",  # the heartbeat: silence pages
        }.get((props.get("MetricName"), props.get("Statistic")), "notBreaching")
        assert props["TreatMissingData"] == expected, logical_id


def test_every_notifying_alarm_says_what_to_do_first(template) -> None:
    for props in [*metric_alarms(template).values(), *composites(template).values()]:
        if "AlarmActions" in props or props.get("AlarmName") == "hello-service-down":
            assert "First:" in props["AlarmDescription"], props["AlarmDescription"]


def test_latency_alarm_uses_the_configured_percentile_and_threshold() -> None:
    t = synth(**ALARMS_TUNED)  # p99 over 250 ms
    [latency] = [a for a in metric_alarms(t).values() if a.get("MetricName") == contract.LATENCY]
    assert latency["ExtendedStatistic"] == "p99" and latency["Threshold"] == 250
    assert latency["ComparisonOperator"] == "GreaterThanThreshold"


def test_burn_rate_alarms_pair_a_long_and_a_short_window() -> None:
    t = synth(**ALARMS_TUNED)  # an SLO of 99.5%
    windows = {}
    for props in metric_alarms(t).values():
        metrics = props.get("Metrics") or []
        expressions = [m["Expression"] for m in metrics if "Expression" in m]
        if expressions and "availability" in expressions[0]:
            [stat] = [m["MetricStat"] for m in metrics if "MetricStat" in m]
            windows[stat["Period"]] = (props["Threshold"], expressions[0])
    assert set(windows) == {3600, 300, 21600, 1800}
    assert windows[3600][0] == windows[300][0] == 14.4
    assert windows[21600][0] == windows[1800][0] == 6
    assert all(expr == "(1 - availability) / 0.005" for _, expr in windows.values())
    comps = composites(t)
    fast = [c for c in comps.values() if "14.4x" in c["AlarmDescription"]]
    slow = [c for c in comps.values() if "6.0x" in c["AlarmDescription"]]
    assert len(fast) == len(slow) == 1
    assert "AND" in rule_text(fast[0]["AlarmRule"]) and "AND" in rule_text(slow[0]["AlarmRule"])
    assert "AlarmActions" in slow[0] and "AlarmActions" not in fast[0]  # fast burn pages via ServiceDown


def test_topic_is_encrypted_with_a_rotating_key_and_refuses_plain_http(template) -> None:
    [topic] = resources(template, "AWS::SNS::Topic").values()
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert resources(template, "AWS::KMS::Key")[key_id]["Properties"]["EnableKeyRotation"] is True
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"})
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "https", "Endpoint": "https://chat.example.com/hook"}
    )


# --- every metric used is real -----------------------------------------------------------


def _flatten(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "".join(p if isinstance(p, str) else "TOKEN" + json.dumps(p).replace('"', "'") for p in value["Fn::Join"][1])


def used_metrics(t) -> list[tuple[str, str, str, dict[str, str]]]:
    """(where, namespace, name, dimensions) of every metric an alarm or a dashboard widget reads."""
    used = []
    for logical_id, props in metric_alarms(t).items():
        if "MetricName" in props:
            dims = {d["Name"]: json.dumps(d["Value"]) for d in props.get("Dimensions", [])}
            used.append((logical_id, props["Namespace"], props["MetricName"], dims))
        for m in props.get("Metrics", []):
            if "MetricStat" in m:
                metric = m["MetricStat"]["Metric"]
                dims = {d["Name"]: json.dumps(d["Value"]) for d in metric.get("Dimensions", [])}
                used.append((logical_id, metric["Namespace"], metric["MetricName"], dims))
    for d in resources(t, "AWS::CloudWatch::Dashboard").values():
        body = json.loads(_flatten(d["Properties"]["DashboardBody"]))
        for widget in body["widgets"]:
            for row in widget["properties"].get("metrics", []):
                if isinstance(row[0], str):
                    names = [x for x in row if isinstance(x, str)]
                    namespace, name, rest = names[0], names[1], names[2:]
                    used.append(
                        (widget["properties"]["title"], namespace, name, dict(zip(rest[::2], rest[1::2], strict=True)))
                    )
    return used


def published_by_checker(target: str, https: bool) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    out = set()
    for ok in (True, False):
        r = ProbeResult(target=target, url="x", started_at=0.0, ok=ok, status=200 if ok else None)
        r.reason = None if ok else contract.Reason.TIMEOUT
        r.phases = {"dns": 1.0, "connect": 1.0, "first_byte": 1.0, "total": 3.0} | ({"tls": 1.0} if https else {})
        r.cert_days_remaining = 30.0 if https else None
        for d in metric_data([r], high_resolution=True):
            out.add((d["MetricName"], tuple(sorted((x["Name"], x["Value"]) for x in d["Dimensions"]))))
    return out


def test_every_metric_is_published_by_the_checker_or_by_aws_for_this_stack(template) -> None:
    published = published_by_checker("hello", https=False) | published_by_checker("api", https=True)
    read_failure = url_read_failures_datum(1, 0.0)  # the single-region checker's, on a failed URL read
    published.add((read_failure["MetricName"], tuple((x["Name"], x["Value"]) for x in read_failure["Dimensions"])))
    alb = next(iter(resources(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")))
    # A target group's metrics name its load balancer through the listener's ARN.
    alb_ids = {alb} | {
        k
        for k, r in resources(template, "AWS::ElasticLoadBalancingV2::Listener").items()
        if r["Properties"]["LoadBalancerArn"] == {"Ref": alb}
    }
    tg = next(iter(resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup")))
    [cluster] = resources(template, "AWS::EKS::Cluster").values()
    functions = [
        k
        for k, r in resources(template, "AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == "checker_lambda.handler.handler"
    ]
    [rule] = resources(template, "AWS::Events::Rule")
    used = used_metrics(template)
    assert len(used) > 30
    seen_namespaces = set()
    for where, namespace, name, dims in used:
        seen_namespaces.add(namespace)
        if namespace == contract.NAMESPACE:
            key = (name, tuple(sorted((k, v.strip('"')) for k, v in dims.items())))
            assert key in published, (where, key)
        elif namespace == "AWS/ApplicationELB":
            assert any(i in dims["LoadBalancer"] for i in alb_ids), (where, dims)
            if "TargetGroup" in dims:
                assert tg in dims["TargetGroup"], (where, dims)
        elif namespace == "AWS/Lambda":
            assert set(dims) == {"FunctionName"} and functions[0] in dims["FunctionName"], (where, dims)
        elif namespace == "AWS/Events":
            assert set(dims) == {"RuleName"} and rule in dims["RuleName"], (where, dims)
        elif namespace == "ContainerInsights":
            assert dims["ClusterName"].strip('"') == cluster["Properties"]["Name"], (where, dims)
            assert dims.get("Namespace", '"hello"').strip('"') == "hello"
        else:
            raise AssertionError(f"{where} reads {namespace}/{name}, which nothing in this stack publishes")
    assert seen_namespaces == {
        contract.NAMESPACE,
        "AWS/ApplicationELB",
        "AWS/Lambda",
        "AWS/Events",
        "ContainerInsights",
    }


def test_dashboard_answers_the_four_golden_signals(template) -> None:
    titles = {where for where, *_ in used_metrics(template) if " " in where}  # widget titles, not alarm IDs
    for needed in (
        "Latency: checker (ms)",
        "Timing phases, p90 (ms)",
        "Latency: load balancer to pods (s)",
        "Traffic: requests per second",
        "Errors: responses by class",
        "Saturation: pods (% of limit)",
        "Saturation: nodes (%)",
        "Availability SLI (hello)",
        "Checker Lambda",
    ):
        assert needed in titles, needed
    [d] = resources(template, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(_flatten(d["Properties"]["DashboardBody"]))
    kinds = {w["type"] for w in body["widgets"]}
    assert "alarm" in kinds
    failures = [w for w in body["widgets"] if w["properties"].get("title") == "Errors: failed probes by reason"]
    assert re.search(r"MetricName=\\\\?\"Failures\\\\?\"", json.dumps(failures))
    # The checker's failed URL reads (counted by the checker itself) are on the dashboard.
    assert contract.URL_READ_FAILURES in json.dumps(_widget(body, "Checker Lambda")["metrics"])


def test_every_log_group_has_a_retention_and_is_removed_with_the_stack(template) -> None:
    groups = resources(template, "AWS::Logs::LogGroup")
    assert len(groups) >= 2  # flow logs and the checker's; fixed-name groups are adopted (test_log_groups.py)
    for logical_id, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == 30, logical_id
        assert group["DeletionPolicy"] == "Delete", logical_id


def _view(**over: Any) -> DashboardView:
    stack_free = dict(
        name="hello-health",
        targets=("hello", "api"),
        https_targets=("api",),
        locations=(),
        slo_target_percent=99.9,
        latency_percentile="p90",
        latency_threshold_ms=1000,
        cert_expiry_days=14,
        alarms=(),
    )
    return DashboardView(**(stack_free | over))  # type: ignore[arg-type]


def _bare_stack() -> Stack:
    """A stack of its own, synthesized like tests/infra.py's (without aws-cdk-lib's CloudFormation
    validation, which a bare Stack's implicit App runs)."""
    return Stack(App(builtin_cloud_formation_validation=False))


def _widget(body: dict[str, Any], title_start: str) -> dict[str, Any]:
    [w] = [w for w in body["widgets"] if w["properties"].get("title", "").startswith(title_start)]
    return w["properties"]


def test_the_dashboard_shows_availability_latency_and_failures_per_location() -> None:
    regions = ("us-east-1", "eu-west-1", "ap-southeast-2")
    stack = _bare_stack()
    view = _view(checker=lambda_.Function.from_function_name(stack, "Fn", "checker"), locations=regions)
    Dashboard(stack, "D", view=view)
    [d] = Template.from_stack(stack).find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.loads(_flatten(d["Properties"]["DashboardBody"]))
    text = json.dumps(_widget(body, "Availability (% of probes healthy)"))
    for target in ("hello", "api"):
        for region in regions:
            assert f'"{target} @ {region}"' in text  # one line per target and location
    latency = _widget(body, "Latency: checker (ms)")["metrics"]
    located = {tuple(m[: m.index("Location") + 2])[-1] for m in latency if "Location" in m}
    assert located == set(regions)
    failures = json.dumps(_widget(body, "Errors: failed probes by reason"))
    assert "Target,Location,Reason" in failures
    # The remote checkers' failed runs, which only they can count where the dashboard is.
    own = _widget(body, "Checker Lambda")["metrics"]
    counted = {m[m.index("Location") + 1] for m in own if contract.CHECKER_ERRORS in m}
    assert counted == set(regions[1:])
    # Without a cluster there is nothing about load balancers or pods.
    titles = {w["properties"].get("title", "") for w in body["widgets"]}
    assert not [t for t in titles if "load balancer" in t.lower() or "Saturation" in t]


def test_the_single_region_dashboard_has_no_location() -> None:
    stack = _bare_stack()
    Dashboard(stack, "D", view=_view(checker=lambda_.Function.from_function_name(stack, "Fn", "checker")))
    [d] = Template.from_stack(stack).find_resources("AWS::CloudWatch::Dashboard").values()
    body = _flatten(d["Properties"]["DashboardBody"])
    assert "Location" not in body and '"hello"' in body


@pytest.mark.parametrize("minutes", [1, 5])
def test_the_checkers_own_failure_alarms_count_runs_whatever_the_schedule(minutes: int) -> None:
    """2 of the last 3 runs: with 1-minute periods and a run every 5 minutes, at most one period
    in three holds a failure and the alarms could never fire."""
    t = synth() if minutes == 1 else synth(scheduleMinutes=minutes, probeIntervalSeconds=30)
    own = {
        props["MetricName"]: props
        for props in metric_alarms(t).values()
        if props.get("MetricName") in ("Errors", "Throttles", "FailedInvocations")
    }
    assert set(own) == {"Errors", "Throttles", "FailedInvocations"}
    for name, props in own.items():
        assert (props["Period"], props["DatapointsToAlarm"], props["EvaluationPeriods"]) == (60 * minutes, 2, 3), name


def test_each_remote_checkers_failure_alarm_counts_its_runs_whatever_the_schedule() -> None:
    regions = ["us-east-1", "eu-west-1", "ap-southeast-2"]
    t = synth(checkerRegions=json.dumps(regions), scheduleMinutes=5, probeIntervalSeconds=30)
    remote = [p for p in metric_alarms(t).values() if p.get("MetricName") == contract.CHECKER_ERRORS]
    assert sorted(d["Value"] for p in remote for d in p["Dimensions"]) == sorted(regions[1:])
    assert all((p["Period"], p["DatapointsToAlarm"], p["EvaluationPeriods"]) == (300, 2, 3) for p in remote), remote
