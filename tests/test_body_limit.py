"""A big page is not an outage: the probe stops reading at the target's byte limit, fails
only when something asked of the body is not in what it read, and says what it read."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from cdk_app.config import AppConfig, ConfigError
from checker_lambda.contract import Reason
from checker_lambda.probe import Prober
from checker_lambda.settings import Settings, SettingsError, Target
from tests import raw_peers
from tests.infra import DEFAULTS
from tests.peers import http_peer

PAGE = 2_000_000  # bytes after "Hello World": a heavy home page
DEFAULT_LIMIT = 64 * 1024


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}/"


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
def test_a_big_page_is_up_when_nothing_in_its_body_is_asked(length: bool) -> None:
    with raw_peers.raw_peer(raw_peers.big_body(PAGE, length=length)) as port:
        result = Prober().probe(Target(name="home", url=url(port)))
    assert result.ok, result.detail
    assert result.body_bytes == DEFAULT_LIMIT and result.body_truncated
    assert result.as_log()["body_truncated"] is True
    assert f"read the first {DEFAULT_LIMIT} bytes" in result.detail


def test_an_endless_body_is_cut_at_the_limit_on_time() -> None:
    with http_peer("endless") as peer:
        started = time.monotonic()
        result = Prober().probe(Target(name="t", url=peer, max_body_bytes=4096, expect_body="Hello World"))
    assert result.ok, result.detail
    assert result.body_bytes == 4096 and result.body_truncated
    assert time.monotonic() - started < 2


def test_a_body_expectation_is_judged_on_what_was_read_and_says_so() -> None:
    with raw_peers.raw_peer(raw_peers.big_body(PAGE, tail=b"The End")) as port:
        found = Prober().probe(Target(name="t", url=url(port), expect_body="Hello World"))
        missed = Prober().probe(Target(name="t", url=url(port), expect_body="The End"))
        regex = Prober().probe(Target(name="t", url=url(port), expect_regex=r"The End$"))
    assert found.ok and "expectation judged on those" in found.detail, found.detail
    for result in (missed, regex):
        assert result.reason is Reason.BODY
        assert f"in the first {DEFAULT_LIMIT} bytes" in result.detail and "max_body_bytes" in result.detail


def test_the_limit_is_a_per_target_setting() -> None:
    raw = {"url": "http://x/", "expect_body": "The End", "max_body_bytes": 4_000_000}
    with raw_peers.raw_peer(raw_peers.big_body(PAGE, tail=b"The End")) as port:
        result = Prober().probe(Target.parse({**raw, "url": url(port)}, "t"))
    assert result.ok, result.detail
    assert result.body_bytes == len("Hello World") + PAGE + len("The End") and not result.body_truncated
    assert result.detail == ""


@pytest.mark.parametrize("value", [10, 11 * 1024 * 1024, "64k", 2.5, True])
def test_a_bad_limit_names_the_key(value: object) -> None:
    with pytest.raises(SettingsError, match=r"t\.max_body_bytes=.* must be an integer 1024\.\.10485760"):
        Target.parse({"url": "http://x/", "max_body_bytes": value}, "t")


def _config(**context: object) -> AppConfig:
    values = {**DEFAULTS, **context}
    return AppConfig.from_context(values.get)


def test_extra_targets_carry_their_limit_to_the_checker() -> None:
    extra = [{"name": "home", "url": "https://www.example.com/", "max_body_bytes": 2_000_000}]
    config = _config(extraTargets=json.dumps(extra))
    env = config.checker_environment({"name": "hello", "url": "http://lb/hello", "timeout": 5})
    targets = {t.name: t for t in Settings.from_env(env).targets}
    assert targets["home"].max_body_bytes == 2_000_000
    assert targets["hello"].max_body_bytes == DEFAULT_LIMIT


def test_a_bad_extra_target_limit_names_the_context_key() -> None:
    with pytest.raises(ConfigError, match=r"extraTargets\[0\]\.max_body_bytes=1 must be"):
        _config(extraTargets=json.dumps([{"url": "https://www.example.com/", "max_body_bytes": 1}]))


def test_the_command_line_takes_the_limit_and_shows_a_cut_body() -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "checker_lambda", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603

    with raw_peers.raw_peer(raw_peers.big_body(PAGE, tail=b"The End")) as port:
        plain = cli(url(port))
        missed = cli(url(port), "--expect-body", "The End")
        found = cli(url(port), "--expect-body", "The End", "--max-body-bytes", "4000000")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "UP" in plain.stdout and f"(read the first {DEFAULT_LIMIT} bytes of a longer body)" in plain.stdout
    assert missed.returncode == 1 and "reason=body" in missed.stdout
    assert found.returncode == 0, found.stdout + found.stderr


LIMIT = 1024  # the smallest limit a target may set


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
@pytest.mark.parametrize(
    ("size", "truncated"), [(LIMIT, False), (LIMIT + 1, True)], ids=["at-the-limit", "one-byte-over"]
)
def test_a_body_of_exactly_the_limit_is_read_whole_and_one_byte_more_is_cut(
    size: int, truncated: bool, length: bool
) -> None:
    """A body too large for the limit is still up (a big page is not an outage): it is cut, and
    says so; one that fits exactly is neither cut nor said to be."""
    with raw_peers.raw_peer(raw_peers.big_body(size - len("Hello World"), length=length)) as port:
        result = Prober().probe(Target(name="t", url=url(port), max_body_bytes=LIMIT))
    detail = f"read the first {LIMIT} bytes of a longer body" if truncated else ""
    assert (result.ok, result.reason, result.status, result.detail) == (True, None, 200, detail)
    assert (result.body_bytes, result.body_truncated) == (LIMIT, truncated)


@pytest.mark.parametrize(("over", "found"), [(0, True), (1, False)], ids=["ends-at-the-limit", "ends-past-it"])
def test_an_expected_text_is_found_only_whole_within_the_limit(over: int, found: bool) -> None:
    tail = b"The End"
    size = LIMIT - len("Hello World") - len(tail) + over
    with raw_peers.raw_peer(raw_peers.big_body(size, tail=tail + b"." * 10)) as port:
        result = Prober().probe(Target(name="t", url=url(port), max_body_bytes=LIMIT, expect_body="The End"))
    read = f"the first {LIMIT} bytes"
    if found:
        detail = f"read {read} of a longer body; expectation judged on those"
        assert (result.ok, result.reason, result.detail) == (True, None, detail)
    else:
        detail = f"body does not contain 'The End' in {read} read (the body is longer; see max_body_bytes): "
        assert (result.ok, result.reason, result.detail) == (
            False,
            Reason.BODY,
            detail + repr("Hello World" + "!" * 49),
        )
    assert (result.status, result.body_bytes, result.body_truncated) == (200, LIMIT, True)
