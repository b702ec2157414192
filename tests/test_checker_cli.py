"""`python -m checker_lambda` as a plain health-check script, run as a user would."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT, RunningService, no_aws
from tests.peers import closed_port_url, http_peer


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "checker_lambda", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_healthy_url_prints_up_and_exits_0(live_service: RunningService) -> None:
    done = cli(f"{live_service.url}/hello", "--expect-body", "Hello World")
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert "UP" in line and " 200 " in line and "first byte" in line


def test_several_urls_one_down_exits_1_and_says_why(live_service: RunningService) -> None:
    done = cli(f"{live_service.url}/hello", closed_port_url(), "--count", "2", "--interval", "0.1")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 4
    assert sum("DOWN" in line and "reason=refused" in line for line in lines) == 2


def test_json_lines_output() -> None:
    with http_peer("error") as url:
        done = cli(url, "--json")
    record = json.loads(done.stdout)
    assert done.returncode == 1 and record["reason"] == "status" and record["status"] == 500


def test_bad_arguments_exit_2_with_a_clear_message() -> None:
    done = cli("ftp://example.com/")
    assert done.returncode == 2 and "is not an http:// or https:// URL" in done.stderr


def test_watch_keeps_probing_until_interrupted(live_service: RunningService) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "checker_lambda", f"{live_service.url}/hello", "--watch", "--interval", "0.2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    # Ctrl-C once three probes are out (each line is flushed), not after a sleep: on a loaded
    # machine 1.5 s saw fewer, or the signal came while it was still importing (exit 1).
    assert proc.stdout is not None
    for _ in range(3):
        assert "UP" in proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out


def test_publish_sends_the_probe_metrics_to_cloudwatch(aws_env: str, live_service: RunningService) -> None:
    import boto3

    target = f"127.0.0.1-{live_service.port}-hello"  # the CLI names a target after its URL
    cloudwatch = boto3.client("cloudwatch")
    dims = [{"Name": "Target", "Value": target}]
    assert not cloudwatch.list_metrics(Namespace="HelloWorld/HealthCheck", Dimensions=dims)["Metrics"]
    done = cli(f"{live_service.url}/hello", "--expect-body", "Hello World", "--publish")
    assert done.returncode == 0, done.stderr
    listed = cloudwatch.list_metrics(Namespace="HelloWorld/HealthCheck", Dimensions=dims)["Metrics"]
    assert {"Availability", "Latency", "DnsTime", "ConnectTime", "FirstByteTime"} <= {m["MetricName"] for m in listed}


# The emulator and a dead endpoint accept anything; nothing here reaches AWS.
DUMMY_KEYS = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}  # noqa: S105


def cli_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "checker_lambda", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, env=env
    )


def test_a_missing_ca_bundle_is_a_usage_error_in_one_line(live_service: RunningService) -> None:
    done = cli(f"{live_service.url}/hello", "--ca-bundle", "/nonexistent/ca.pem")
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("error: --ca-bundle") and "/nonexistent/ca.pem" in line
    assert done.stdout == ""


def test_publish_without_a_region_exits_2_in_one_line_before_probing(live_service: RunningService) -> None:
    done = cli_env(no_aws(**DUMMY_KEYS), f"{live_service.url}/hello", "--publish")
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("error: --publish") and "AWS_REGION" in line
    assert done.stdout == ""


def test_publish_without_credentials_exits_2_in_one_line_before_probing(live_service: RunningService) -> None:
    done = cli_env(no_aws(AWS_DEFAULT_REGION="eu-west-1"), f"{live_service.url}/hello", "--publish")
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("error: --publish") and "credentials" in line
    assert done.stdout == ""


def test_publish_that_cannot_reach_cloudwatch_exits_2_in_one_line(live_service: RunningService) -> None:
    env = no_aws(
        AWS_DEFAULT_REGION="eu-west-1",
        **DUMMY_KEYS,
        AWS_ENDPOINT_URL=closed_port_url().removesuffix("/hello"),
        AWS_MAX_ATTEMPTS="1",
    )
    done = cli_env(env, f"{live_service.url}/hello", "--publish")
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("error: publishing to CloudWatch failed:"), line
    assert "UP" in done.stdout  # the probe itself ran and was shown


def test_publish_with_a_profile_that_does_not_exist_exits_2_in_one_line(live_service: RunningService) -> None:
    done = cli_env(no_aws(AWS_PROFILE="nope", AWS_DEFAULT_REGION="eu-west-1"), f"{live_service.url}/hello", "--publish")
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("error: --publish") and "nope" in line


def bare(*args: str) -> subprocess.CompletedProcess[str]:
    """The checker on a Python without boto3 (-S: no site-packages), as a system python3."""
    return subprocess.run(
        [sys.executable, "-S", "-m", "checker_lambda", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def test_help_works_without_boto3_and_every_option_says_what_it_does() -> None:
    done = bare("--help")
    assert done.returncode == 0, done.stderr
    # One block per option: its name, its metavar, then its help (on the same line or the next).
    blocks = re.split(r"\n  (?=-)", done.stdout.split("options:", 1)[1])[1:]
    helps = {b.split()[0].rstrip(","): re.sub(r"^\S+(, \S+)?( [A-Z_]+)?", "", b).strip() for b in blocks}
    assert "--expect-status" in helps and all(helps.values()), helps


def test_probing_works_without_boto3_and_publish_names_what_to_install(live_service: RunningService) -> None:
    done = bare(f"{live_service.url}/hello")
    assert done.returncode == 0 and "UP" in done.stdout, done.stderr
    done = bare(f"{live_service.url}/hello", "--publish")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: --publish needs boto3") and "pip install" in line, done.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["127.0.0.1:8765/hello"],
            "error: URL '127.0.0.1:8765/hello' is not an http:// or https:// URL "
            "(did you mean http://127.0.0.1:8765/hello?)",
        ),
        (["http://x/", "--timeout", "99"], "error: --timeout 99.0 must be a number of seconds 0.1..30"),
        (["http://x/", "--expect-status", "42"], "error: --expect-status 42 must be an integer 100..599"),
        (
            ["http://x/", "--expect-body", "a", "--expect-regex", "b"],
            "error: give --expect-body or --expect-regex, not both",
        ),
    ],
)
def test_a_bad_argument_is_one_line_in_the_clis_own_words(args: list[str], said: str) -> None:
    done = bare(*args)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [said]


def test_the_service_help_lists_its_settings_and_does_not_start_a_server() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert all(name in done.stdout for name in ("PORT", "HOST", "DRAIN_DELAY_SECONDS", "DRAIN_TIMEOUT_SECONDS"))
    refused = subprocess.run(
        [sys.executable, "-m", "service", "--port", "1"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert refused.returncode == 2 and "--port" in refused.stderr
