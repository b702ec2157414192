"""Invalid checker settings give one clear error naming the variable."""

from __future__ import annotations

import json

import pytest

from cdk_app.config import _INSTANCE as INSTANCE
from cdk_app.config import AppConfig, ConfigError, arm64_instance, known_instance_types
from checker_lambda.settings import Settings, SettingsError, Target
from tests.infra import ROOT
from tools import local

GOOD = [{"name": "hello", "url": "http://lb.example/hello", "expect_body": "Hello World", "timeout": 5}]


def env(**overrides: str) -> dict[str, str]:
    return {"CHECK_TARGETS": json.dumps(GOOD), **overrides}


def test_defaults() -> None:
    s = Settings.from_env(env())
    assert (s.interval, s.schedule, s.confirm, s.probes_per_invocation, s.high_resolution) == (10, 60, 3, 6, True)
    assert s.targets[0].expect_body == "Hello World"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "CHECK_TARGETS is required"),
        ({"CHECK_TARGETS": "not json"}, "CHECK_TARGETS is not valid JSON"),
        ({"CHECK_TARGETS": "[]"}, "non-empty JSON list"),
        ({"CHECK_TARGETS": '[{"url": "ftp://x/"}]'}, r"CHECK_TARGETS\[0\]\.url='ftp://x/' is not an http"),
        ({"CHECK_TARGETS": '[{"url": "http://x/", "colour": 1}]'}, "unknown key"),
        ({"CHECK_TARGETS": '[{"url": "http://x/", "timeout": 0}]'}, r"\.timeout=0 must be"),
        ({"CHECK_TARGETS": '[{"url": "http://x/", "expect_regex": "("}]'}, "not a valid regex"),
        ({"CHECK_TARGETS": '[{"url": "http://x/a"}, {"url": "http://x/a"}]'}, "names must be unique"),
        (env(PROBE_INTERVAL_SECONDS="ten"), "PROBE_INTERVAL_SECONDS='ten' must be a number"),
        (env(PROBE_INTERVAL_SECONDS="7"), "must divide SCHEDULE_SECONDS"),
        (env(PROBE_INTERVAL_SECONDS="5"), "timeout 5s must be shorter"),
        (env(CONFIRM_PROBES="1"), "CONFIRM_PROBES=1 must be 2..6"),
        (env(LOCATION="Sydney"), "LOCATION=Sydney must be an AWS region name"),
        (env(METRICS_REGION="us_east_1"), "METRICS_REGION=us_east_1 must be an AWS region name"),
    ],
)
def test_invalid_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)


def test_to_env_is_the_inverse_of_from_env_and_writes_no_defaults() -> None:
    settings = Settings(
        targets=(
            Target(name="hello", url="http://lb.example/hello", expect_body="Hello World"),
            Target(name="api", url="https://api.example/health", timeout=2.5, max_body_bytes=2048),
        ),
        interval=30,
        schedule=120,
        confirm=2,
        ca_bundle="/opt/ca.pem",
    )
    env_ = settings.to_env()
    assert Settings.from_env(env_) == settings
    assert set(env_) == {"CHECK_TARGETS", "PROBE_INTERVAL_SECONDS", "SCHEDULE_SECONDS", "CONFIRM_PROBES", "CA_BUNDLE"}
    written = json.loads(env_["CHECK_TARGETS"])
    assert written[0] == {"name": "hello", "url": "http://lb.example/hello", "expect_body": "Hello World"}
    assert written[1] == {"name": "api", "url": "https://api.example/health", "timeout": 2.5, "max_body_bytes": 2048}


def test_a_located_checker_round_trips_its_location_and_home_region() -> None:
    settings = Settings(
        targets=(Target(name="hello", url="http://lb.example/hello"),),
        location="ap-southeast-2",
        metrics_region="us-east-1",
    )
    env_ = settings.to_env()
    assert (env_["LOCATION"], env_["METRICS_REGION"]) == ("ap-southeast-2", "us-east-1")
    assert Settings.from_env(env_) == settings
    assert "LOCATION" not in Settings(targets=settings.targets).to_env()  # one region: none written


CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]


@pytest.mark.parametrize(
    ("given", "says", "never"),
    [
        (
            {"extraTargets": '[{"name": "api", "url": "http://api.example/", "timeout": 12}]'},
            "the probe timeout 12s (context key 'probeTimeoutSeconds', or an extraTargets timeout) must be shorter "
            "than context key 'probeIntervalSeconds'=10",
            "PROBE_INTERVAL_SECONDS",
        ),
        (
            {"extraTargets": '[{"name": "hello", "url": "http://other.example/"}]'},
            "context key 'extraTargets' (with the service's own target 'hello') names must be unique",
            "CHECK_TARGETS",
        ),
        (
            {"probeIntervalSeconds": 30, "scheduleMinutes": 1, "confirmProbes": 3},
            "context key 'confirmProbes'=3 must be 2..2",
            "CONFIRM_PROBES",
        ),
    ],
)
def test_checker_rules_at_synth_name_the_context_keys_the_user_typed(given: dict, says: str, never: str) -> None:
    context = {**CONTEXT, **given}
    with pytest.raises(ConfigError) as error:
        AppConfig.from_context(context.get)
    assert says in str(error.value) and never not in str(error.value), str(error.value)


