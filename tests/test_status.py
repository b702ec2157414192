"""`make status` against a moto server (outputs, subscriptions, alarm states, one probe), the
alarm history through botocore's Stubber (moto does not record it), and a shell with no
region or credentials as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from cdk_app.config import MONITORING_STACK_NAME, STACK_NAME
from tests.conftest import ROOT, RunningService, no_aws
from tools import status

ALARM = f"{MONITORING_STACK_NAME}-MonitoringAvailabilityhello-ABC"


def written(topic: str, url: str) -> str:
    """cdk-outputs.json as `make deploy` writes it: each stack's outputs under its name."""
    return json.dumps({STACK_NAME: {"HelloUrl": url}, MONITORING_STACK_NAME: {"AlertTopicArn": topic}})


def put_alarms(cloudwatch) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        Namespace="HelloWorld/HealthCheck",
        MetricName="Availability",
        Statistic="Minimum",
        Period=10,
        EvaluationPeriods=5,
        DatapointsToAlarm=3,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
    )
    cloudwatch.put_metric_alarm(
        AlarmName="someone-elses-alarm",
        Namespace="X",
        MetricName="Y",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )


@pytest.fixture
def fast_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto has no DescribeAlarmHistory; one attempt, not botocore's five, to learn it.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


def test_status_shows_subscription_state_alarms_and_probes(
    aws_env: str,
    fast_failures: None,
    live_service: RunningService,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sns, cloudwatch = boto3.client("sns"), boto3.client("cloudwatch")
    topic = sns.create_topic(Name="status-test")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    put_alarms(cloudwatch)
    outputs = tmp_path / "cdk-outputs.json"
    deployed = json.loads(written(topic, f"{live_service.url}/hello"))
    deployed[MONITORING_STACK_NAME]["FirstRun"] = "us-east-1: hello up"
    deployed["HelloWorldChecker-eu-west-1"] = {"FirstRun": "eu-west-1: hello down (timeout); the availability ..."}
    outputs.write_text(json.dumps(deployed))

    assert status.main(["--outputs", str(outputs)]) == 0
    out = capsys.readouterr().out
    assert "the last deploy that changed it, before its alarms:\n  us-east-1: hello up\n" in out
    assert "  eu-west-1: hello down (timeout); the availability ...\n" in out
    assert "email oncall@example.com:" in out
    assert f"alarm {ALARM}:" in out
    assert "someone-elses-alarm" not in out
    assert "UP" in out and "hello" in out


def test_without_cdk_outputs_json_status_reads_the_outputs_from_cloudformation(
    aws_env: str,
    fast_failures: None,
    live_service: RunningService,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A stack deployed from CI or another laptop: nothing on this disk but the region."""
    region = "ap-southeast-2"
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    cluster = {
        "Resources": {"Other": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"HelloUrl": {"Value": f"{live_service.url}/hello"}},
    }
    monitoring = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "AlertTopicArn": {"Value": {"Ref": "Topic"}},
            "DashboardUrl": {"Value": f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"},
            "FirstRun": {"Value": f"{region}: hello up"},
        },
    }
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(StackName=STACK_NAME, TemplateBody=json.dumps(cluster))
    cloudformation.create_stack(StackName=MONITORING_STACK_NAME, TemplateBody=json.dumps(monitoring))
    put_alarms(boto3.client("cloudwatch"))

    assert status.main(["--outputs", str(tmp_path / "absent.json")]) == 0
    out = capsys.readouterr().out
    assert f"outputs of stacks {STACK_NAME} and {MONITORING_STACK_NAME} in {region}, from CloudFormation" in out
    assert f"alert topic arn:aws:sns:{region}:" in out and "no subscriptions" in out
    assert f"before its alarms:\n  {region}: hello up\n" in out
    assert f"alarm {ALARM}:" in out
    assert "UP" in out and "hello" in out


def test_the_region_comes_from_the_outputs_when_the_shell_has_none(
    aws_env: str,
    fast_failures: None,
    live_service: RunningService,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    region = "eu-north-1"
    topic = boto3.client("sns", region_name=region).create_topic(Name="status-region")["TopicArn"]
    put_alarms(boto3.client("cloudwatch", region_name=region))
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    outputs = tmp_path / "cdk-outputs.json"
    deployed = json.loads(written(topic, f"{live_service.url}/hello"))
    deployed[MONITORING_STACK_NAME]["FirstRun"] = "us-east-1: hello up"
    deployed["HelloWorldChecker-eu-west-1"] = {"FirstRun": "eu-west-1: hello down (timeout); the availability ..."}
    outputs.write_text(json.dumps(deployed))

    assert status.main(["--outputs", str(outputs)]) == 0
    out = capsys.readouterr().out
    assert "the last deploy that changed it, before its alarms:\n  us-east-1: hello up\n" in out
    assert "  eu-west-1: hello down (timeout); the availability ...\n" in out
    assert f"alarm {ALARM}:" in out  # found in eu-north-1, the topic's region


def test_a_stack_that_is_not_there_is_one_line_and_exit_2(
    aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    assert status.main(["--outputs", str(tmp_path / "absent.json")]) == 2
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("error:") and MONITORING_STACK_NAME in line and "sa-east-1" in line and "--region" in line


def stubbed_cloudwatch():
    """A client for the Stubber: it never sends a request, the keys are never used."""
    keys = {"aws_access_key_id": "x", "aws_secret_access_key": "x"}  # noqa: S105
    return boto3.client("cloudwatch", region_name="eu-west-1", **keys)


def history_item(when: datetime, old: str, new: str, reason: str) -> dict:
    return {
        "AlarmName": ALARM,
        "AlarmType": "MetricAlarm",
        "Timestamp": when,
        "HistoryItemType": "StateUpdate",
        "HistorySummary": f"Alarm updated from {old} to {new}",
        "HistoryData": json.dumps(
            {"oldState": {"stateValue": old}, "newState": {"stateValue": new, "stateReason": reason}}
        ),
    }


def test_each_alarm_shows_its_changes_over_the_last_24_hours_so_a_false_alarm_is_visible() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    cloudwatch = stubbed_cloudwatch()
    quiet = f"{MONITORING_STACK_NAME}-MonitoringLatencyhello-DEF"
    with Stubber(cloudwatch) as stub:
        stub.add_response(
            "describe_alarms",
            {
                "MetricAlarms": [
                    {"AlarmName": ALARM, "StateValue": "OK"},
                    {"AlarmName": quiet, "StateValue": "OK"},
                    {"AlarmName": "someone-elses-alarm", "StateValue": "ALARM"},
                ],
                "CompositeAlarms": [{"AlarmName": "hello-service-down", "StateValue": "OK"}],
            },
            {"AlarmTypes": ["MetricAlarm", "CompositeAlarm"]},
        )
        stub.add_response(
            "describe_alarm_history",
            {
                "AlarmHistoryItems": [  # newest first, as CloudWatch answers
                    history_item(now - timedelta(hours=3, minutes=58), "ALARM", "OK", "Threshold Crossed: recovered"),
                    history_item(now - timedelta(hours=4), "OK", "ALARM", "Threshold Crossed: 3 out of the last 5"),
                    {**history_item(now - timedelta(hours=5), "OK", "ALARM", "x"), "AlarmName": "someone-elses-alarm"},
                ]
            },
            {
                "HistoryItemType": "StateUpdate",
                "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
                "StartDate": now - timedelta(hours=24),
                "EndDate": now,
                "ScanBy": "TimestampDescending",
            },
        )
        lines = status.alarm_lines(cloudwatch, now=now)
        stub.assert_no_pending_responses()
    text = "\n".join(lines)
    assert f"alarm {ALARM}: OK, 2 changes in the last 24 h" in text
    assert "2026-11-28 08:00:00Z  OK -> ALARM: Threshold Crossed: 3 out of the last 5" in text
    assert "2026-11-28 08:02:00Z  ALARM -> OK: Threshold Crossed: recovered" in text
    assert text.index("OK -> ALARM") < text.index("ALARM -> OK")  # oldest first, as it happened
    assert f"alarm {quiet}: OK, no changes in the last 24 h" in text
    assert "alarm hello-service-down: OK, no changes" in text
    assert "someone-elses-alarm" not in text


def test_without_permission_for_the_history_the_states_still_show_and_one_line_says_why() -> None:
    cloudwatch = stubbed_cloudwatch()
    with Stubber(cloudwatch) as stub:
        stub.add_response("describe_alarms", {"MetricAlarms": [{"AlarmName": ALARM, "StateValue": "ALARM"}]})
        stub.add_client_error("describe_alarm_history", "AccessDenied", "not authorized to DescribeAlarmHistory")
        lines = status.alarm_lines(cloudwatch, now=datetime.now(UTC))
    assert f"  alarm {ALARM}: ALARM" in lines
    [why] = [line for line in lines if "history" in line]
    assert "cloudwatch:DescribeAlarmHistory" in why


def run_status(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.status", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_without_a_region_status_stops_with_one_line(tmp_path: Path) -> None:
    done = run_status(no_aws(), "--outputs", str(tmp_path / "absent.json"))
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error:") and "region" in line and "--region" in line, done.stderr


def test_without_credentials_status_stops_with_one_line(tmp_path: Path) -> None:
    done = run_status(no_aws(AWS_DEFAULT_REGION="eu-west-1"), "--outputs", str(tmp_path / "absent.json"))
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error:") and "credentials" in line, done.stderr


def test_without_credentials_and_with_outputs_still_one_line(tmp_path: Path) -> None:
    outputs = tmp_path / "cdk-outputs.json"
    topic = "arn:aws:sns:eu-west-1:123456789012:hello-alerts"
    outputs.write_text(written(topic, "http://127.0.0.1:9/hello"))
    done = run_status(no_aws(), "--outputs", str(outputs))
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error:") and "credentials" in line, done.stderr


def test_a_bad_argument_is_a_usage_error() -> None:
    done = run_status(no_aws(), "--frobnicate")
    assert done.returncode == 2 and "--frobnicate" in done.stderr


def test_a_profile_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    done = run_status(no_aws(AWS_PROFILE="nope"), "--outputs", str(tmp_path / "absent.json"))
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error:") and "nope" in line, done.stderr


def test_a_stack_without_its_outputs_yet_is_one_line_naming_its_status(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deploy under way, or a first deploy that failed: no outputs to read."""
    region = "eu-central-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(StackName=MONITORING_STACK_NAME, TemplateBody=json.dumps(template))

    assert status.main(["--outputs", str(tmp_path / "absent.json")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(
        f"error: stack {MONITORING_STACK_NAME} in {region} is CREATE_COMPLETE and has no AlertTopicArn"
    )
    # The cluster stack, when there is one, must have its URL too.
    cloudformation.create_stack(StackName=STACK_NAME, TemplateBody=json.dumps(template))
    assert status.main(["--outputs", str(tmp_path / "absent.json")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: stack {STACK_NAME} in {region} is CREATE_COMPLETE and has no HelloUrl")


def test_an_outputs_file_without_the_topic_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text(json.dumps({STACK_NAME: {"HelloUrl": "http://example.com/hello"}}))
    assert status.main(["--outputs", str(outputs), "--region", "us-east-1"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == f"error: {outputs} has no AlertTopicArn: delete it to read the outputs from AWS"
