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

from cdk_app.config import (
    CHECKER_STACK_PREFIX,
    MONITORING_STACK_NAME,
    SHARED,
    STACK_NAME,
    AppConfig,
    ConfigError,
)
from checker_lambda import contract
from service import settings as svc
from tests.infra import (
    ALARMS_TUNED,
    DEFAULTS,
    as_json,
    exported,
    render,
    resources,
    ssm_typed_parameters,
    stack_dependencies,
    stack_templates,
    statements,
    written_parameters,
)

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
DOMAIN = {"domainName": "hello.example.com", "hostedZoneId": "Z0123456789ABC", "hostedZoneName": "example.com"}


@cache
def three_regions() -> dict[str, Template]:
    return stack_templates(checkerRegions=json.dumps(REGIONS), alertEmail="oncall@example.com")


@cache
def one_region() -> dict[str, Template]:
    return stack_templates(alertEmail="oncall@example.com")


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


URL_ARN = "arn:${{AWS::Partition}}:ssm:{region}:${{AWS::AccountId}}:parameter/HelloWorldEks/url"


def ssm_grants(t: Template) -> dict[str, set[tuple[str, str]]]:
    """Role -> (action, resource) pairs of every SSM permission its inline policies grant."""
    grants: dict[str, set[tuple[str, str]]] = {}
    for p in props(t, "AWS::IAM::Policy"):
        for st in statements(p["PolicyDocument"]):
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            for action in actions:
                if action.lower().startswith("ssm:") and st["Effect"] == "Allow":
                    resources_ = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                    for role in p["Roles"]:
                        grants.setdefault(role["Ref"], set()).update((action, res) for res in resources_)
    return grants


def checker_target(t: Template) -> dict[str, Any]:
    fn = checker_function(t)
    [target] = [x for x in json.loads(render(fn["Environment"]["Variables"]["CHECK_TARGETS"])) if x["name"] == "hello"]
    return target


@pytest.mark.parametrize("setting", ["one region", "one region, domain", "three regions", "three regions, domain"])
def test_every_checker_reads_the_url_the_cluster_stack_writes_at_run_time(setting: str) -> None:
    """Both ends of the URL's hop: the cluster stack writes its listener's URL as
    /HelloWorldEks/url in the home region only, and every checker (home and each remote) names
    that parameter and the home region in its target, its role allowed ssm:GetParameter on
    exactly that ARN; no checker is given a URL at deploy."""
    t = templates(setting)
    home = REGIONS[0] if "three" in setting else "${AWS::Region}"
    assert set(written_parameters(as_json(t[STACK_NAME]))) == {SHARED.url} == {"/HelloWorldEks/url"}
    checkers = [n for n in t if n != STACK_NAME]
    assert len(checkers) == (3 if "three" in setting else 1)
    for name in checkers:
        target = checker_target(t[name])
        assert "url" not in target, name
        assert (target["url_parameter"], target["url_parameter_region"]) == ("/HelloWorldEks/url", home), name
        fn = checker_function(t[name])
        role = fn["Role"]["Fn::GetAtt"][0]
        assert ssm_grants(t[name]) == {role: {("ssm:GetParameter", URL_ARN.format(region=home))}}, name


