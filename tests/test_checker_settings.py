"""Invalid checker settings give one clear error naming the variable."""

from __future__ import annotations

import json

import pytest

from checker_lambda.settings import Settings, SettingsError

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
    ],
)
def test_invalid_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)
