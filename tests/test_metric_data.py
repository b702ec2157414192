"""Every datapoint the checker sends, exactly: name, dimensions, timestamp, value, unit and
resolution for each kind of probe, and what one PutMetricData call carries. The call goes through
a real CloudWatch client with botocore's Stubber at the edge: the request is checked against the
API model and against the parameters expected, and nothing leaves the process.

tests/test_alarm_fed.py shows the alarms read what a checker stores in moto; this file pins the
datapoints themselves, which that test reads only as far as the alarms need."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from checker_lambda import contract
from checker_lambda.budgets import CLIENT_CONFIG, REMOTE_CLIENT_CONFIG, client_config, publish_budget
from checker_lambda.contract import Reason
from checker_lambda.metrics import (
    MAX_DATUMS_PER_CALL,
    CloudWatchPublisher,
    metric_data,
    most_datums_per_probe,
    report_error,
)
from checker_lambda.probe import ProbeResult

SLOT = 1_800_000_000.0
STARTED = SLOT + 0.7  # a probe starts a little after its slot


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def datum(name: str, value: float, unit: str, dims: list[dict[str, str]], *, when: float = SLOT, res: int = 1) -> dict:
    return {"MetricName": name, "Dimensions": dims, "Timestamp": at(when), "Value": value, "Unit": unit,
            "StorageResolution": res}  # fmt: skip


def target(name: str = "svc", location: str | None = None) -> list[dict[str, str]]:
    return contract.dimensions(name, location=location)


def healthy_https() -> ProbeResult:
    return ProbeResult(
        target="svc",
        url="https://example.com/",
        started_at=STARTED,
        slot=SLOT,
        ok=True,
        status=200,
        phases={"dns": 1.5, "connect": 2.5, "tls": 3.5, "first_byte": 4.5, "total": 13.0},
        cert_days_remaining=29.5,
    )


def test_a_healthy_https_probe_sends_availability_latency_every_phase_and_the_certificate() -> None:
    assert metric_data([healthy_https()], high_resolution=True) == [
        datum(contract.AVAILABILITY, 1.0, "None", target()),
        datum(contract.LATENCY, 13.0, "Milliseconds", target()),
        datum(contract.DNS_TIME, 1.5, "Milliseconds", target()),
        datum(contract.CONNECT_TIME, 2.5, "Milliseconds", target()),
        datum(contract.TLS_TIME, 3.5, "Milliseconds", target()),
        datum(contract.FIRST_BYTE_TIME, 4.5, "Milliseconds", target()),
        datum(contract.CERT_DAYS_REMAINING, 29.5, "None", target()),
    ]


def test_a_wrong_status_sends_a_failure_with_its_reason_and_the_answers_timings() -> None:
    r = ProbeResult(target="svc", url="http://x/", started_at=STARTED, slot=SLOT, reason=Reason.STATUS, status=503)
    r.phases = {"dns": 1.0, "connect": 2.0, "first_byte": 3.0, "total": 6.0}
    assert metric_data([r], high_resolution=True, location="eu-west-1") == [
        datum(contract.AVAILABILITY, 0.0, "None", target(location="eu-west-1")),
        datum(contract.FAILURES, 1.0, "Count", contract.dimensions("svc", Reason.STATUS, "eu-west-1")),
        datum(contract.LATENCY, 6.0, "Milliseconds", target(location="eu-west-1")),
        datum(contract.DNS_TIME, 1.0, "Milliseconds", target(location="eu-west-1")),
        datum(contract.CONNECT_TIME, 2.0, "Milliseconds", target(location="eu-west-1")),
        datum(contract.FIRST_BYTE_TIME, 3.0, "Milliseconds", target(location="eu-west-1")),
    ]


def test_a_probe_with_no_answer_sends_no_timings_however_long_it_took() -> None:
    r = ProbeResult(target="svc", url="http://x/", started_at=STARTED, reason=Reason.REFUSED)
    r.phases = {"dns": 1.0, "total": 2.0}  # it did resolve, then was refused
    # No slot (a probe run outside the schedule, e.g. the command line): stamped when it started.
    assert metric_data([r], high_resolution=False) == [
        datum(contract.AVAILABILITY, 0.0, "None", target(), when=STARTED, res=60),
        datum(contract.FAILURES, 1.0, "Count", contract.dimensions("svc", Reason.REFUSED), when=STARTED, res=60),
    ]


def test_without_details_only_what_the_alarms_read_availability_failures_latency() -> None:
    failed = healthy_https()
    failed.ok, failed.reason = False, Reason.BODY
    data = metric_data([failed], high_resolution=True, location="ap-southeast-2", details=False)
    assert data == [
        datum(contract.AVAILABILITY, 0.0, "None", target(location="ap-southeast-2")),
        datum(contract.FAILURES, 1.0, "Count", contract.dimensions("svc", Reason.BODY, "ap-southeast-2")),
        datum(contract.LATENCY, 13.0, "Milliseconds", target(location="ap-southeast-2")),
    ]


def test_the_most_datapoints_one_probe_makes_is_what_a_wrong_answer_makes() -> None:
    wrong = healthy_https()
    wrong.ok, wrong.reason, wrong.status = False, Reason.STATUS, 500
    assert most_datums_per_probe(https=True) == len(metric_data([wrong], high_resolution=True)) == 8
    del wrong.phases["tls"]
    wrong.cert_days_remaining = None
    assert most_datums_per_probe(https=False) == len(metric_data([wrong], high_resolution=True)) == 6


# --- one call to CloudWatch, through the real client -----------------------------------------


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("cloudwatch", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def expect(stubber: Stubber, data: list[dict[str, Any]]) -> None:
    stubber.add_response("put_metric_data", {}, {"Namespace": contract.NAMESPACE, "MetricData": data})


def test_a_batch_is_one_call_and_nothing_is_sent_for_no_probes(cloudwatch) -> None:
    client, stubber = cloudwatch
    publisher = CloudWatchPublisher(client, high_resolution=True)
    assert publisher.publish([]) == 0  # the Stubber has no response queued: a call would fail
    probes = [healthy_https(), healthy_https()]
    expect(stubber, metric_data(probes, high_resolution=True))
    assert publisher.publish(probes) == 14


def test_the_publishers_settings_shape_what_it_sends(cloudwatch) -> None:
    client, stubber = cloudwatch
    publisher = CloudWatchPublisher(client, high_resolution=False, location="eu-west-1", details=False)
    r = healthy_https()
    expect(stubber, metric_data([r], high_resolution=False, location="eu-west-1", details=False))
    assert publisher.publish([r]) == 2
    assert [d["StorageResolution"] for d in metric_data([r], high_resolution=False)] == [60] * 7


def test_failed_url_reads_ride_with_the_next_batch_under_the_first_stamp_until_one_is_sent(cloudwatch) -> None:
    client, stubber = cloudwatch
    publisher = CloudWatchPublisher(client, high_resolution=True, location="eu-west-1")
    publisher.count_url_read_failures(2, 60.0)
    publisher.count_url_read_failures(0, 90.0)  # a good read adds nothing
    publisher.count_url_read_failures(3, 120.0)
    reads = {"MetricName": contract.URL_READ_FAILURES, "Dimensions": [], "Timestamp": at(60.0), "Value": 5.0,
             "Unit": "Count", "StorageResolution": 60}  # fmt: skip
    probes = metric_data([healthy_https()], high_resolution=True, location="eu-west-1")
    # The first call fails (throttled): the count is kept and sent with the next batch.
    stubber.add_client_error("put_metric_data", "Throttling", http_status_code=400)
    with pytest.raises(client.exceptions.ClientError):
        publisher.publish([healthy_https()])
    expect(stubber, [reads, *probes])
    assert publisher.publish([healthy_https()]) == 1 + len(probes)
    expect(stubber, probes)  # sent once: the next batch carries only its probes
    assert publisher.publish([healthy_https()]) == len(probes)


def test_a_batch_fills_one_call_to_its_limit_with_the_url_read_count_and_no_further(cloudwatch) -> None:
    client, stubber = cloudwatch
    publisher = CloudWatchPublisher(client, high_resolution=True)
    one = ProbeResult(target="svc", url="http://x/", started_at=STARTED, slot=SLOT, ok=True)  # 1 datapoint
    publisher.count_url_read_failures(1, 60.0)
    with pytest.raises(ValueError, match=r"^1001 datapoints exceed one PutMetricData call \(1000\)$"):
        publisher.publish([one] * MAX_DATUMS_PER_CALL)
    data = metric_data([one] * (MAX_DATUMS_PER_CALL - 1), high_resolution=True)
    expect(stubber, [{**data[0], "MetricName": contract.URL_READ_FAILURES, "Dimensions": [], "Timestamp": at(60.0),
                      "Value": 1.0, "Unit": "Count", "StorageResolution": 60}, *data])  # fmt: skip
    assert publisher.publish([one] * (MAX_DATUMS_PER_CALL - 1)) == MAX_DATUMS_PER_CALL


def test_a_failed_invocation_elsewhere_is_one_count_at_its_location(cloudwatch) -> None:
    client, stubber = cloudwatch
    errors = {"MetricName": contract.CHECKER_ERRORS, "Dimensions": [{"Name": "Location", "Value": "sa-east-1"}],
              "Timestamp": at(120.0), "Value": 1.0, "Unit": "Count", "StorageResolution": 60}  # fmt: skip
    expect(stubber, [errors])
    report_error(client, "sa-east-1", 120.0)


# --- how long one call may take --------------------------------------------------------------


def config(**retries: Any) -> Config:
    return Config(connect_timeout=1, read_timeout=2, retries=retries)


@pytest.mark.parametrize(
    ("cfg", "budget"),
    [
        # 2 attempts of 1 + 2 s, and one backoff of at most 1 s + 5 s (x-amz-retry-after)
        (CLIENT_CONFIG, 12.0),
        (REMOTE_CLIENT_CONFIG, 2 * 5 + 6.0),
        (config(mode="standard", total_max_attempts=1), 3.0),
        # legacy max_attempts counts retries: 3 of them, 4 attempts
        (config(mode="standard", max_attempts=3), 4 * 3 + (1 + 5) + (2 + 5) + (4 + 5)),
        (config(mode="standard"), 3 * 3 + (1 + 5) + (2 + 5)),  # botocore's default: 2 retries
        # backoffs 1, 2, 4, 8, 16, then capped at 20 s
        (config(mode="standard", total_max_attempts=7), 7 * 3 + (1 + 2 + 4 + 8 + 16 + 20) + 6 * 5),
    ],
    ids=["home", "remote", "one attempt", "legacy max_attempts", "default attempts", "capped backoff"],
)
def test_the_publish_budget_is_every_attempt_at_its_slowest_and_every_backoff(cfg: Config, budget: float) -> None:
    assert publish_budget(cfg) == budget


def test_the_publish_budget_refuses_a_retry_mode_it_does_not_model() -> None:
    with pytest.raises(ValueError, match="^publish_budget models botocore's 'standard' retry mode only$"):
        publish_budget(config(mode="adaptive", total_max_attempts=2))
    with pytest.raises(ValueError, match="standard"):
        publish_budget(Config(connect_timeout=1, read_timeout=2))


def test_a_checker_in_another_region_gets_the_longer_timeouts() -> None:
    assert client_config(remote=False) is CLIENT_CONFIG
    assert client_config(remote=True) is REMOTE_CLIENT_CONFIG
    assert publish_budget(REMOTE_CLIENT_CONFIG) > publish_budget(CLIENT_CONFIG)
