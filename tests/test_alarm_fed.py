"""Every alarm is fed (issue 19): each alarm of the plan reads a metric that something publishes.

For the alarms on our namespace (contract.NAMESPACE), the real checker handler runs, cold, with
the environment the stacks give each checker (its Location, the home region to publish to, its
own region), against a moto server and local peers, healthy and with the service down. What it
sends to CloudWatch is read off the real client (botocore's before-parameter-build event for
PutMetricData) and must hold, in the home region, every metric each alarm reads: the same name,
exactly the same dimensions (Location included where the plan has it, nothing more) and a
resolution the alarm's period can read. Then each alarm's own statistic over what was sent says
whether it would breach: none when healthy, every one that reads availability when down.

The metrics published only on a failure are driven here too:
- CertificateDaysRemaining: HTTPS targets (the service's own with a domain, and HTTPS extra
  targets) point at a local TLS server whose self-signed certificate the checker trusts through
  CA_BUNDLE, the only variable the test adds to the stacks' environment;
- UrlReadFailures: the URL parameter deleted after a first good read, the next (warm)
  invocation of the last location checked;
- CheckerErrors: each remote checker fails at its cold start because the URL parameter was never
  written (a real failure, the stacks' environment unchanged); in the checker-only configuration,
  which reads no parameter, a bug is injected in the probing loop (as tests/test_checker_aws.py
  does) and the real report path runs.
Not here: Failures (by reason) is read by no alarm, only by the dashboard and the saved query;
the down runs publish it and tests/test_checker_aws.py asserts its dimensions.

For the alarms on AWS namespaces (AWS/Lambda, AWS/Events, AWS/ApplicationELB), each placeholder
dimension of the plan must resolve, in the synthesized templates, to this deployment's resource:
the home checker function, the rule that schedules it, the load balancer and target group the
cluster stack exports under the names the health stack imports.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

from cdk_app import alarm_plan as ap
from cdk_app.config import MONITORING_STACK_NAME, STACK_NAME, AppConfig, checker_stack_name
from cdk_app.stack import default_target
from checker_lambda import contract
from checker_lambda import handler as checker
from checker_lambda.probe import ProbeResult
from checker_lambda.run import Monitor
from checker_lambda.settings import ENV, REGION_PATTERN, Settings
from tests.conftest import RunningService
from tests.infra import DEFAULTS, as_json, exported, render, stack_templates
from tests.peers import Behaviour, make_certificate, server_tls
from tests.test_checker_aws import Context
from tools.net import free_port

EMAIL = "oncall@example.com"
# The configurations the README offers, spelled as the other infrastructure tests spell them, so
# that a run synthesizes each once (tests/infra.py).
CONFIGS: dict[str, dict[str, Any]] = {
    "one region": {"alertEmail": EMAIL},
    "three regions": {
        "alertEmail": EMAIL,
        "checkerRegions": json.dumps(["us-east-1", "eu-west-1", "ap-southeast-2"]),
    },
    "checker only, two regions": {
        "cluster": "false",
        "extraTargets": json.dumps([{"name": "site", "url": "https://www.example.com/"}]),
        "checkerRegions": json.dumps(["us-east-1", "eu-west-1"]),
    },
    "domain and extra targets": {
        "alertEmail": EMAIL,
        "domainName": "hello.example.com",
        "hostedZoneId": "Z0123456789ABC",
        "hostedZoneName": "example.com",
        "extraTargets": json.dumps([{"name": "api", "url": "https://api.example.com/health", "expect_regex": "ok"}]),
    },
}
MULTI_REGION = [name for name in CONFIGS if json.loads(CONFIGS[name].get("checkerRegions", "[]"))]
SINGLE_REGION = "us-east-1"  # where a one-region deploy runs (moto's default region here)
CHECKER_HANDLER = "checker_lambda.handler.handler"
HELLO_PATH = "/hello"  # where the service's own target's URL points (the parameter's value)
REGION = re.compile(REGION_PATTERN)
PLACEHOLDERS = (ap.CHECKER_FUNCTION, ap.SCHEDULE_RULE, ap.LOAD_BALANCER, ap.TARGET_GROUP)


@cache
def config(name: str) -> AppConfig:
    return AppConfig.from_context({**DEFAULTS, **CONFIGS[name]}.get)


@cache
def plan(name: str) -> ap.Plan:
    return ap.plan(config(name))


def home(c: AppConfig) -> str:
    return c.home_region or SINGLE_REGION


def checkers(c: AppConfig) -> list[tuple[str | None, str]]:
    """Each checker as the stacks deploy it: (its Location, its own region), the home one first."""
    return [(loc, loc) for loc in c.locations] or [(None, SINGLE_REGION)]


def stack_settings(c: AppConfig, location: str | None) -> Settings:
    """The settings behind the environment the stacks give the checker at `location`: HealthStack's
    in the home region (location=home, no METRICS_REGION), CheckerStack's elsewhere."""
    remote = location is not None and location != home(c)
    settings = c.checker_settings(
        default_target(c) if c.deploy_cluster else None,
        location=location,
        metrics_region=c.home_region if remote else None,
    )
    # In one region the parameter's region is the stack's AWS::Region (a token here), which
    # CloudFormation resolves to the region it deploys to.
    targets = tuple(
        dataclasses.replace(t, url_parameter_region=home(c))
        if t.url_parameter_region and not REGION.match(t.url_parameter_region)
        else t
        for t in settings.targets
    )
    return dataclasses.replace(settings, targets=targets)


