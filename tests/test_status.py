"""`make status` against a moto server: subscriptions, alarm states, one probe."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.conftest import RunningService
from tools import status


def test_status_shows_subscription_state_alarms_and_probes(
    aws_env: str, live_service: RunningService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sns, cloudwatch = boto3.client("sns"), boto3.client("cloudwatch")
    topic = sns.create_topic(Name="status-test")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    cloudwatch.put_metric_alarm(
        AlarmName="HelloWorldEks-MonitoringAvailabilityhello-ABC",
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
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text(json.dumps({"HelloWorldEks": {"AlertTopicArn": topic, "HelloUrl": f"{live_service.url}/hello"}}))

    assert status.main([str(outputs)]) == 0
    out = capsys.readouterr().out
    assert "email oncall@example.com:" in out
    assert "alarm HelloWorldEks-MonitoringAvailabilityhello-ABC:" in out
    assert "someone-elses-alarm" not in out
    assert "UP" in out and "hello" in out


def test_status_without_a_deployment_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert status.main([str(tmp_path / "missing.json")]) == 2
    assert "make deploy" in capsys.readouterr().err