@pytest.mark.parametrize("setting", ["one region", "three regions"])
def test_the_alarms_import_the_full_names_the_cluster_stack_exports_as_their_dimensions(setting: str) -> None:
    """Both ends of the load balancer's hop: the cluster stack exports the load balancer's and the
    target group's full names (`app/...`, `targetgroup/...`: the AWS/ApplicationELB dimensions,
    not the DNS name) under the pinned names of the configuration, and each ALB alarm's
    LoadBalancer and TargetGroup dimensions import exactly those names."""
    t = templates(setting)
    cluster, health = t[STACK_NAME], t[MONITORING_STACK_NAME]
    [lb] = resources(cluster, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    [tg] = resources(cluster, "AWS::ElasticLoadBalancingV2::TargetGroup")
    exported_ = exported(as_json(cluster))
    assert SHARED.load_balancer_export == "HelloWorldEks-LoadBalancerFullName"
    assert SHARED.target_group_export == "HelloWorldEks-TargetGroupFullName"
    assert exported_[SHARED.load_balancer_export] == {"Fn::GetAtt": [lb, "LoadBalancerFullName"]}
    assert exported_[SHARED.target_group_export] == {"Fn::GetAtt": [tg, "TargetGroupFullName"]}
    expected = {
        "LoadBalancer": {"Fn::ImportValue": SHARED.load_balancer_export},
        "TargetGroup": {"Fn::ImportValue": SHARED.target_group_export},
    }
    dimensions = alb_dimensions(props(health, "AWS::CloudWatch::Alarm"))
    assert any("TargetGroup" in d for d in dimensions) and any("TargetGroup" not in d for d in dimensions)
    for d in dimensions:
        assert "LoadBalancer" in d and d == {k: expected[k] for k in d}, d


def alb_dimensions(value: Any) -> list[dict[str, Any]]:
    """The dimensions of every AWS/ApplicationELB metric in a resource's properties, as a mapping
    (plain alarms and metric-math alarms' MetricStat alike)."""
    if isinstance(value, list):
        return [d for v in value for d in alb_dimensions(v)]
    if not isinstance(value, dict):
        return []
    found = [d for v in value.values() for d in alb_dimensions(v)]
    if value.get("Namespace") == "AWS/ApplicationELB":
        found.append({d["Name"]: d["Value"] for d in value["Dimensions"]})
    return found


def test_single_region_keeps_the_alarms_it_had_and_no_location() -> None:
    health = one_region()[MONITORING_STACK_NAME]
    alarms = props(health, "AWS::CloudWatch::Alarm")
    assert not [a for a in alarms if "Metrics" in a and "FILL" in json.dumps(a["Metrics"])]  # no quorum
    assert contract.LOCATION not in json.dumps(alarms)
    assert "LOCATION" not in checker_function(health)["Environment"]["Variables"]
    outputs = as_json(health)["Outputs"]
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
    assert as_json(health)["Outputs"]["DrillAlarmName"]["Value"] == {"Ref": quorum_id}


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


class Recorder:
    """A CloudWatch client that keeps what it is asked to put."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def put_metric_data(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


def test_each_remote_checker_counts_its_failures_where_an_alarm_reads_them_and_notifies() -> None:
    """Both ends of the hop: what the handler of the checker in each remote stack publishes on a
    failure (read from that stack's Lambda environment) is exactly what one alarm in the home
    stack reads, and that alarm notifies the topic itself (machinery, not a page)."""
    from checker_lambda import handler
    from checker_lambda.metrics import report_error

    t = three_regions()
    health = t[MONITORING_STACK_NAME]
    [topic_id] = resources(health, "AWS::SNS::Topic")
    alarms = {k: a["Properties"] for k, a in resources(health, "AWS::CloudWatch::Alarm").items()}
    errors = {k: a for k, a in alarms.items() if a.get("MetricName") == contract.CHECKER_ERRORS}
    assert len(errors) == len(REGIONS) - 1  # the home checker's errors: its Lambda Errors alarm
    [down] = [
        c["Properties"]
        for c in resources(health, "AWS::CloudWatch::CompositeAlarm").values()
        if c["Properties"].get("AlarmName") == "hello-service-down"
    ]
    for region in REGIONS[1:]:
        env = checker_function(t[f"{CHECKER_STACK_PREFIX}-{region}"])["Environment"]["Variables"]
        destination = handler.error_destination({**env, "AWS_REGION": region})
        assert destination == (region, REGIONS[0])  # published to the home region, where health is
        recorder = Recorder()
        report_error(recorder, destination[0], 0.0)
        [call] = recorder.sent
        [datum] = call["MetricData"]
        [(alarm_id, alarm)] = [
            (k, a)
            for k, a in errors.items()
            if a["Dimensions"] == [{"Name": d["Name"], "Value": d["Value"]} for d in datum["Dimensions"]]
        ]
        assert (alarm["Namespace"], alarm["MetricName"]) == (call["Namespace"], datum["MetricName"])
        assert alarm["Dimensions"] == [{"Name": contract.LOCATION, "Value": region}]
        assert alarm["AlarmName"] == f"hello-checker-errors-{region}"
        assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 60, 1)
        assert (alarm["DatapointsToAlarm"], alarm["EvaluationPeriods"]) == (2, 3)
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": topic_id}]
        assert alarm_id not in json.dumps(down["AlarmRule"])  # notifies, never pages
        assert "First:" in alarm["AlarmDescription"] and region in alarm["AlarmDescription"]
    single = resources(one_region()[MONITORING_STACK_NAME], "AWS::CloudWatch::Alarm").values()
    assert not [a for a in single if a["Properties"].get("MetricName") == contract.CHECKER_ERRORS]


@pytest.mark.parametrize("key", ["cluster"])
def test_a_checker_only_deploy_watches_extra_targets_without_eks(key: str) -> None:
    t = stack_templates(
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
    assert as_json(health)["Outputs"]["DrillAlarmName"]


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
    after = stack_templates(**ALARMS_TUNED)
    assert as_json(after[STACK_NAME]) == as_json(before[STACK_NAME])
    assert as_json(after[MONITORING_STACK_NAME]) != as_json(before[MONITORING_STACK_NAME])


def test_a_checker_only_deploy_in_two_regions_needs_no_cross_region_export() -> None:
    t = stack_templates(
        cluster="false",
        extraTargets=json.dumps([{"name": "site", "url": "https://www.example.com/"}]),
        checkerRegions=json.dumps(REGIONS[:2]),
    )
    remote = t[f"{CHECKER_STACK_PREFIX}-{REGIONS[1]}"]
    assert set(t) == {MONITORING_STACK_NAME, f"{CHECKER_STACK_PREFIX}-{REGIONS[1]}"}
    assert not ssm_grants(remote) and not ssm_typed_parameters(as_json(remote)).keys() - {"BootstrapVersion"}
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


# --- the hops between the stacks: a parameter read at run time, pinned exports ------------------

SETTINGS: dict[str, dict[str, Any]] = {
    "one region": {},
    "one region, domain": DOMAIN,
    "three regions": {"checkerRegions": json.dumps(REGIONS)},
    "three regions, domain": {"checkerRegions": json.dumps(REGIONS), **DOMAIN},
}


@cache
def templates(setting: str) -> dict[str, Template]:
    return stack_templates(alertEmail="oncall@example.com", **SETTINGS[setting])


def region_of(stack_name: str) -> str:
    """The region a stack deploys to: a checker stack's own, the others the home one."""
    prefix = f"{CHECKER_STACK_PREFIX}-"
    return stack_name.removeprefix(prefix) if stack_name.startswith(prefix) else "home"


def exports(template: Template) -> set[str]:
    return set(exported(as_json(template)))


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_no_stack_resolves_an_ssm_parameter_at_deploy_nor_writes_across_regions(setting: str) -> None:
    """AWS does not say whose credentials CloudFormation resolves an SSM parameter type with; the
    default bootstrap's deploy role may read only its version parameter. So no template has such
    a parameter but the CDK's own BootstrapVersion, and nothing writes into another region."""
    for name, template in templates(setting).items():
        body = as_json(template)
        assert set(ssm_typed_parameters(body)) <= {"BootstrapVersion"}, name
        assert all(p["Default"].startswith("/cdk-bootstrap/") for p in ssm_typed_parameters(body).values()), name
        for kind in (
            "Custom::RemoteParameter",
            "Custom::AWS",
            "Custom::CrossRegionExportWriter",
            "Custom::CrossRegionExportReader",
        ):
            assert not resources(template, kind), (name, kind)
        assert "putParameter" not in json.dumps(body), name
        assert "Fn::GetStackOutput" not in json.dumps(body), name


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_only_the_health_stack_imports_and_only_the_pinned_names(setting: str) -> None:
    t = templates(setting)
    for name, template in t.items():
        imports = {json.dumps(m) for m in _find(as_json(template), "Fn::ImportValue")}
        if name == MONITORING_STACK_NAME:
            assert imports == {json.dumps(SHARED.load_balancer_export), json.dumps(SHARED.target_group_export)}
        else:
            assert not imports, name
            if name != STACK_NAME:
                assert not exports(template), name


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_the_url_the_cluster_stack_writes_is_its_listeners(setting: str) -> None:
    cluster = templates(setting)[STACK_NAME]
    url = render(written_parameters(as_json(cluster))[SHARED.url])
    [(lb_id, _)] = resources(cluster, "AWS::ElasticLoadBalancingV2::LoadBalancer").items()
    listeners = {int(p["Port"]): render(p) for p in props(cluster, "AWS::ElasticLoadBalancingV2::Listener")}
    if "domainName" in SETTINGS[setting]:
        assert url == f"https://{DOMAIN['domainName']}{svc.HELLO_PATH}"
        assert listeners[443]["Protocol"] == "HTTPS"
        [record] = [render(r) for r in props(cluster, "AWS::Route53::RecordSet")]
        assert record["Name"].rstrip(".") == DOMAIN["domainName"]
        assert f"${{{lb_id}.DNSName}}" in record["AliasTarget"]["DNSName"]
    else:
        assert url == f"http://${{{lb_id}.DNSName}}{svc.HELLO_PATH}"
        assert listeners[80]["Protocol"] == "HTTP"


def _find(value: Any, key: str) -> list[Any]:
    if isinstance(value, dict):
        return [value[key]] if set(value) == {key} else [x for v in value.values() for x in _find(v, key)]
    if isinstance(value, list):
        return [x for v in value for x in _find(v, key)]
    return []


@pytest.mark.parametrize("regions", ["one region", "three regions"])
def test_turning_the_domain_on_or_off_changes_neither_exported_value(regions: str) -> None:
    """CloudFormation refuses to change an export another stack imports: a domain turned on or off
    changes neither the names nor the values exported, nor what any checker is given (the URL
    itself changes in the parameter only)."""
    plain, domain = templates(regions), templates(f"{regions}, domain")
    assert set(plain) == set(domain)
    ours = (SHARED.load_balancer_export, SHARED.target_group_export)
    a, b = exported(as_json(plain[STACK_NAME])), exported(as_json(domain[STACK_NAME]))
    assert [a[n] for n in ours] == [b[n] for n in ours]
    assert set(written_parameters(as_json(plain[STACK_NAME]))) == set(written_parameters(as_json(domain[STACK_NAME])))
    for name in set(plain) - {STACK_NAME}:
        assert checker_target(plain[name]) == checker_target(domain[name]), name


@pytest.mark.parametrize("setting", ["one region", "three regions"])
def test_the_other_stacks_deploy_after_the_cluster_stack_and_are_destroyed_before_it(setting: str) -> None:
    deps = stack_dependencies(alertEmail="oncall@example.com", **SETTINGS[setting])
    assert deps[STACK_NAME] == set()
    others = set(deps) - {STACK_NAME}
    assert others == {
        MONITORING_STACK_NAME,
        *(f"{CHECKER_STACK_PREFIX}-{r}" for r in REGIONS[1:] if "three" in setting),
    }
    for name in others:
        assert STACK_NAME in deps[name], name


# What the health stack of the release before SSM parameters (3939471) imports, read from its
# synthesized template, in one region and in three (the same names: the cluster stack's region is
# pinned, its exports named alike; the old remote checkers read aws-cdk-lib's cross-region
# parameters, not exports), with plain HTTP and with a domain.
_PREVIOUS_HTTP = {
    "HelloWorldEks:ExportsOutputFnGetAttWorkloadLoadBalancer33BAD6BCDNSNameF8B55F2F",
    "HelloWorldEks:ExportsOutputFnGetAttWorkloadLoadBalancer33BAD6BCLoadBalancerFullName7E52FECC",
    "HelloWorldEks:ExportsOutputFnGetAttWorkloadTargets7E6C5D40TargetGroupFullName83A37C50",
    "HelloWorldEks:ExportsOutputRefWorkloadLoadBalancerHttp4275A5C801EEE0F2",
}
_PREVIOUS_DOMAIN = {
    "HelloWorldEks:ExportsOutputFnGetAttWorkloadLoadBalancer33BAD6BCLoadBalancerFullName7E52FECC",
    "HelloWorldEks:ExportsOutputFnGetAttWorkloadTargets7E6C5D40TargetGroupFullName83A37C50",
    # checkov:skip=CKV_SECRET_6: a CloudFormation export name (stack, logical ID, hash suffix), not a secret
    "HelloWorldEks:ExportsOutputRefWorkloadLoadBalancerHttps1842973E9802C15A",
}
PREVIOUS_IMPORTS = {
    "one region": _PREVIOUS_HTTP,
    "one region, domain": _PREVIOUS_DOMAIN,
    "three regions": _PREVIOUS_HTTP,
    "three regions, domain": _PREVIOUS_DOMAIN,
}


@pytest.mark.parametrize("setting", sorted(PREVIOUS_IMPORTS))
def test_by_default_the_cluster_stack_keeps_what_the_previous_health_stack_imports(setting: str) -> None:
    """Upgrading: CloudFormation refuses to drop an export a deployed stack still imports, and the
    CLI updates the cluster stack first. A forgotten `-c keepExports=true` would fail that update,
    so cdk.json turns it on (the exports lock nothing while nothing imports them) until every
    deployment has run the new health stack once; with keepExports=false there are none."""
    t = templates(setting)  # cdk.json's defaults
    assert PREVIOUS_IMPORTS[setting] <= exports(t[STACK_NAME])
    for name, template in t.items():
        assert not {json.dumps(m) for m in _find(as_json(template), "Fn::ImportValue")} & {
            json.dumps(n) for n in PREVIOUS_IMPORTS[setting]
        }, name
    off = stack_templates(alertEmail="oncall@example.com", keepExports="false", **SETTINGS[setting])
    pinned = {SHARED.load_balancer_export, SHARED.target_group_export}
    for name, template in off.items():
        assert exports(template) == (pinned if name == STACK_NAME else set()), name


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_the_url_is_written_only_once_what_it_names_is_in_place(setting: str) -> None:
    """Every checker probes the parameter's value from its next run: written before the listener,
    certificate and DNS record it names exist, it is an outage seen from every location, and the
    quorum pages."""
    cluster = as_json(templates(setting)[STACK_NAME])["Resources"]
    [(parameter_id, parameter)] = [
        (k, r)
        for k, r in cluster.items()
        if r["Type"] == "AWS::SSM::Parameter" and r["Properties"].get("Name") == SHARED.url
    ]
    needed = {
        k
        for k, r in cluster.items()
        if r["Type"]
        in ("AWS::ElasticLoadBalancingV2::Listener", "AWS::CertificateManager::Certificate", "AWS::Route53::RecordSet")
    }
    assert needed and needed <= set(parameter.get("DependsOn", [])), (parameter_id, needed)
    if "domainName" in SETTINGS[setting]:
        assert {cluster[k]["Type"] for k in needed} >= {
            "AWS::Route53::RecordSet",
            "AWS::CertificateManager::Certificate",
        }


def test_the_url_parameter_keeps_the_logical_id_it_had() -> None:
    """A new logical id makes CloudFormation create the new parameter first, which SSM refuses
    (the name exists: the upgrade rolls back), and then delete the live one with the old resource."""
    for setting in sorted(SETTINGS):
        cluster = as_json(templates(setting)[STACK_NAME])["Resources"]
        assert cluster["SharedUrl6B3DA5D5"]["Properties"]["Name"] == SHARED.url, setting


def test_each_ports_listener_keeps_the_logical_id_of_the_released_version():
    """A listener under a new logical id on a port in use is created before the old one goes, and
    ELBv2 refuses it (DuplicateListener): the upgrade would fail and roll back. The ids of the
    release (3939471), per mode."""

    def by_port(t: Template) -> dict[int, str]:
        listeners = resources(t, "AWS::ElasticLoadBalancingV2::Listener")
        return {int(r["Properties"]["Port"]): k for k, r in listeners.items()}

    assert by_port(stack_templates()[STACK_NAME]) == {80: "WorkloadLoadBalancerHttp4275A5C8"}
    assert by_port(stack_templates(alertEmail="oncall@example.com", **DOMAIN)[STACK_NAME]) == {
        80: "WorkloadLoadBalancerRedirect80To443405A67F9",
        443: "WorkloadLoadBalancerHttps1842973E",
    }


@pytest.mark.parametrize("regions", [1, 3], ids=["single-region", "three-regions"])
def test_each_checkers_failed_url_reads_are_counted_where_one_alarm_reads_them_and_notifies(regions: int) -> None:
    """Both ends: what each checker's publisher sends on a read that fell back to its cached URL
    (its Location and metrics region read from its Lambda's environment) is exactly the metric and
    dimensions one alarm in the home stack reads, in the home region; the alarm notifies the topic
    itself (a stale URL is a notification, not a page), 2 of the last 3 runs, missing data fine."""
    from checker_lambda.metrics import CloudWatchPublisher
    from checker_lambda.probe import ProbeResult
    from checker_lambda.settings import ENV

    t = three_regions() if regions == 3 else one_region()
    health = t[MONITORING_STACK_NAME]
    home = REGIONS[0]
    [topic_id] = resources(health, "AWS::SNS::Topic")
    alarms = {k: a["Properties"] for k, a in resources(health, "AWS::CloudWatch::Alarm").items()}
    reads = {k: a for k, a in alarms.items() if a.get("MetricName") == contract.URL_READ_FAILURES}
    assert len(reads) == 1  # one for every location: an alarm per location would cost each $0.10
    [down] = [
        c["Properties"]
        for c in resources(health, "AWS::CloudWatch::CompositeAlarm").values()
        if c["Properties"].get("AlarmName") == "hello-service-down"
    ]
    checkers = {home: health} | {r: t[f"{CHECKER_STACK_PREFIX}-{r}"] for r in REGIONS[1:regions]}
    matched = set()
    for stack in checkers.values():
        env = checker_function(stack)["Environment"]["Variables"]
        assert env.get(ENV["metrics_region"], home) == home  # the home region's CloudWatch, where the alarm is
        recorder = Recorder()
        publisher = CloudWatchPublisher(recorder, high_resolution=False, location=env.get(ENV["location"]))
        publisher.count_url_read_failures(1, 0.0)
        failed = ProbeResult(target="hello", url="x", started_at=0.0, ok=False, reason=contract.Reason.TIMEOUT)
        publisher.publish([failed])
        [call] = recorder.sent
        [datum] = [d for d in call["MetricData"] if d["MetricName"] == contract.URL_READ_FAILURES]
        dims = [{"Name": d["Name"], "Value": d["Value"]} for d in datum["Dimensions"]]
        assert dims == []
        [(alarm_id, alarm)] = [(k, a) for k, a in reads.items() if a.get("Dimensions", []) == dims]
        matched.add(alarm_id)
        assert (alarm["Namespace"], alarm["MetricName"]) == (call["Namespace"], datum["MetricName"])
        assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 60, 1)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert (alarm["DatapointsToAlarm"], alarm["EvaluationPeriods"]) == (2, 3)
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": topic_id}]
        assert alarm_id not in json.dumps(down["AlarmRule"])  # notifies, never pages
        assert "First:" in alarm["AlarmDescription"]
    assert matched == set(reads)