# --- what the checker sends ---------------------------------------------------------------------


class Sent(NamedTuple):
    region: str  # of the CloudWatch it went to
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]  # sorted
    resolution: int  # StorageResolution
    value: float


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Sent]:
    """Every datapoint any CloudWatch client made with boto3.client sends, as the API receives it."""
    sent: list[Sent] = []
    real_client = boto3.client

    def recording_client(*args: Any, **kwargs: Any) -> Any:
        client = real_client(*args, **kwargs)
        region = client.meta.region_name

        def record(params: dict[str, Any], **_: Any) -> None:
            for d in params["MetricData"]:
                dims = tuple(sorted((x["Name"], x["Value"]) for x in d.get("Dimensions", [])))
                sent.append(
                    Sent(region, params["Namespace"], d["MetricName"], dims, d.get("StorageResolution", 60), d["Value"])
                )

        client.meta.events.register("before-parameter-build.cloudwatch.PutMetricData", record)
        return client

    monkeypatch.setattr(boto3, "client", recording_client)
    return sent


def key(metric: ap.Metric) -> tuple[str, tuple[tuple[str, str], ...]]:
    return metric.name, tuple(sorted(metric.dimensions))


def fed(alarm: ap.Alarm, sent: list[Sent], region: str) -> list[ap.Metric]:
    """The metrics of the alarm's that were sent, with exactly its dimensions, to `region`."""
    there = {(s.name, s.dimensions) for s in sent if s.region == region and s.namespace == contract.NAMESPACE}
    return [m for m in alarm.metrics() if key(m) in there]


def ours(p: ap.Plan) -> list[ap.Alarm]:
    """The alarms that read our namespace (all of their metrics do, or none)."""
    alarms = [a for a in p.metric_alarms if any(m.namespace == contract.NAMESPACE for m in a.metrics())]
    assert all(m.namespace == contract.NAMESPACE for a in alarms for m in a.metrics())
    return alarms


def readable(period: int, resolution: int) -> bool:
    """Whether an alarm with this period can read datapoints stored at this resolution: under a
    minute only high-resolution ones (StorageResolution 1), and then 10, 20 or 30 s (PutMetricAlarm
    accepts those and multiples of 60)."""
    return resolution == 1 and period in (10, 20, 30) if period < 60 else period % 60 == 0


