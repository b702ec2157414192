"""Every tool finds the region as the CDK CLI does (AWS_REGION first), and says what is really
missing: a shell with AWS_REGION exported and no credentials is told about credentials, never
about the region. Real processes, a moto server for the AWS side."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from cdk_app.config import MONITORING_STACK_NAME
from checker_lambda import aws_env, contract
from tests.conftest import ROOT, RunningService, no_aws

# Each tool as `make` runs it, reading no cdk-outputs.json.
TOOLS = {
    "preflight": ["tools.preflight"],
    "status": ["tools.status", "--outputs", "{absent}"],
    "drill": ["tools.drill", "--outputs", "{absent}"],
}


def run_tool(tool: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    args = [a.format(absent=tmp_path / "absent.json") for a in TOOLS[tool]]
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_the_region_order_is_the_cdk_clis() -> None:
    both = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"}
    assert aws_env.resolve_region(both, "ap-south-1", "dev") == ("eu-west-1", "AWS_REGION")
    assert aws_env.resolve_region({"AWS_DEFAULT_REGION": "us-west-2"}, "ap-south-1", None) == (
        "us-west-2",
        "AWS_DEFAULT_REGION",
    )
    assert aws_env.resolve_region({}, "ap-south-1", "dev") == ("ap-south-1", "profile 'dev'")
    assert aws_env.resolve_region({"AWS_REGION": ""}, None, None) == (None, "")


@pytest.mark.parametrize("tool", ["status", "drill"])
def test_with_AWS_REGION_and_no_credentials_the_one_line_is_about_credentials(tool: str, tmp_path: Path) -> None:
    done = run_tool(tool, no_aws(AWS_REGION="eu-west-1"), tmp_path)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("error: no AWS credentials") and "aws configure" in line, done.stderr
    assert "region" not in line


def test_preflight_with_AWS_REGION_and_no_credentials_fails_on_credentials_only(tmp_path: Path) -> None:
    done = run_tool("preflight", no_aws(AWS_REGION="eu-west-1"), tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = {line.split(":")[0]: line for line in done.stdout.splitlines()}
    assert lines["FAIL  credentials"], done.stdout
    assert "eu-west-1 (from AWS_REGION)" in lines["ok    region"]


@pytest.mark.parametrize(("tool", "stack"), [("status", MONITORING_STACK_NAME), ("drill", MONITORING_STACK_NAME)])
def test_with_credentials_status_and_drill_look_in_AWS_REGION_before_AWS_DEFAULT_REGION(
    tool: str, stack: str, aws_env: str, tmp_path: Path
) -> None:
    env = no_aws(
        AWS_REGION="eu-west-1",
        AWS_DEFAULT_REGION="us-west-2",  # boto3 alone would use this one
        AWS_ENDPOINT_URL=aws_env,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106  # nosec B106  # moto takes any
    )
    done = run_tool(tool, env, tmp_path)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert f"no stack {stack} in eu-west-1" in line, done.stderr


def test_the_checkers_publish_goes_to_AWS_REGION(aws_env: str, live_service: RunningService) -> None:
    env = no_aws(
        AWS_REGION="eu-west-1",
        AWS_ENDPOINT_URL=aws_env,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106  # nosec B106  # moto takes any
    )
    done = subprocess.run(
        [sys.executable, "-m", "checker_lambda", f"{live_service.url}/hello", "--publish"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    listed = boto3.client("cloudwatch", region_name="eu-west-1").list_metrics(Namespace=contract.NAMESPACE)
    assert listed["Metrics"], "no metric in eu-west-1"
