"""`python -m checker_lambda` as a plain health-check script, run as a user would."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, RunningService
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
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert len([line for line in out.splitlines() if "UP" in line]) >= 3


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
