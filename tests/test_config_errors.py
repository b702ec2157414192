"""Each rule of the configuration that is not a bound, by the whole line a user reads when it
refuses a value (tests/test_config_bounds.py holds the bounds): the key, the value as given and
what is allowed. Mutation testing found these lines checked only in part, or only through synth.
Values come as the CDK CLI gives them (`-c key=value`: strings) unless cdk.json's own type matters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cdk_app.config import AppConfig, ConfigError
from tests.infra import DEFAULTS

TWO_REGIONS = json.dumps(["us-east-1", "eu-west-1"])
EIGHT_REGIONS = [
    "us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "eu-central-1", "ap-northeast-1", "sa-east-1",
    "ca-central-1",
]  # fmt: skip


def from_context(**context: Any) -> AppConfig:
    merged = {**DEFAULTS, **context}
    return AppConfig.from_context(merged.get, keys=merged)


def refused(**context: Any) -> str:
    with pytest.raises(ConfigError) as error:
        from_context(**context)
    return str(error.value)


@pytest.mark.parametrize(
    ("context", "line"),
    [
        (
            {"alertWebhooks": "[nope"},
            "context key 'alertWebhooks' is not valid JSON: Expecting value: line 1 column 2 (char 1)",
        ),
        ({"checkerRegions": '{"a": 1}'}, "context key 'checkerRegions'={'a': 1} is invalid: allowed is a JSON list"),
        (
            {"checkerRegions": "[1]"},
            "context key 'checkerRegions'=1 is invalid: allowed is a list of AWS region names like eu-west-1, "
            "the home region first",
        ),
        (
            {"availabilityZones": '["use1-az1", "use1-az2"]'},
            "context key 'availabilityZones'='use1-az1' is invalid: allowed is a list of Availability Zone names "
            "like us-east-1b",
        ),
        (
            {"extraTargets": '["http://x.example/"]'},
            "context key 'extraTargets'=['http://x.example/'] is invalid: allowed is a list of {name, url, ...} "
            "objects",
        ),
        (
            {"cluster": "false"},
            "context key 'extraTargets'=[] is invalid: allowed is at least one target when cluster is false "
            "(nothing else to watch)",
        ),
        (
            {"apiCidrs": '["0.0.0.0/0", "203.0.113.0/24"]'},
            "context key 'apiCidrs'=['0.0.0.0/0', '203.0.113.0/24'] is invalid: allowed is [] (private), 1..40 CIDRs, "
            'or ["0.0.0.0/0"] alone (the internet)',
        ),
        (
            {"domainName": "hello.example.org", "hostedZoneId": "Z0123456789ABC", "hostedZoneName": "example.com"},
            "context key 'domainName'='hello.example.org' is invalid: allowed is a name inside hostedZoneName "
            "(example.com)",
        ),
        (
            # 90 probes a run, each with up to 6 datapoints (the service) and 8 (an HTTPS target), + 1
            {
                "scheduleMinutes": "15",
                "probeIntervalSeconds": "10",
                "extraTargets": json.dumps([{"name": "x", "url": "https://x.example/"}]),
            },
            "context keys 'scheduleMinutes', 'probeIntervalSeconds' and 'extraTargets' are invalid together: one "
            "checker run could produce 1261 datapoints, more than one PutMetricData call takes (1000); allowed is "
            "fewer targets, a shorter schedule or a longer interval",
        ),
        (
            {"scheduleMinutes": "15", "probeIntervalSeconds": "30", "probeTimeoutSeconds": "29"},
            "context keys 'scheduleMinutes', 'probeIntervalSeconds' and 'probeTimeoutSeconds' are invalid together: "
            "a checker run needs 927 s to probe its last slot and publish it, more than Lambda's 900 s; allowed is a "
            "shorter schedule or a longer interval",
        ),
        (
            {"domainName": "not a name"},
            "context key 'domainName'='not a name' is invalid: allowed is a DNS name like hello.example.com or ''",
        ),
        (
            {"domainName": "hello.example.com", "hostedZoneId": "nope", "hostedZoneName": "example.com"},
            "context key 'hostedZoneId'='nope' is invalid: allowed is a Route 53 zone ID like Z0123456789ABC or ''",
        ),
        (
            {"domainName": "hello.example.com", "hostedZoneId": "Z0123456789ABC", "hostedZoneName": "example..com"},
            "context key 'hostedZoneName'='example..com' is invalid: allowed is the zone's DNS name like example.com "
            "or ''",
        ),
        (
            {"alertWebhooks": '["http://chat.example/hook"]'},
            "context key 'alertWebhooks'='http://chat.example/hook' is invalid: allowed is a list of https:// URLs",
        ),
        (
            # 8 regions, 4 must see a failure: 5 silent leave fewer, C(8, 5) groups of 5 heartbeats
            {"checkerRegions": json.dumps(EIGHT_REGIONS), "checkerQuorum": "4"},
            "context keys 'checkerRegions' (8 regions) and 'checkerQuorum' (4) are invalid together: the 'checkers "
            "silent' alarm would name 280 heartbeat alarms, more than a composite alarm's 10240-character rule "
            "holds; allowed is at most 6 regions, or a quorum closer to the number of regions",
        ),
        ({"flavour": "x"}, "context key 'flavour' is unknown: the keys this app reads are in cdk.json"),
        ({"alertemail": "a@example.com"}, "context key 'alertemail' is unknown: did you mean 'alertEmail'?"),
    ],
    ids=[
        "not-json",
        "not-a-list",
        "region-not-a-string",
        "zone-ids-not-names",
        "targets-not-objects",
        "nothing-to-watch",
        "the-internet-only-alone",
        "domain-outside-its-zone",
        "more-than-one-put-metric-data",
        "longer-than-lambda",
        "domain-not-a-name",
        "zone-id",
        "zone-name",
        "webhook-not-https",
        "silent-rule-too-long",
        "unknown-key",
        "misspelled-key",
    ],
)
def test_a_refused_configuration_is_one_line_naming_the_key_the_value_and_what_is_allowed(
    context: dict[str, Any], line: str
) -> None:
    assert refused(**context) == line


def test_a_key_missing_from_cdk_json_is_named() -> None:
    context = {k: v for k, v in DEFAULTS.items() if k != "nodeCount"}
    with pytest.raises(ConfigError) as error:
        AppConfig.from_context(context.get, keys=context)
    assert str(error.value) == "context key 'nodeCount' is missing (its default belongs in cdk.json)"


def test_a_checker_in_another_region_is_timed_with_its_slower_publish() -> None:
    """At 12.5 s a probe, the home checker's run just fits Lambda's 900 s (900 s); with two regions
    each checker publishes to the home region across the world (a slower budget): 904 s, refused."""
    edge = {"scheduleMinutes": "15", "probeIntervalSeconds": "30", "probeTimeoutSeconds": "12.5"}
    assert from_context(**edge).checker_timeout_seconds() == 900
    assert refused(**edge, checkerRegions=TWO_REGIONS).startswith(
        "context keys 'scheduleMinutes', 'probeIntervalSeconds' and 'probeTimeoutSeconds' are invalid together: "
        "a checker run needs 904 s"
    )


@pytest.mark.parametrize(("given", "read"), [("true", True), ("TRUE", True), ("False", False), (True, True)])
def test_a_boolean_given_on_the_command_line_is_read_whatever_its_case(given: Any, read: bool) -> None:
    assert from_context(vpcEndpoints=given).vpc_endpoints is read


def test_the_cdks_own_context_keys_are_not_taken_for_misspelled_ones() -> None:
    cdk_keys = {
        "@aws-cdk/core:newStyleStackSynthesis": True,
        "aws:cdk:enable-path-metadata": True,
        "availability-zones:account=123456789012:region=us-east-1": ["us-east-1a"],
        "acknowledged-issue-numbers": [32775],
        "cli-telemetry": False,
    }
    assert from_context(**cdk_keys).name_prefix == DEFAULTS["namePrefix"]


def test_api_cidrs_are_taken_once_each_and_the_internet_alone() -> None:
    c = from_context(apiCidrs='["203.0.113.0/24", "198.51.100.7/32", "203.0.113.0/24"]')
    assert c.api_cidrs == ("203.0.113.0/24", "198.51.100.7/32")
    assert from_context(apiCidrs='["0.0.0.0/0"]').api_cidrs == ("0.0.0.0/0",)
    assert from_context(apiCidrs="[]").api_cidrs == ()
