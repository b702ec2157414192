"""What the checker sends to CloudWatch, read back from a moto server (AWS_ENDPOINT_URL)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from checker_lambda import contract, handler
from checker_lambda.metrics import CloudWatchPublisher, metric_data
from checker_lambda.probe import Prober
from checker_lambda.settings import Target
from tests.conftest import RunningService
from tests.peers import closed_port_url


class Context:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.time() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.time()) * 1000)


@pytest.fixture
def fresh_handler(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(handler, "_monitor", None)
    return handler


def test_handler_probes_and_publishes_one_batch_to_cloudwatch(
    aws_env: str, live_service: RunningService, monkeypatch: pytest.MonkeyPatch, fresh_handler
) -> None:
    down = closed_port_url()
    targets = [
        {"name": "svc", "url": f"{live_service.url}/hello", "expect_body": "Hello World", "timeout": 0.5},
        {"name": "gone", "url": down, "timeout": 0.5},
    ]
    monkeypatch.setenv("CHECK_TARGETS", json.dumps(targets))
    monkeypatch.setenv("PROBE_INTERVAL_SECONDS", "1")
    monkeypatch.setenv("SCHEDULE_SECONDS", "3")
    monkeypatch.setenv("CONFIRM_PROBES", "2")
    calls: list[int] = []
    real_client = boto3.client

    def counting_client(*args, **kwargs):
        client = real_client(*args, **kwargs)
        client.meta.events.register("before-call.cloudwatch.PutMetricData", lambda **_: calls.append(1))
        return client

    monkeypatch.setattr(boto3, "client", counting_client)
    # Room for the last slot's probe and a publish at its slowest (metrics.publish_budget).
    summary = fresh_handler.handler({"time": datetime.now(UTC).isoformat()}, Context(20))

    # Cold start: each round is news until 2 agreeing probes per target confirm a verdict; the
    # third round agrees and waits for the end. Every slot is probed.
    assert summary == {"probes": 6, "failed": 3, "verdicts": {"svc": "up", "gone": "down"}}
    assert calls == [1, 1, 1]
    cw = real_client("cloudwatch")
    listed = cw.list_metrics(Namespace=contract.NAMESPACE)["Metrics"]
    seen = {(m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]))) for m in listed}
    assert (contract.AVAILABILITY, (("Target", "svc"),)) in seen
    assert (contract.LATENCY, (("Target", "svc"),)) in seen
    assert (contract.FIRST_BYTE_TIME, (("Target", "svc"),)) in seen
    assert (contract.FAILURES, (("Reason", "refused"), ("Target", "gone"))) in seen
    assert (contract.LATENCY, (("Target", "gone"),)) not in seen  # no answer, no latency
    now = datetime.now(UTC)
    stats = cw.get_metric_statistics(
        Namespace=contract.NAMESPACE,
        MetricName=contract.AVAILABILITY,
        Dimensions=[{"Name": "Target", "Value": "gone"}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum", "SampleCount"],
    )["Datapoints"]
    assert sum(d["SampleCount"] for d in stats) == 3 and max(d["Maximum"] for d in stats) == 0.0


def test_bad_settings_make_the_invocation_fail(aws_env: str, monkeypatch: pytest.MonkeyPatch, fresh_handler) -> None:
    monkeypatch.setenv("CHECK_TARGETS", "[]")
    with pytest.raises(ValueError, match="CHECK_TARGETS must be a non-empty JSON list"):
        fresh_handler.handler({}, Context(10))


def test_failing_to_publish_raises(monkeypatch: pytest.MonkeyPatch, live_service: RunningService) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_url().rsplit("/", 1)[0])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("cloudwatch", config=boto3.session.Config(retries={"max_attempts": 1}))
    result = Prober().probe(Target(name="svc", url=f"{live_service.url}/hello"))
    with pytest.raises(EndpointConnectionError):
        CloudWatchPublisher(client, high_resolution=True).publish([result])


def test_datapoints_carry_the_slot_timestamp_and_resolution() -> None:
    r = SimpleNamespace(
        target="svc",
        ok=True,
        reason=None,
        status=200,
        slot=1_800_000_000.0,
        started_at=1_800_000_000.7,
        phases={"dns": 1.0, "connect": 2.0, "first_byte": 3.0, "total": 7.0},
        cert_days_remaining=None,
    )
    data = metric_data([r], high_resolution=True)  # type: ignore[list-item]
    assert {d["MetricName"] for d in data} == {
        contract.AVAILABILITY,
        contract.LATENCY,
        contract.DNS_TIME,
        contract.CONNECT_TIME,
        contract.FIRST_BYTE_TIME,
    }
    assert all(d["Timestamp"] == datetime.fromtimestamp(1_800_000_000.0, tz=UTC) for d in data)
    assert all(d["StorageResolution"] == 1 for d in data)
