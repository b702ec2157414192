"""Every bound of the configuration at its edge: the last allowed value passes, the first
disallowed one stops synth (or the checker) with one line naming the key. A bound moved by
one, or a comparison turned strict, fails here."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cdk_app.config import AppConfig, ConfigError
from checker_lambda.settings import MAX_TARGETS, Settings, SettingsError, Target
from tests.infra import DEFAULTS

REGIONS = [
    "us-east-1",
    "eu-west-1",
    "ap-southeast-2",
    "us-west-2",
    "eu-central-1",
    "ap-northeast-1",
    "sa-east-1",
    "ca-central-1",
    "eu-north-1",
]
SHORTER = "must be shorter than context key 'probeIntervalSeconds'"


def invalid(key: str, value: Any, allowed: str) -> str:
    return f"context key '{key}'={value!r} is invalid: allowed is {allowed}"


def timeout_line(timeout: float, interval: int) -> str:
    return (
        f"the probe timeout {timeout:g}s (context key 'probeTimeoutSeconds', or an extraTargets timeout) "
        f"{SHORTER}={interval}"
    )


# (id: what the bound protects, the key, last allowed, first refused, other keys, the error line)
CONTEXT_EDGES: list[tuple[str, str, Any, Any, dict[str, Any], str]] = [
    (
        # The PodDisruptionBudget keeps one pod available (minAvailable 1): with one replica no
        # pod may ever be evicted, and every node drain (an upgrade, a scale-in) hangs on it.
        "podMinReplicas-leaves-a-pod-to-evict-under-the-disruption-budget",
        "podMinReplicas",
        2,
        1,
        {},
        invalid("podMinReplicas", 1, "an integer 2..50"),
    ),
    (
        "podMinReplicas-top",
        "podMinReplicas",
        50,
        51,
        {"podMaxReplicas": 100},
        invalid("podMinReplicas", 51, "an integer 2..50"),
    ),
    (
        "podMaxReplicas-not-below-podMinReplicas",
        "podMaxReplicas",
        3,
        2,
        {"podMinReplicas": 3},
        invalid("podMaxReplicas", 2, "at least podMinReplicas (3)"),
    ),
    ("podMaxReplicas-top", "podMaxReplicas", 100, 101, {}, invalid("podMaxReplicas", 101, "an integer 2..100")),
    ("nodeCount-at-least-one-node", "nodeCount", 1, 0, {}, invalid("nodeCount", 0, "an integer 1..20")),
    ("nodeCount-top", "nodeCount", 20, 21, {"nodeMaxCount": 20}, invalid("nodeCount", 21, "an integer 1..20")),
    (
        "nodeMaxCount-not-below-nodeCount",
        "nodeMaxCount",
        2,
        1,
        {},
        invalid("nodeMaxCount", 1, "at least nodeCount (2)"),
    ),
    ("nodeMaxCount-top", "nodeMaxCount", 50, 51, {}, invalid("nodeMaxCount", 51, "an integer 1..50")),
    ("natGateways-bottom", "natGateways", 1, 0, {}, invalid("natGateways", 0, "an integer 1..2")),
    ("natGateways-top", "natGateways", 2, 3, {}, invalid("natGateways", 3, "an integer 1..2")),
    ("scheduleMinutes-bottom", "scheduleMinutes", 1, 0, {}, invalid("scheduleMinutes", 0, "an integer 1..15")),
    (
        # EventBridge runs the checker every scheduleMinutes; a run must end within Lambda's 900 s.
        "scheduleMinutes-within-lambdas-15-minutes",
        "scheduleMinutes",
        15,
        16,
        {"probeIntervalSeconds": 30},
        invalid("scheduleMinutes", 16, "an integer 1..15"),
    ),
    (
        "probeTimeoutSeconds-bottom",
        "probeTimeoutSeconds",
        0.5,
        0.49,
        {},
        invalid("probeTimeoutSeconds", 0.49, "a number 0.5..30"),
    ),
    (
        # A probe still running when the next one starts would overlap it: slots are one interval apart.
        "probeTimeoutSeconds-ends-before-the-next-probe",
        "probeTimeoutSeconds",
        9.99,
        10,
        {},
        timeout_line(10, 10),
    ),
    (
        "probeTimeoutSeconds-top",
        "probeTimeoutSeconds",
        30,
        30.01,
        {"probeIntervalSeconds": 60, "scheduleMinutes": 2, "confirmProbes": 2},
        invalid("probeTimeoutSeconds", 30.01, "a number 0.5..30"),
    ),
    (
        # At least 2, so one failed probe never changes the verdict.
        "confirmProbes-one-failure-never-pages",
        "confirmProbes",
        2,
        1,
        {},
        invalid("confirmProbes", 1, "an integer 2..10"),
    ),
    (
        # At most the probes of one run (6 at 10 s every minute).
        "confirmProbes-at-most-the-probes-per-run",
        "confirmProbes",
        6,
        7,
        {},
        "context key 'confirmProbes'=7 must be 2..6 "
        "(at least 2, so one failed probe never changes the verdict; at most the probes per run)",
    ),
    (
        "confirmProbes-top",
        "confirmProbes",
        10,
        11,
        {"scheduleMinutes": 2},
        invalid("confirmProbes", 11, "an integer 2..10"),
    ),
    (
        # 0 days would warn only once the certificate had expired.
        "certExpiryDays-warns-before-expiry",
        "certExpiryDays",
        1,
        0,
        {},
        invalid("certExpiryDays", 0, "an integer 1..365"),
    ),
    ("certExpiryDays-top", "certExpiryDays", 365, 366, {}, invalid("certExpiryDays", 366, "an integer 1..365")),
    (
        "latencyThresholdMs-bottom",
        "latencyThresholdMs",
        10,
        9,
        {},
        invalid("latencyThresholdMs", 9, "an integer 10..60000"),
    ),
    (
        "latencyThresholdMs-top",
        "latencyThresholdMs",
        60_000,
        60_001,
        {},
        invalid("latencyThresholdMs", 60_001, "an integer 10..60000"),
    ),
    (
        "sloTargetPercent-bottom",
        "sloTargetPercent",
        90,
        89.99,
        {},
        invalid("sloTargetPercent", 89.99, "a number 90..99.99"),
    ),
    (
        # At 100% the error budget is 0: the burn rate divides by it.
        "sloTargetPercent-leaves-an-error-budget",
        "sloTargetPercent",
        99.99,
        100,
        {},
        invalid("sloTargetPercent", 100, "a number 90..99.99"),
    ),
    (
        "checkerQuorum-at-most-the-locations",
        "checkerQuorum",
        2,
        3,
        {"checkerRegions": json.dumps(REGIONS[:2])},
        invalid("checkerQuorum", 3, "0 (a majority) or 1..2 (checkerRegions)"),
    ),
    (
        "checkerQuorum-one-location",
        "checkerQuorum",
        1,
        2,
        {},
        invalid("checkerQuorum", 2, "0 (a majority) or 1..1 (checkerRegions)"),
    ),
    (
        "checkerQuorum-top",
        "checkerQuorum",
        8,
        9,
        {"checkerRegions": json.dumps(REGIONS[:8])},
        invalid("checkerQuorum", 9, "an integer 0..8"),
    ),
    (
        "checkerRegions-top",
        "checkerRegions",
        json.dumps(REGIONS[:8]),
        json.dumps(REGIONS[:9]),
        {"checkerQuorum": 8},
        invalid("checkerRegions", REGIONS[:9], "[] or 1..8 distinct regions"),
    ),
    (
        "availabilityZones-top",
        "availabilityZones",
        json.dumps(["us-east-1a", "us-east-1b", "us-east-1c"]),
        json.dumps(["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]),
        {},
        invalid(
            "availabilityZones",
            ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"],
            "[] or 2..3 zone names (EKS needs subnets in at least two zones)",
        ),
    ),
    (
        "namePrefix-top",
        "namePrefix",
        "a" * 20,
        "a" * 21,
        {},
        invalid("namePrefix", "a" * 21, "1-20 of a-z 0-9 -, starting with a letter"),
    ),
]


def from_context(**context: Any) -> AppConfig:
    merged = {**DEFAULTS, **context}
    return AppConfig.from_context(merged.get, keys=merged)


@pytest.mark.parametrize(
    ("key", "last", "first", "others", "line"), [edge[1:] for edge in CONTEXT_EDGES], ids=[e[0] for e in CONTEXT_EDGES]
)
def test_a_context_bound_allows_its_last_value_and_names_the_key_at_the_first_refused(
    key: str, last: Any, first: Any, others: dict[str, Any], line: str
) -> None:
    config = from_context(**others, **{key: last})
    assert config is not None
    with pytest.raises(ConfigError) as refused:
        from_context(**others, **{key: first})
    assert str(refused.value) == line


# --- the checker's own settings (the Lambda's environment) -----------------------------------

TARGET = {"name": "hello", "url": "http://lb.example/hello", "timeout": 5}


def settings(targets: list[dict[str, Any]] | None = None, **env: str) -> Settings:
    return Settings.from_env({"CHECK_TARGETS": json.dumps(targets or [TARGET]), **env})


SETTINGS_EDGES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    (
        # A run's datapoints must fit one PutMetricData call (the synth check counts them).
        "targets-fit-one-putmetricdata-call",
        {"targets": [{"url": f"http://x/{i}"} for i in range(MAX_TARGETS)]},
        {"targets": [{"url": f"http://x/{i}"} for i in range(MAX_TARGETS + 1)]},
        f"CHECK_TARGETS must list 1..{MAX_TARGETS} targets, got {MAX_TARGETS + 1}",
    ),
    (
        "interval-bottom",
        {"targets": [{**TARGET, "timeout": 0.5}], "PROBE_INTERVAL_SECONDS": "1"},
        {"targets": [{**TARGET, "timeout": 0.5}], "PROBE_INTERVAL_SECONDS": "0.99"},
        "PROBE_INTERVAL_SECONDS=0.99 must be 1..60 seconds",
    ),
    (
        "interval-top",
        {"PROBE_INTERVAL_SECONDS": "60", "SCHEDULE_SECONDS": "120", "CONFIRM_PROBES": "2"},
        {"PROBE_INTERVAL_SECONDS": "61", "SCHEDULE_SECONDS": "122", "CONFIRM_PROBES": "2"},
        "PROBE_INTERVAL_SECONDS=61 must be 1..60 seconds",
    ),
    (
        # EventBridge's rate, within Lambda's 900 s.
        "schedule-within-lambdas-900-seconds",
        {"PROBE_INTERVAL_SECONDS": "60", "SCHEDULE_SECONDS": "900"},
        {"PROBE_INTERVAL_SECONDS": "1", "SCHEDULE_SECONDS": "901", "targets": [{**TARGET, "timeout": 0.5}]},
        "SCHEDULE_SECONDS=901 must be 1..900 seconds",
    ),
    (
        "timeout-ends-before-the-next-probe",
        {"PROBE_INTERVAL_SECONDS": "6", "targets": [{**TARGET, "timeout": 5.99}]},
        {"PROBE_INTERVAL_SECONDS": "6", "targets": [{**TARGET, "timeout": 6}]},
        "target timeout 6s must be shorter than PROBE_INTERVAL_SECONDS=6",
    ),
    (
        "confirm-at-most-the-probes-per-run",
        {"CONFIRM_PROBES": "6"},
        {"CONFIRM_PROBES": "7"},
        "CONFIRM_PROBES=7 must be 2..6 "
        "(at least 2, so one failed probe never changes the verdict; at most the probes per run)",
    ),
    (
        "confirm-one-failure-never-changes-the-verdict",
        {"CONFIRM_PROBES": "2"},
        {"CONFIRM_PROBES": "1"},
        "CONFIRM_PROBES=1 must be 2..6 "
        "(at least 2, so one failed probe never changes the verdict; at most the probes per run)",
    ),
]


@pytest.mark.parametrize(("last", "first", "line"), [e[1:] for e in SETTINGS_EDGES], ids=[e[0] for e in SETTINGS_EDGES])
def test_a_checker_setting_allows_its_last_value_and_names_the_variable_at_the_first_refused(
    last: dict[str, Any], first: dict[str, Any], line: str
) -> None:
    assert settings(**last) is not None
    with pytest.raises(SettingsError) as refused:
        settings(**first)
    assert str(refused.value) == line


TARGET_EDGES: list[tuple[str, str, Any, Any, str]] = [
    ("expect_status-bottom", "expect_status", 100, 99, "t.expect_status=99 must be an integer 100..599"),
    ("expect_status-top", "expect_status", 599, 600, "t.expect_status=600 must be an integer 100..599"),
    ("timeout-bottom", "timeout", 0.1, 0.09, "t.timeout=0.09 must be a number of seconds 0.1..30"),
    ("timeout-top", "timeout", 30, 30.01, "t.timeout=30.01 must be a number of seconds 0.1..30"),
    ("max_body_bytes-bottom", "max_body_bytes", 1024, 1023, "t.max_body_bytes=1023 must be an integer 1024..10485760"),
    (
        "max_body_bytes-top",
        "max_body_bytes",
        10 * 1024 * 1024,
        10 * 1024 * 1024 + 1,
        "t.max_body_bytes=10485761 must be an integer 1024..10485760",
    ),
    ("name-top", "name", "n" * 64, "n" * 65, f"t.name={'n' * 65!r} must be 1-64 of A-Z a-z 0-9 _ . -"),
]


@pytest.mark.parametrize(
    ("key", "last", "first", "line"), [e[1:] for e in TARGET_EDGES], ids=[e[0] for e in TARGET_EDGES]
)
def test_a_target_setting_allows_its_last_value_and_names_the_key_at_the_first_refused(
    key: str, last: Any, first: Any, line: str
) -> None:
    assert getattr(Target.parse({"url": "http://x/", key: last}, "t"), key) == last
    with pytest.raises(SettingsError) as refused:
        Target.parse({"url": "http://x/", key: first}, "t")
    assert str(refused.value) == line


@pytest.mark.parametrize(("interval", "high"), [("30", True), ("60", False)])
def test_metrics_are_high_resolution_only_below_a_minute(interval: str, high: bool) -> None:
    """10 s and 30 s alarm periods need 1-second metrics; at 60 s standard ones do."""
    assert settings(PROBE_INTERVAL_SECONDS=interval, SCHEDULE_SECONDS="120", CONFIRM_PROBES="2").high_resolution is high


def config_of(**context: str) -> AppConfig:
    merged = {**DEFAULTS, **context}
    return AppConfig.from_context(merged.get, keys=merged.keys())


@pytest.mark.parametrize("region", ["eu-mars-9", "eu-west-9", "us-esat-1"])
def test_a_made_up_checker_region_is_refused_in_one_line_naming_the_key(region: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config_of(checkerRegions=json.dumps(["us-east-1", region]))
    said = str(refused.value)
    assert said.startswith(f"context key 'checkerRegions' has {region!r}, which is not an AWS region with Lambda"), said
    assert "\n" not in said


def test_every_region_of_every_partition_with_lambda_is_allowed() -> None:
    for regions in (["cn-north-1"], ["us-gov-west-1"], ["ap-southeast-5", "us-east-1"]):
        assert config_of(checkerRegions=json.dumps(regions)).checker_regions == tuple(regions)