def test_the_checker_environment_at_synth_is_what_settings_write() -> None:
    context = {**CONTEXT, "extraTargets": '[{"name": "api", "url": "https://api.example/", "max_body_bytes": 4096}]'}
    config = AppConfig.from_context(context.get)
    default = {"name": "hello", "url": "http://lb.example/hello", "timeout": 5}
    env_ = config.checker_environment(default)
    settings = Settings.from_env(env_)
    assert settings == config.checker_settings(default)
    assert [t.name for t in settings.targets] == ["hello", "api"] and settings.targets[1].max_body_bytes == 4096
    assert (settings.interval, settings.schedule, settings.confirm) == (10, 60, 3)


@pytest.mark.parametrize(
    ("instance_type", "arm64"),
    [("a1.large", True), ("t4g.medium", True), ("c8gd.xlarge", True), ("t3.medium", False), ("inf2.xlarge", False)],
)
def test_graviton_is_recognised_as_aws_cdk_lib_does_a1_included(instance_type: str, arm64: bool) -> None:
    config = AppConfig.from_context({**CONTEXT, "nodeInstanceType": instance_type}.get)
    assert config.node_arm64 is arm64


def test_our_architecture_rule_agrees_with_aws_cdk_lib_for_every_instance_type() -> None:
    """A disagreement picks an AMI the node group rejects (a 52-line jsii traceback at synth)."""
    from aws_cdk import aws_ec2 as ec2

    readable = [t for t in sorted(known_instance_types()) if INSTANCE.match(t)]  # the rest are refused
    assert len(readable) > 1000
    disagree = [
        t
        for t in readable
        if arm64_instance(t) != (ec2.InstanceType(t).architecture == ec2.InstanceArchitecture.ARM_64)
    ]
    assert not disagree


@pytest.mark.parametrize("instance_type", ["t9.medium", "t3.huge", "large", "T3.MEDIUM", "mac-m3ultra.metal"])
def test_an_unknown_instance_type_stops_synth_in_one_line(instance_type: str) -> None:
    with pytest.raises(ConfigError) as error:
        AppConfig.from_context({**CONTEXT, "nodeInstanceType": instance_type}.get)
    assert str(error.value).startswith(
        f"context key 'nodeInstanceType'={instance_type!r} is invalid: allowed is an EC2"
    )


def test_make_local_names_its_own_options() -> None:
    args = local.parse_args(["--interval", "10", "--schedule", "60", "--confirm", "7"])
    assert local.invalid_options(args) == (
        "--confirm 7 must be 2..6 "
        "(at least 2, so one failed probe never changes the verdict; at most the probes per run)"
    )


URL_PARAMETER_TARGET = {
    "name": "hello",
    "url_parameter": "/HelloWorldEks/url",
    "url_parameter_region": "us-east-1",
    "expect_body": "Hello World",
}


def test_a_url_parameter_target_round_trips_through_the_environment() -> None:
    s = Settings.from_env({"CHECK_TARGETS": json.dumps([URL_PARAMETER_TARGET]), "LOCATION": "eu-west-1"})
    [t] = s.targets
    assert (t.url, t.url_parameter, t.url_parameter_region) == ("", "/HelloWorldEks/url", "us-east-1")
    assert Settings.from_env(s.to_env()) == s
    assert json.loads(s.to_env()["CHECK_TARGETS"]) == [URL_PARAMETER_TARGET]
    resolved = t.with_url("https://hello.example.com/hello")
    assert resolved.https and resolved.url_parameter == t.url_parameter


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            {**URL_PARAMETER_TARGET, "url": "http://x/"},
            r"CHECK_TARGETS\[0\]: give url .* or url_parameter, exactly one",
        ),
        ({"name": "hello"}, r"CHECK_TARGETS\[0\]: give url .* or url_parameter, exactly one"),
        ({**URL_PARAMETER_TARGET, "url_parameter_region": "Europe"}, r"url_parameter_region='Europe' must be an AWS"),
        ({"url_parameter": "/a"}, r"url_parameter_region=None must be an AWS region"),
        ({**URL_PARAMETER_TARGET, "url_parameter": "no-slash"}, r"url_parameter='no-slash' must be an SSM"),
        ({"url": "http://x/", "url_parameter_region": "us-east-1"}, "url_parameter_region goes with url_parameter"),
    ],
)
def test_a_bad_url_parameter_target_is_one_line(target: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        Settings.from_env({"CHECK_TARGETS": json.dumps([target])})
    assert "\n" not in str(caught.value)


def test_a_url_read_from_the_parameter_is_checked_as_a_given_one() -> None:
    [t] = Settings.from_env({"CHECK_TARGETS": json.dumps([URL_PARAMETER_TARGET])}).targets
    with pytest.raises(SettingsError, match=r"hello \(from /HelloWorldEks/url\)\.url='ftp://x' is not an http"):
        t.with_url("ftp://x")
