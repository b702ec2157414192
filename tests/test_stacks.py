"""The stacks: the cluster apart from the checker and its alarms; checkers in several regions
publishing to the home region; a quorum alarm that pages; a checker-only deploy.

Each cross-stack hop is asserted at both ends on the stacks' own templates."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest
from aws_cdk.assertions import Template

from cdk_app.config import CHECKER_STACK_PREFIX, MONITORING_STACK_NAME, STACK_NAME, AppConfig, ConfigError
from checker_lambda import contract
from tests.infra import DEFAULTS, resources, stack_templates

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


@cache
def three_regions() -> dict[str, Template]:
    return stack_templates(checkerRegions=json.dumps(REGIONS), alertEmail="oncall@example.com")[1]


@cache
def one_region() -> dict[str, Template]:
    return stack_templates(alertEmail="oncall@example.com")[1]


def props(t: Template, kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in resources(t, kind).values()]


def checker_function(t: Template) -> dict[str, Any]:
    [fn] = [p for p in props(t, "AWS::Lambda::Function") if p.get("Handler") == "checker_lambda.handler.handler"]
    return fn


def test_the_cluster_stack_holds_no_alarm_no_topic_no_checker() -> None:
    cluster = one_region()[STACK_NAME]
    for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm", "AWS::SNS::Topic", "AWS::Events::Rule"):
        assert not resources(cluster, kind), kind
    assert not [
        p for p in props(cluster, "AWS::Lambda::Function") if p.get("Handler") == "checker_lambda.handler.handler"
    ]


def test_the_checker_probes_the_url_the_cluster_stack_exports() -> None:
    """Both ends: the cluster stack exports its load balancer's DNS name, the checker imports it."""
    t = one_region()
    exported = {
        o["Export"]["Name"]["Fn::Join"][1][-1] if isinstance(o["Export"]["Name"], dict) else o["Export"]["Name"]: o
        for o in t[STACK_NAME].to_json()["Outputs"].values()
        if "Export" in o
    }
    env = json.dumps(checker_function(t[MONITORING_STACK_NAME])["Environment"]["Variables"]["CHECK_TARGETS"])
    dns = [o for o in t[STACK_NAME].to_json()["Outputs"].values() if "Export" in o and "DNSName" in json.dumps(o)]
    assert dns and exported
    [name] = [o["Export"]["Name"] for o in dns]
    assert json.dumps({"Fn::ImportValue": name}) in env


def test_single_region_keeps_the_alarms_it_had_and_no_location() -> None:
    health = one_region()[MONITORING_STACK_NAME]
    alarms = props(health, "AWS::CloudWatch::Alarm")
    assert not [a for a in alarms if "Metrics" in a and "FILL" in json.dumps(a["Metrics"])]  # no quorum
    assert contract.LOCATION not in json.dumps(alarms)
    assert "LOCATION" not in checker_function(health)["Environment"]["Variables"]
    outputs = health.to_json()["Outputs"]
    drill = outputs["DrillAlarmName"]["Value"]
    [availability] = [
        k
        for k, a in resources(health, "AWS::CloudWatch::Alarm").items()
        if a["Properties"].get("MetricName") == contract.AVAILABILITY and a["Properties"]["Statistic"] == "Minimum"
    ]
    assert drill == {"Ref": availability}
    [down] = [
        k for k, c in resources(health, "AWS::CloudWatch::CompositeAlarm").items() if "service-down" in json.dumps(c)
    ]
    assert outputs["ServiceDownAlarmName"]["Value"] == {"Ref": down}


def test_three_regions_give_three_scheduled_checkers_publishing_to_the_home_region() -> None:
    t = three_regions()
    assert set(t) == {STACK_NAME, MONITORING_STACK_NAME, *(f"{CHECKER_STACK_PREFIX}-{r}" for r in REGIONS[1:])}
    for region in REGIONS:
        stack = t[MONITORING_STACK_NAME] if region == REGIONS[0] else t[f"{CHECKER_STACK_PREFIX}-{region}"]
        fn = checker_function(stack)
        env = fn["Environment"]["Variables"]
        assert env["LOCATION"] == region
        # The remote ones publish to the home region's CloudWatch; the home one to its own.
        assert env.get("METRICS_REGION") == (None if region == REGIONS[0] else REGIONS[0])
        [rule] = props(stack, "AWS::Events::Rule")
        assert rule["ScheduleExpression"] == "rate(1 minute)" and rule["State"] == "ENABLED"
        [role_policy] = [
            s
            for p in props(stack, "AWS::IAM::Policy")
            for s in p["PolicyDocument"]["Statement"]
            if s["Action"] == "cloudwatch:PutMetricData"
        ]
        assert role_policy["Condition"] == {"StringEquals": {"cloudwatch:namespace": contract.NAMESPACE}}
        assert role_policy["Resource"] == "*"