def breaches(alarm: ap.Alarm, sent: list[Sent], region: str) -> bool | None:
    """The alarm's datapoint over everything sent, as if it all fell in one period of the alarm."""
    values = {}
    named = alarm.metric.metrics if isinstance(alarm.metric, ap.Math) else (("", alarm.metric),)
    for i, m in named:
        points = [s.value for s in sent if s.region == region and (s.name, s.dimensions) == key(m)]
        values[i] = ap.statistic(m.statistic, points)
    return alarm.datapoint(values)


# --- local peers --------------------------------------------------------------------------------


class Answers(Behaviour):
    """The service's answer on its path; "ok" on /health, the body extraTargets' api expects."""

    def do_GET(self) -> None:
        self._send(200, b"ok" if self.path == "/health" else b"Hello World")


class Peers(NamedTuple):
    http: str  # the real service, http://127.0.0.1:port
    https: str  # a TLS server, https://localhost:port
    ca_bundle: Path  # its self-signed certificate, which CA_BUNDLE makes the checker trust


@pytest.fixture(scope="module")
def tls_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    cert, private_key = make_certificate(tmp_path_factory.mktemp("tls"), days=90)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    server.daemon_threads = True
    server.socket = server_tls(cert, private_key).wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"https://localhost:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


@pytest.fixture
def peers(live_service: RunningService, tls_peer: tuple[str, Path]) -> Peers:
    return Peers(live_service.url, *tls_peer)


def local(url: str, peers: Peers, *, up: bool) -> str:
    """The URL's path on a local peer of the same scheme: one that answers, or a closed port."""
    parts = urlsplit(url)
    if not up:
        return f"{parts.scheme}://127.0.0.1:{free_port()}{parts.path}"
    return (peers.https if parts.scheme == "https" else peers.http) + parts.path


# --- running the real handler -------------------------------------------------------------------


def service_url(c: AppConfig, peers: Peers, *, up: bool) -> str:
    """What the cluster stack writes into the URL parameter, pointed at a local peer."""
    return local(f"{'https' if c.https else 'http'}://{c.domain_name or 'alb.example.com'}{HELLO_PATH}", peers, up=up)


def write_url(c: AppConfig, url: str) -> None:
    boto3.client("ssm", region_name=home(c)).put_parameter(
        Name=url_parameter(c), Value=url, Type="String", Overwrite=True
    )


def url_parameter(c: AppConfig) -> str:
    [name] = {t.url_parameter for t in stack_settings(c, None).targets if t.url_parameter}
    return name


def environment(c: AppConfig, location: str | None, peers: Peers, *, up: bool) -> dict[str, str]:
    """The stacks' environment for this checker, its extra targets on local peers. A 1-s interval,
    a 2-s schedule, 2 confirming probes and timeouts under the interval, so that a run takes about
    a second: the metrics' names and dimensions do not depend on them. Their resolution does (it
    follows the interval): test_the_configured_interval_publishes_at_a_resolution_every_alarm_can_read
    checks it with the configuration's own."""
    settings = stack_settings(c, location)
    targets = tuple(
        # The service's own target keeps its parameter: its URL is what run_everywhere writes there.
        dataclasses.replace(t, timeout=0.9, url=t.url if t.url_parameter else local(t.url, peers, up=up))
        for t in settings.targets
    )
    quick = dataclasses.replace(settings, targets=targets, interval=1, schedule=2, confirm=2)
    return {**quick.to_env(), ENV["ca_bundle"]: str(peers.ca_bundle)}


