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
from checker_lambda.probe import Prober, ProbeResult
from checker_lambda.settings import Target
from tests.conftest import RunningService
from tests.peers import closed_port_url
from tests.raw_peers import hanging_endpoint


class Context:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.time() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.time()) * 1000)


@pytest.fixture
def fresh_handler(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(handler, "_checker", None)  # a cold start
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
    # Room for the last slot's probe and two publishes at their slowest (budgets.publish_budget):
    # news is published at once only when a failed attempt still leaves time for the final one.
    summary = fresh_handler.handler({"time": datetime.now(UTC).isoformat()}, Context(30))

    # Cold start: each round is news until each target's published probes decide the state the
    # alarm holds (2 agreeing); the third round changes nothing and waits for the end. Every slot
    # is probed.
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


def test_a_checker_in_another_region_publishes_to_the_home_region_under_its_location(
    aws_env: str, live_service: RunningService, monkeypatch: pytest.MonkeyPatch, fresh_handler
) -> None:
    """Both ends of the cross-region hop: what the Lambda in ap-southeast-2 sends is stored in
    us-east-1's CloudWatch (where the alarms read), with its Location; nothing in its own region."""
    home, own = "us-east-1", "ap-southeast-2"
    target = {"name": "far-svc", "url": f"{live_service.url}/hello", "expect_body": "Hello World", "timeout": 0.5}
    for key, value in {
        "CHECK_TARGETS": json.dumps([target]),
        "PROBE_INTERVAL_SECONDS": "1",
        "SCHEDULE_SECONDS": "2",
        "CONFIRM_PROBES": "2",
        "AWS_DEFAULT_REGION": own,  # the Lambda's region
        "LOCATION": own,
        "METRICS_REGION": home,
    }.items():
        monkeypatch.setenv(key, value)
    summary = fresh_handler.handler({"time": datetime.now(UTC).isoformat()}, Context(25))
    assert summary["verdicts"] == {"far-svc": "up"}

    def stored(region: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        listed = boto3.client("cloudwatch", region_name=region).list_metrics(Namespace=contract.NAMESPACE)["Metrics"]
        return {
            (m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])))
            for m in listed
            if {"Name": "Target", "Value": "far-svc"} in m["Dimensions"]
        }

    assert (contract.AVAILABILITY, (("Location", own), ("Target", "far-svc"))) in stored(home)
    assert (contract.LATENCY, (("Location", own), ("Target", "far-svc"))) in stored(home)
    assert all(("Location", own) in dims for _, dims in stored(home))
    assert stored(own) == set()
    # Only what the alarms and the per-location dashboard read: each metric is billed per location.
    assert {name for name, _ in stored(home)} == {contract.AVAILABILITY, contract.LATENCY}


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


@pytest.mark.parametrize("remote", [False, True], ids=["own region", "home region from another"])
def test_a_publish_to_a_cloudwatch_that_never_answers_ends_within_the_publish_budget(
    monkeypatch: pytest.MonkeyPatch, remote: bool
) -> None:
    """The real client, configured as in the Lambda, against a server that accepts and hangs."""
    from botocore.exceptions import ReadTimeoutError

    from checker_lambda.budgets import client_config, publish_budget

    CLIENT_CONFIG = client_config(remote=remote)  # noqa: N806  # as the Lambda builds it

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    with hanging_endpoint() as (url, held):
        client = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=url, config=CLIENT_CONFIG)
        result = ProbeResult(target="svc", url="x", started_at=time.time(), ok=True)
        began = time.monotonic()
        with pytest.raises(ReadTimeoutError):
            CloudWatchPublisher(client, high_resolution=True).publish([result])
        took = time.monotonic() - began
    assert len(held) == 2  # both attempts were made
    assert 2 * CLIENT_CONFIG.read_timeout <= took <= publish_budget(CLIENT_CONFIG)