def test_the_remote_checker_gets_the_url_through_a_deploy_time_cross_region_export() -> None:
    """The cluster stack writes the URL's DNS name into the remote region (an SSM parameter, at
    deploy time); the remote stack reads that parameter: no AWS call at synth."""
    t = three_regions()
    region = REGIONS[1]
    remote = t[f"{CHECKER_STACK_PREFIX}-{region}"]
    writers = props(t[STACK_NAME], "Custom::CrossRegionExportWriter")
    assert sorted(w["WriterProps"]["region"] for w in writers) == sorted(REGIONS[1:])  # one per remote region
    [writer] = [w for w in writers if w["WriterProps"]["region"] == region]
    [(parameter, value)] = writer["WriterProps"]["exports"].items()
    assert "DNSName" in json.dumps(value)
    targets = json.dumps(checker_function(remote)["Environment"]["Variables"]["CHECK_TARGETS"])
    assert parameter in targets
    assert resources(remote, "Custom::CrossRegionExportReader")


def test_the_quorum_alarm_covers_every_location_and_feeds_service_down() -> None:
    health = three_regions()[MONITORING_STACK_NAME]
    alarms = resources(health, "AWS::CloudWatch::Alarm")
    [(quorum_id, quorum)] = [(k, a["Properties"]) for k, a in alarms.items() if "Quorum" in k]
    stats = [m["MetricStat"] for m in quorum["Metrics"] if "MetricStat" in m]
    locations = {}
    for s in stats:
        dims = {d["Name"]: d["Value"] for d in s["Metric"]["Dimensions"]}
        assert s["Metric"]["MetricName"] == contract.AVAILABILITY and s["Stat"] == "Minimum" and s["Period"] == 10
        assert s["Metric"]["Namespace"] == contract.NAMESPACE and dims[contract.TARGET] == "hello"
        locations[dims[contract.LOCATION]] = s
    assert sorted(locations) == sorted(REGIONS)
    [expression] = [m["Expression"] for m in quorum["Metrics"] if "Expression" in m]
    for m in quorum["Metrics"]:
        if "MetricStat" in m:
            assert f"FILL({m['Id']}, 1)" in expression  # every location counts
    assert quorum["Threshold"] == 2 and quorum["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert (quorum["DatapointsToAlarm"], quorum["EvaluationPeriods"]) == (3, 5)
    assert "AlarmActions" not in quorum
    [down] = [
        c["Properties"]
        for c in resources(health, "AWS::CloudWatch::CompositeAlarm").values()
        if c["Properties"].get("AlarmName") == "hello-service-down"
    ]
    assert quorum_id in json.dumps(down["AlarmRule"])
    assert health.to_json()["Outputs"]["DrillAlarmName"]["Value"] == {"Ref": quorum_id}


def test_per_location_alarms_have_no_actions_and_do_not_page() -> None:
    health = three_regions()[MONITORING_STACK_NAME]
    per_location = {
        k: a["Properties"]
        for k, a in resources(health, "AWS::CloudWatch::Alarm").items()
        if contract.LOCATION in json.dumps(a["Properties"].get("Dimensions", []))
        and a["Properties"]["MetricName"] == contract.AVAILABILITY
    }
    assert len(per_location) == 2 * len(REGIONS)  # availability and heartbeat per location
    [down] = [
        c["Properties"]
        for c in resources(health, "AWS::CloudWatch::CompositeAlarm").values()
        if c["Properties"].get("AlarmName") == "hello-service-down"
    ]
    for logical_id, a in per_location.items():
        assert not a.get("AlarmActions") and not a.get("OKActions"), logical_id
        assert logical_id not in json.dumps(down["AlarmRule"])


def test_one_location_alone_notifies_as_machinery_not_as_a_page() -> None:
    health = three_regions()[MONITORING_STACK_NAME]
    composites = resources(health, "AWS::CloudWatch::CompositeAlarm")
    [down] = [c["Properties"] for c in composites.values() if c["Properties"].get("AlarmName") == "hello-service-down"]
    alarms = resources(health, "AWS::CloudWatch::Alarm")
    [quorum_id] = [k for k in alarms if "Quorum" in k]
    per_location = {
        a["Properties"]["AlarmName"]: k
        for k, a in alarms.items()
        if a["Properties"].get("MetricName") == contract.AVAILABILITY
        and "Dimensions" in a["Properties"]
        and a["Properties"]["Statistic"] == "Minimum"
    }
    assert sorted(per_location) == sorted(f"hello-hello-availability-{r}" for r in REGIONS)  # names say where
    [(alone_id, alone)] = [(k, c["Properties"]) for k, c in composites.items() if "Alone" in k]
    rule = json.dumps(alone["AlarmRule"])
    assert "NOT" in rule and quorum_id in rule
    for logical_id in per_location.values():
        assert logical_id in rule
    assert alone["AlarmActions"] and alone["OKActions"]  # notifies on its own
    assert alone["ActionsSuppressor"] == {"Fn::GetAtt": [quorum_id, "Arn"]}
    assert alone["ActionsSuppressorWaitPeriod"] == 60 and alone["ActionsSuppressorExtensionPeriod"] == 60
    assert alone_id not in json.dumps(down["AlarmRule"])
    assert "others do not" in alone["AlarmDescription"]


@pytest.mark.parametrize("key", ["cluster"])
def test_a_checker_only_deploy_watches_extra_targets_without_eks(key: str) -> None:
    _, t = stack_templates(
        **{key: "false"},
        extraTargets=json.dumps([{"name": "site", "url": "https://www.example.com/"}]),
        alertEmail="oncall@example.com",
    )
    assert set(t) == {MONITORING_STACK_NAME}
    health = t[MONITORING_STACK_NAME]
    assert not resources(health, "AWS::EKS::Cluster") and not resources(
        health, "AWS::ElasticLoadBalancingV2::LoadBalancer"
    )
    targets = json.loads(checker_function(health)["Environment"]["Variables"]["CHECK_TARGETS"])
    assert [x["name"] for x in targets] == ["site"]
    assert health.to_json()["Outputs"]["DrillAlarmName"]


def config(**context: Any) -> AppConfig:
    merged = {**DEFAULTS, **context}
    return AppConfig.from_context(merged.get, keys=merged)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"checkerRegions": '["us-east-1","Europe"]'}, "context key 'checkerRegions'='Europe' is invalid"),
        ({"checkerRegions": '["us-east-1","us-east-1"]'}, "context key 'checkerRegions'="),
        ({"checkerRegions": '["us-east-1","eu-west-1"]', "checkerQuorum": 3}, "context key 'checkerQuorum'=3"),
        ({"checkerQuorum": 2}, "context key 'checkerQuorum'=2"),  # one location: nothing to count
        ({"cluster": "false"}, "context key 'extraTargets'=[] is invalid: allowed is at least one target"),
    ],
)
def test_bad_location_settings_stop_synth_naming_the_key(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config(**context)


def test_the_quorum_defaults_to_a_majority_of_the_locations() -> None:
    assert config(checkerRegions='["us-east-1","eu-west-1","ap-southeast-2"]').quorum == 2
    assert config(checkerRegions='["us-east-1","eu-west-1"]').quorum == 2
    assert config(checkerRegions='["eu-west-1"]').locations == ()  # one region: no Location dimension
    five = '["us-east-1","eu-west-1","ap-southeast-2","sa-east-1","ap-northeast-1"]'
    assert config(checkerRegions=five).quorum == 3
    assert config(checkerRegions=five, checkerQuorum=2).quorum == 2


def test_too_few_reporting_locations_page_and_one_silent_location_notifies() -> None:
    health = three_regions()[MONITORING_STACK_NAME]
    composites = {k: c["Properties"] for k, c in resources(health, "AWS::CloudWatch::CompositeAlarm").items()}
    [down] = [c for c in composites.values() if c.get("AlarmName") == "hello-service-down"]
    heartbeats = [
        k
        for k, a in resources(health, "AWS::CloudWatch::Alarm").items()
        if a["Properties"].get("Statistic") == "SampleCount"
    ]
    assert len(heartbeats) == len(REGIONS)
    [(silent_id, silent)] = [(k, c) for k, c in composites.items() if k.startswith("MonitoringCheckersSilent")]
    # 2 of 3 must report for a quorum of 2: any two silent pages (every pair, each with AND).
    rule = silent["AlarmRule"]
    assert json.dumps(rule).count(" AND ") == 3 and all(h in json.dumps(rule) for h in heartbeats)
    assert silent_id in json.dumps(down["AlarmRule"]) and "AlarmActions" not in silent
    [one] = [c for k, c in composites.items() if k.startswith("MonitoringCheckerSilent")]
    assert one["AlarmActions"] and all(h in json.dumps(one["AlarmRule"]) for h in heartbeats)


def test_changing_an_alarm_leaves_the_cluster_stack_as_it_was() -> None:
    """An alarm's threshold, the probe timing, the SLO: only the monitoring stack changes."""
    before = one_region()
    _, after = stack_templates(
        alertEmail="oncall@example.com", latencyThresholdMs=250, sloTargetPercent=99.5, confirmProbes=2
    )
    assert after[STACK_NAME].to_json() == before[STACK_NAME].to_json()
    assert after[MONITORING_STACK_NAME].to_json() != before[MONITORING_STACK_NAME].to_json()


def test_a_checker_only_deploy_in_two_regions_needs_no_cross_region_export() -> None:
    _, t = stack_templates(
        cluster="false",
        extraTargets=json.dumps([{"name": "site", "url": "https://www.example.com/"}]),
        checkerRegions=json.dumps(REGIONS[:2]),
    )
    remote = t[f"{CHECKER_STACK_PREFIX}-{REGIONS[1]}"]
    assert set(t) == {MONITORING_STACK_NAME, f"{CHECKER_STACK_PREFIX}-{REGIONS[1]}"}
    assert not resources(remote, "Custom::CrossRegionExportReader")  # the URL is the user's, known at synth
    env = checker_function(remote)["Environment"]["Variables"]
    assert [x["name"] for x in json.loads(env["CHECK_TARGETS"])] == ["site"]
    assert (env["LOCATION"], env["METRICS_REGION"]) == (REGIONS[1], REGIONS[0])


def test_what_only_the_home_location_sees_notifies_and_never_pages() -> None:
    """Latency and the fast burn read the home checker only: with several locations, a home-only
    problem is one location's view, so it notifies (the quorum alarm is what pages)."""
    health = three_regions()[MONITORING_STACK_NAME]
    composites = resources(health, "AWS::CloudWatch::CompositeAlarm")
    alarms = resources(health, "AWS::CloudWatch::Alarm")
    [down] = [c["Properties"] for c in composites.values() if c["Properties"].get("AlarmName") == "hello-service-down"]
    rule = json.dumps(down["AlarmRule"])
    [latency_id] = [k for k, a in alarms.items() if a["Properties"].get("MetricName") == contract.LATENCY]
    [fast_burn_id] = [k for k in composites if k.startswith("MonitoringFastBurn")]
    for logical_id, props_ in (
        (latency_id, alarms[latency_id]["Properties"]),
        (fast_burn_id, composites[fast_burn_id]["Properties"]),
    ):
        assert logical_id not in rule, logical_id
        assert props_["AlarmActions"] and props_["OKActions"], logical_id  # still heard, as a notification
    # One region: both page through service-down, as before.
    single = one_region()[MONITORING_STACK_NAME]
    single_rule = json.dumps(
        [
            c["Properties"]["AlarmRule"]
            for c in resources(single, "AWS::CloudWatch::CompositeAlarm").values()
            if c["Properties"].get("AlarmName") == "hello-service-down"
        ]
    )
    single_alarms = resources(single, "AWS::CloudWatch::Alarm")
    [single_latency] = [k for k, a in single_alarms.items() if a["Properties"].get("MetricName") == contract.LATENCY]
    assert single_latency in single_rule
    assert any(
        k.startswith("MonitoringFastBurn") and k in single_rule
        for k in resources(single, "AWS::CloudWatch::CompositeAlarm")
    )