def deploy_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str], region: str) -> None:
    """The Lambda's environment: exactly `env`, in `region` (cold: no module state kept)."""
    for name in ENV.values():
        monkeypatch.delenv(name, raising=False)
    for name, value in {**env, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(checker, "_checker", None)


def invoke() -> dict[str, Any]:
    # Scheduled 0.4 s ago, as a cold start makes it: the first slot (half an interval after the
    # scheduled time) is at once, and the run lasts one interval.
    due = datetime.now(UTC) - timedelta(seconds=0.4)
    return checker.handler({"time": due.isoformat()}, Context(30))


def run_everywhere(name: str, monkeypatch: pytest.MonkeyPatch, peers: Peers, *, up: bool) -> list[dict[str, Any]]:
    """One cold invocation of each checker of the configuration, in order, home first."""
    c = config(name)
    if c.deploy_cluster:
        write_url(c, service_url(c, peers, up=up))
    summaries = []
    for location, region in checkers(c):
        deploy_env(monkeypatch, environment(c, location, peers, up=up), region)
        summaries.append(invoke())
    return summaries


def assert_fed(name: str, alarms: list[ap.Alarm], sent: list[Sent]) -> None:
    """Each alarm's metrics were all sent to the home region, at a resolution its period reads."""
    region = home(config(name))
    for alarm in alarms:
        missing = [key(m) for m in alarm.metrics() if m not in fed(alarm, sent, region)]
        assert not missing, (
            f"{name}: {alarm.id} reads {missing}, which no checker sent to {region}; sent: "
            f"{sorted({(s.region, s.name, s.dimensions) for s in sent})}"
        )
        for m in alarm.metrics():
            resolutions = {s.resolution for s in sent if (s.name, s.dimensions) == key(m)}
            assert all(readable(m.period, r) for r in resolutions), (alarm.id, m.period, resolutions)


def assert_all_sent_home(name: str, sent: list[Sent]) -> None:
    """Both ends of the hop: sent to the home region only, and stored there (moto lists them)."""
    region = home(config(name))
    assert sent and {s.region for s in sent} == {region} and {s.namespace for s in sent} == {contract.NAMESPACE}
    listed = boto3.client("cloudwatch", region_name=region).list_metrics(Namespace=contract.NAMESPACE)["Metrics"]
    stored = {(m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]))) for m in listed}
    assert {(s.name, s.dimensions) for s in sent} <= stored


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_a_healthy_service_feeds_every_alarm_on_the_probes_and_a_failed_url_read_feeds_its_own(
    name: str, aws_env: str, peers: Peers, sent: list[Sent], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, p = config(name), plan(name)
    summaries = run_everywhere(name, monkeypatch, peers, up=True)
    assert all(s["probes"] > 0 and s["failed"] == 0 for s in summaries), summaries
    own_counts = {contract.CHECKER_ERRORS, contract.URL_READ_FAILURES}
    probes = [a for a in ours(p) if not {m.name for m in a.metrics()} & own_counts]
    assert_fed(name, probes, sent)
    assert {a.id for a in probes if breaches(a, sent, home(c))} == set()
    if c.deploy_cluster:
        # The parameter unreadable after a first good read: the last checker run (a remote one with
        # several locations) probes the URL it read last, and counts the failed read.
        boto3.client("ssm", region_name=home(c)).delete_parameter(Name=url_parameter(c))
        warm = invoke()
        assert warm["probes"] > 0 and warm["failed"] == 0, warm
        [url_alarm] = [a for a in ours(p) if a.metrics()[0].name == contract.URL_READ_FAILURES]
        assert_fed(name, [url_alarm], sent)
        assert breaches(url_alarm, sent, home(c)) is True
    else:
        assert not [a for a in ours(p) if a.metrics()[0].name == contract.URL_READ_FAILURES]
    assert_all_sent_home(name, sent)
    # The certificates' alarms are among those fed: one for each HTTPS target.
    assert {a.id for a in probes if a.metrics()[0].name == contract.CERT_DAYS_REMAINING} == {
        f"Certificate-{t}" for t in p.https_targets
    }


@pytest.mark.parametrize("name", CONFIGS)
def test_a_service_that_is_down_feeds_every_alarm_on_availability_and_each_breaches(
    name: str, aws_env: str, peers: Peers, sent: list[Sent], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, p = config(name), plan(name)
    summaries = run_everywhere(name, monkeypatch, peers, up=False)
    assert all(s["failed"] == s["probes"] > 0 for s in summaries), summaries
    availability = [a for a in ours(p) if a.metrics()[0].name == contract.AVAILABILITY]
    assert_fed(name, availability, sent)
    # Every one that reads what the probes found breaches; the heartbeats (a count of probes) do not.
    assert {a.id for a in availability if breaches(a, sent, home(c))} == {
        a.id for a in availability if a.metrics()[0].statistic != "SampleCount"
    }
    assert {a.id for a in availability if a.feeds_service_down and breaches(a, sent, home(c))}, "nothing pages"
    # The others are fed only by answers or by the checkers' own failures: while nothing answers
    # they have no data, which must not breach (availability pages instead).
    for alarm in ours(p):
        if alarm not in availability:
            assert not fed(alarm, sent, home(c)) and alarm.missing == ap.Missing.NOT_BREACHING, alarm.id
    assert_all_sent_home(name, sent)


@pytest.mark.parametrize("name", MULTI_REGION)
def test_a_failing_remote_checker_feeds_its_location_s_error_alarm(
    name: str, aws_env: str, peers: Peers, sent: list[Sent], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, p = config(name), plan(name)
    if c.deploy_cluster:
        expected: type[Exception] = ClientError  # the URL parameter was never written: a real failure
    else:

        def fail(self: Monitor, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug in the probing loop")

        monkeypatch.setattr(Monitor, "run", fail)
        expected = RuntimeError
    for location, region in checkers(c):
        deploy_env(monkeypatch, environment(c, location, peers, up=True), region)
        with pytest.raises(expected):
            invoke()
    errors = [a for a in ours(p) if a.metrics()[0].name == contract.CHECKER_ERRORS]
    assert {a.id for a in errors} == {f"CheckerErrors-{loc}" for loc in c.locations[1:]}
    assert_fed(name, errors, sent)
    assert all(breaches(a, sent, home(c)) for a in errors)
    # The home checker counts nothing itself: its Errors alarm reads AWS/Lambda (test below).
    assert {dict(s.dimensions)[contract.LOCATION] for s in sent} == set(c.locations[1:])
    assert_all_sent_home(name, sent)


@pytest.mark.parametrize("name", CONFIGS)
def test_the_configured_interval_publishes_at_a_resolution_every_alarm_can_read(name: str) -> None:
    """With the configuration's own interval (10 s: the availability alarms' period), each checker
    publishes what it sends through the Lambda's own publisher; a 10-s period needs 1-s datapoints."""
    c, p = config(name), plan(name)
    assert any(m.period < 60 for a in ours(p) for m in a.metrics())  # the rule is exercised
    resolution: dict[tuple[str, tuple[tuple[str, str], ...]], set[int]] = {}

    class Client:
        def put_metric_data(self, *, Namespace: str, MetricData: list[dict[str, Any]]) -> None:  # noqa: N803
            for d in MetricData:
                dims = tuple(sorted((x["Name"], x["Value"]) for x in d["Dimensions"]))
                resolution.setdefault((d["MetricName"], dims), set()).add(d["StorageResolution"])

    for location, _ in checkers(c):
        settings = stack_settings(c, location)
        assert settings.interval == c.probe_interval_seconds == 10
        results = []
        for t in settings.targets:
            r = ProbeResult(target=t.name, url=t.url, started_at=0.0, ok=True, status=200)
            r.phases = {"dns": 1.0, "connect": 1.0, "tls": 1.0, "first_byte": 1.0, "total": 4.0}
            r.cert_days_remaining = 90.0
            results.append(r)
        checker.Checker.build(settings, Client()).monitor.publish(results)
    probed = [a for a in ours(p) if a.metrics()[0].name not in (contract.CHECKER_ERRORS, contract.URL_READ_FAILURES)]
    for alarm in probed:
        for m in alarm.metrics():
            assert key(m) in resolution, f"{alarm.id}: no checker publishes {key(m)}"
            assert all(readable(m.period, r) for r in resolution[key(m)]), (alarm.id, m.period, resolution[key(m)])


def _metric_reads(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric name, {dimension: value as written}) of every metric every alarm reads."""
    reads = []
    for r in template["Resources"].values():
        if r["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = r["Properties"]
        metrics = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m] or [props]
        for m in metrics:
            dims = {d["Name"]: d["Value"] for d in m.get("Dimensions", [])}
            reads.append((m["Namespace"], m["MetricName"], dims))
    return reads


@pytest.mark.parametrize("name", CONFIGS)
def test_each_alarm_on_an_aws_metric_reads_this_deployment_s_resource(name: str) -> None:
    c, p = config(name), plan(name)
    templates = {stack: as_json(t) for stack, t in stack_templates(**CONFIGS[name]).items()}
    health = templates[MONITORING_STACK_NAME]
    resources = health["Resources"]
    [function] = [k for k, r in resources.items() if r["Properties"].get("Handler") == CHECKER_HANDLER]
    [rule] = [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::Events::Rule"
        and [x["Arn"] for x in r["Properties"]["Targets"]] == [{"Fn::GetAtt": [function, "Arn"]}]
    ]
    expected: dict[str, Any] = {ap.CHECKER_FUNCTION: {"Ref": function}, ap.SCHEDULE_RULE: {"Ref": rule}}
    exports: dict[str, Any] = {}  # what the cluster stack exports, by name
    if c.deploy_cluster:
        cluster = templates[STACK_NAME]
        [lb] = [k for k, r in cluster["Resources"].items() if r["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"]
        [tg] = [k for k, r in cluster["Resources"].items() if r["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup"]
        expected[ap.LOAD_BALANCER] = {"Fn::GetAtt": [lb, "LoadBalancerFullName"]}
        expected[ap.TARGET_GROUP] = {"Fn::GetAtt": [tg, "TargetGroupFullName"]}
        exports = exported(cluster)
    reads = _metric_reads(health)
    aws_metrics = [m for a in p.metric_alarms for m in a.metrics() if m.namespace != contract.NAMESPACE]
    assert {m.namespace for m in aws_metrics} == (
        {"AWS/Lambda", "AWS/Events", "AWS/ApplicationELB"} if c.deploy_cluster else {"AWS/Lambda", "AWS/Events"}
    )
    for m in aws_metrics:
        matching = [dims for ns, metric, dims in reads if (ns, metric) == (m.namespace, m.name)]
        assert matching, f"{name}: no alarm reads {m.namespace} {m.name}"
        for dims in matching:
            assert set(dims) == set(m.dims), (m.name, dims)
            for dim, placeholder in m.dimensions:
                assert placeholder in PLACEHOLDERS, (m.name, dim, placeholder)
                value = dims[dim]
                if isinstance(value, dict) and "Fn::ImportValue" in value:  # across the stack boundary
                    value = exports[value["Fn::ImportValue"]]
                assert value == expected[placeholder], (m.name, dim, render(value))
    # The checkers these alarms watch run with the environment the checker tests above give them.
    for location, region in checkers(c):
        stack = templates[MONITORING_STACK_NAME if location in (None, home(c)) else checker_stack_name(region)]
        [fn] = [r for r in stack["Resources"].values() if r["Properties"].get("Handler") == CHECKER_HANDLER]
        variables = render(fn["Properties"]["Environment"]["Variables"])
        env = stack_settings(c, location).to_env()
        assert {k: v for k, v in variables.items() if k != ENV["targets"]} == {
            k: v for k, v in env.items() if k != ENV["targets"]
        }
        # The parameter's region aside: in one region the template says ${AWS::Region}.
        assert [without_region(t) for t in json.loads(variables[ENV["targets"]])] == [
            without_region(t) for t in json.loads(env[ENV["targets"]])
        ]


def without_region(target: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in target.items() if k != "url_parameter_region"}