def test_the_largest_batch_a_run_may_publish_fits_one_call(aws_env: str) -> None:
    """1,000 datapoints, each as large as the checker makes them, stay under the 1 MB request limit."""
    from checker_lambda.metrics import MAX_DATUMS_PER_CALL, most_datums_per_probe

    sizes: list[int] = []
    client = boto3.client("cloudwatch")
    client.meta.events.register(
        "before-send.cloudwatch.PutMetricData", lambda request, **_: sizes.append(len(request.body))
    )
    per_probe = most_datums_per_probe(https=True)
    results = []
    for i in range(MAX_DATUMS_PER_CALL // per_probe):
        r = ProbeResult(target="t" * 64, url="x", started_at=1_800_000_000.0 + i, ok=False, status=503)
        r.reason = contract.Reason.STATUS
        r.phases = {"dns": 1.5, "connect": 2.5, "tls": 3.5, "first_byte": 4.5, "total": 12.123456789}
        r.cert_days_remaining = 29.987654321
        results.append(r)
    published = CloudWatchPublisher(client, high_resolution=True).publish(results)
    assert published == len(results) * per_probe > MAX_DATUMS_PER_CALL - per_probe
    assert sizes and max(sizes) < 1_000_000


# --- a checker in another region reports its own failures to the home region ------------------


def recent_sums(region: str, metric_name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The sum of each of the checker's `metric_name` metrics stored in `region` in the last
    minutes, by its dimensions ((name, value) pairs)."""
    cw = boto3.client("cloudwatch", region_name=region)
    listed = cw.list_metrics(Namespace=contract.NAMESPACE, MetricName=metric_name)["Metrics"]
    now = datetime.now(UTC)
    sums = {}
    for metric in listed:
        points = cw.get_metric_statistics(
            Namespace=contract.NAMESPACE,
            MetricName=metric_name,
            Dimensions=metric["Dimensions"],
            StartTime=now - timedelta(minutes=10),
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        sums[tuple((d["Name"], d["Value"]) for d in metric["Dimensions"])] = sum(p["Sum"] for p in points)
    return sums


def checker_errors(region: str, location: str) -> tuple[list[list[dict[str, str]]], float]:
    """The CheckerErrors metrics stored in `region` for `location` (their dimensions), and their count."""
    mine = {
        dims: n
        for dims, n in recent_sums(region, contract.CHECKER_ERRORS).items()
        if (contract.LOCATION, location) in dims
    }
    return [[{"Name": k, "Value": v} for k, v in dims] for dims in mine], sum(mine.values())


def remote_checker(monkeypatch: pytest.MonkeyPatch, own: str, home: str, **env: str) -> None:
    for key, value in {
        "AWS_DEFAULT_REGION": own,
        "AWS_REGION": own,  # what Lambda sets: the checker's own region
        "LOCATION": own,
        "METRICS_REGION": home,
        "PROBE_INTERVAL_SECONDS": "1",
        "SCHEDULE_SECONDS": "4",  # four slots: a cold start on a loaded machine may skip the first
        "CONFIRM_PROBES": "2",
        **env,
    }.items():
        monkeypatch.setenv(key, value)


def test_a_remote_checker_with_broken_settings_counts_each_failure_at_home_and_still_fails(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, fresh_handler
) -> None:
    """Bad settings in one region only: every invocation fails at its cold start; Lambda's Errors
    for it are in sa-east-1, so the checker counts them in us-east-1, where the alarm reads."""
    home, own = "us-east-1", "sa-east-1"
    remote_checker(monkeypatch, own, home, CHECK_TARGETS="[]")
    for _ in range(2):
        with pytest.raises(ValueError, match="CHECK_TARGETS must be a non-empty JSON list"):
            fresh_handler.handler({"time": datetime.now(UTC).isoformat()}, Context(10))
    dims, count = checker_errors(home, own)
    assert dims == [contract.location_dimensions(own)] and count == 2
    assert checker_errors(own, own) == ([], 0)
    # The home checker (no METRICS_REGION) leaves its errors to Lambda's own metric, alarmed at home.
    monkeypatch.setenv("LOCATION", "eu-south-1")
    monkeypatch.setenv("AWS_REGION", home)
    monkeypatch.delenv("METRICS_REGION")
    with pytest.raises(ValueError, match="CHECK_TARGETS"):
        fresh_handler.handler({}, Context(10))
    assert checker_errors(home, "eu-south-1") == ([], 0)


def test_a_remote_checker_that_fails_after_publishing_counts_the_failure_at_home(
    aws_env: str, live_service: RunningService, monkeypatch: pytest.MonkeyPatch, fresh_handler
) -> None:
    """The case no heartbeat sees: probes still reach the home region, the invocation still fails."""
    home, own = "us-east-1", "eu-central-1"
    target = {"name": "after-publish", "url": f"{live_service.url}/hello", "timeout": 0.5}
    remote_checker(monkeypatch, own, home, CHECK_TARGETS=json.dumps([target]))
    real_publish = CloudWatchPublisher.publish

    def publish_then_fail(self: CloudWatchPublisher, results):  # type: ignore[no-untyped-def]
        real_publish(self, results)
        raise RuntimeError("a bug after the publish")

    monkeypatch.setattr(CloudWatchPublisher, "publish", publish_then_fail)
    with pytest.raises(RuntimeError, match="a bug after the publish"):
        fresh_handler.handler({"time": datetime.now(UTC).isoformat()}, Context(25))
    cw = boto3.client("cloudwatch", region_name=home)
    probes = cw.list_metrics(
        Namespace=contract.NAMESPACE,
        MetricName=contract.AVAILABILITY,
        Dimensions=[{"Name": "Target", "Value": "after-publish"}],
    )["Metrics"]
    assert probes and all({"Name": contract.LOCATION, "Value": own} in m["Dimensions"] for m in probes)
    assert checker_errors(home, own) == ([contract.location_dimensions(own)], 1)


def test_a_home_cloudwatch_that_never_answers_does_not_hold_a_failing_invocation_past_its_deadline(
    monkeypatch: pytest.MonkeyPatch, fresh_handler
) -> None:
    """The report waits at most until ERROR_REPORT_MARGIN before the deadline, then the original
    error goes out; the client's own timeouts (3 s read, two attempts) are longer than that."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    remote_checker(monkeypatch, "ap-south-1", "us-east-1", CHECK_TARGETS="not json")
    deadline_in = 2.0
    with hanging_endpoint() as (url, held):
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        began = time.monotonic()
        with pytest.raises(ValueError, match="CHECK_TARGETS is not valid JSON"):
            fresh_handler.handler({}, Context(deadline_in))
        took = time.monotonic() - began
        assert held, "the report was never attempted"
    assert deadline_in - handler.ERROR_REPORT_MARGIN - 0.2 <= took < deadline_in


def test_a_remote_failure_is_counted_in_the_period_of_the_run_that_failed(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, fresh_handler
) -> None:
    """Stamped with the scheduled time, not when the report was sent: a run due minutes ago (a
    late or slow one) counts in its own period of the alarm, not in a later one."""
    home, own = "us-east-1", "ap-south-1"
    remote_checker(monkeypatch, own, home, CHECK_TARGETS="[]")
    due = (datetime.now(UTC) - timedelta(minutes=4)).replace(second=0, microsecond=0)
    with pytest.raises(ValueError, match="CHECK_TARGETS"):
        fresh_handler.handler({"time": due.isoformat().replace("+00:00", "Z")}, Context(10))
    cw = boto3.client("cloudwatch", region_name=home)
    points = cw.get_metric_statistics(
        Namespace=contract.NAMESPACE,
        MetricName=contract.CHECKER_ERRORS,
        Dimensions=contract.location_dimensions(own),
        StartTime=due - timedelta(minutes=10),
        EndTime=due + timedelta(minutes=10),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    assert [(p["Timestamp"], p["Sum"]) for p in points] == [(due, 1.0)]


# --- report_failure on its own: what it says when the count cannot be stored --------------------


def error_report_lines(out: str) -> list[dict]:
    return [line for line in map(json.loads, out.splitlines()) if line["type"] == "error_report_failed"]


def test_a_failure_report_with_no_time_left_sends_nothing_and_says_so(
    aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Less than ERROR_REPORT_MARGIN left: the original error must go out first; nothing is sent."""
    stored = handler.report_failure("sa-east-1", "us-east-1", time.time(), handler.ERROR_REPORT_MARGIN - 0.01)
    assert stored is False
    assert error_report_lines(capsys.readouterr().out) == [
        {
            "type": "error_report_failed",
            "region": "us-east-1",
            "location": "sa-east-1",
            "why": "no time left before the deadline",
        }
    ]
    assert checker_errors("us-east-1", "sa-east-1") == ([], 0)


def test_a_failure_report_that_is_stored_says_nothing(aws_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert handler.report_failure("sa-east-1", "us-east-1", time.time(), 10) is True
    assert error_report_lines(capsys.readouterr().out) == []
    assert checker_errors("us-east-1", "sa-east-1") == ([contract.location_dimensions("sa-east-1")], 1)


def test_a_failure_report_refused_by_the_home_region_names_the_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_url().removesuffix("/hello"))
    assert handler.report_failure("sa-east-1", "us-east-1", time.time(), 10) is False
    [line] = error_report_lines(capsys.readouterr().out)
    assert line["why"].startswith("EndpointConnectionError: Could not connect"), line
    assert (line["region"], line["location"]) == ("us-east-1", "sa-east-1")


def test_a_failure_report_to_a_home_region_that_never_answers_says_how_long_it_waited(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with hanging_endpoint() as (url, held):
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        began = time.monotonic()
        stored = handler.report_failure("sa-east-1", "us-east-1", time.time(), handler.ERROR_REPORT_MARGIN + 0.7)
        took = time.monotonic() - began
        assert held, "the report was never attempted"
    assert stored is False and 0.7 <= took < 1.5
    [line] = error_report_lines(capsys.readouterr().out)
    assert line["why"] == "no answer within 0.7 s"


def test_a_failure_report_whose_client_cannot_be_made_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert handler.report_failure("sa-east-1", "not a region", time.time(), 10) is False
    [line] = error_report_lines(capsys.readouterr().out)
    assert line["why"].startswith("InvalidRegionError: "), line


def test_a_failure_is_reported_under_the_lambdas_region_when_location_is_missing_or_broken() -> None:
    home = {"METRICS_REGION": "us-east-1", "AWS_REGION": "sa-east-1"}
    assert handler.error_destination(home) == ("sa-east-1", "us-east-1")
    assert handler.error_destination({**home, "LOCATION": "not/a/region"}) == ("sa-east-1", "us-east-1")
    assert handler.error_destination({**home, "LOCATION": "eu-west-1"}) == ("eu-west-1", "us-east-1")
    assert handler.error_destination({"AWS_REGION": "sa-east-1"}) is None  # the home checker
