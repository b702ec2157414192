"""The service's URL read by the checker at run time from /HelloWorldEks/url in the home region:
real handler invocations against a moto server (SSM and CloudWatch) and a real HTTP service."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from botocore.stub import Stubber

from checker_lambda import contract, timing
from checker_lambda.budgets import url_read_budget
from checker_lambda.settings import Settings, SettingsError, Target
from checker_lambda.urls import UrlReader
from tests import raw_peers
from tests.conftest import RunningService
from tests.peers import closed_port_url
from tests.test_checker_aws import Context, checker_errors, fresh_handler, recent_sums, remote_checker  # noqa: F401

HOME = "us-east-1"
NAME = "/HelloWorldEks/url"


def probes(out: str) -> list[dict]:
    return [line for line in map(json.loads, filter(None, out.splitlines())) if line.get("type") == "probe"]


def put_url(url: str, region: str = HOME) -> None:
    boto3.client("ssm", region_name=region).put_parameter(Name=NAME, Value=url, Type="String", Overwrite=True)


def delete_url(region: str = HOME) -> None:
    with contextlib.suppress(ClientError):
        boto3.client("ssm", region_name=region).delete_parameter(Name=NAME)


def target(name: str = "hello") -> str:
    return json.dumps([{"name": name, "url_parameter": NAME, "url_parameter_region": HOME, "timeout": 0.5}])


# Most tests here follow the URL, not the verdict, so one probe a run is enough. Two slots a run:
# the slots are set before the URL is read, and on a loaded machine that read may make the first
# one late past its tolerance (skipped); the second is still probed.
SHORT_RUNS = {"PROBE_INTERVAL_SECONDS": "1", "SCHEDULE_SECONDS": "2", "CONFIRM_PROBES": "2"}
# A verdict takes two probes: four slots give it even when the first slot is skipped.
VERDICT_RUNS = {**SHORT_RUNS, "SCHEDULE_SECONDS": "4"}


def home_checker(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for key, value in {
        "AWS_REGION": HOME,
        **SHORT_RUNS,
        **env,
    }.items():
        monkeypatch.setenv(key, value)


def invoke(handler_module, seconds: float = 25) -> dict:
    return handler_module.handler({"time": datetime.now(UTC).isoformat()}, Context(seconds))


def test_the_checker_probes_the_url_its_parameter_holds_and_follows_a_change_and_keeps_it_on_a_failed_read(
    aws_env: str,
    live_service: RunningService,
    monkeypatch: pytest.MonkeyPatch,
    fresh_handler,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    up = f"{live_service.url}/hello"
    put_url(up)
    home_checker(monkeypatch, CHECK_TARGETS=target("from-parameter"), **VERDICT_RUNS)
    assert invoke(fresh_handler)["verdicts"] == {"from-parameter": "up"}
    seen = probes(capsys.readouterr().out)
    assert {p["url"] for p in seen} == {up} and all(p["ok"] for p in seen)
    listed = boto3.client("cloudwatch", region_name=HOME).list_metrics(
        Namespace=contract.NAMESPACE, MetricName=contract.AVAILABILITY
    )["Metrics"]
    assert [{"Name": "Target", "Value": "from-parameter"}] in [m["Dimensions"] for m in listed]

    # A new URL (a replaced load balancer): the next invocation of the same, warm, Lambda probes it.
    down = closed_port_url()
    put_url(down)
    invoke(fresh_handler)
    seen = probes(capsys.readouterr().out)
    assert {p["url"] for p in seen} == {down} and not any(p["ok"] for p in seen)

    # The read fails (the parameter is gone): the last good value is probed, one line says why.
    delete_url()
    invoke(fresh_handler)
    out = capsys.readouterr().out
    assert {p["url"] for p in probes(out)} == {down}
    failed = [json.loads(line) for line in out.splitlines() if '"url_read_failed"' in line]
    assert len(failed) == 1 and failed[0]["parameter"] == NAME and failed[0]["region"] == HOME
    assert "ParameterNotFound" in failed[0]["why"]


def test_with_no_value_ever_read_the_invocation_fails(
    aws_env: str,
    monkeypatch: pytest.MonkeyPatch,
    fresh_handler,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The home checker: it raises (Lambda's Errors metric, alarmed at home), probing nothing."""
    delete_url()
    home_checker(monkeypatch, CHECK_TARGETS=target())
    with pytest.raises(ClientError, match="ParameterNotFound"):
        invoke(fresh_handler, 10)
    assert probes(capsys.readouterr().out) == []


def test_a_remote_checker_with_no_value_ever_read_counts_the_failure_at_home_and_fails(
    aws_env: str,
    monkeypatch: pytest.MonkeyPatch,
    fresh_handler,  # noqa: F811
) -> None:
    own = "ca-central-1"
    delete_url()
    put_url("http://wrong-region.example/hello", region=own)  # never read: the target names HOME
    remote_checker(monkeypatch, own, HOME, CHECK_TARGETS=target(), **SHORT_RUNS)
    with pytest.raises(ClientError, match="ParameterNotFound"):
        invoke(fresh_handler, 10)
    dims, count = checker_errors(HOME, own)
    assert dims == [contract.location_dimensions(own)] and count == 1


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    with raw_peers.hanging_endpoint() as (url, _held):
        yield url


@pytest.mark.parametrize("remote", [False, True], ids=["home", "remote"])
def test_a_read_from_an_ssm_that_never_answers_ends_within_its_budget(
    hanging_endpoint: str, monkeypatch: pytest.MonkeyPatch, remote: bool
) -> None:
    """The real client, configured as in the Lambda: one attempt, its timeouts, nothing more. Its
    budget fits in the slot offset at every interval the app allows (10, 30, 60 s)."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", hanging_endpoint)
    reader = UrlReader(remote=remote)
    began = time.monotonic()
    with pytest.raises((ReadTimeoutError, ConnectTimeoutError)):
        reader._read(HOME, NAME)
    took = time.monotonic() - began
    budget = url_read_budget(remote=remote)
    assert budget == (5.0 if remote else 3.0)
    assert took <= budget + 0.5, took
    print(f"hanging SSM: the read gave up after {took:.2f} s (budget {budget:g} s)")
    for interval in (10, 30, 60):
        assert timing.first_slot_delay(interval=interval, read_budget=budget) == 0.0


def test_an_ssm_that_hangs_does_not_make_the_first_slot_late(
    aws_env: str,
    live_service: RunningService,
    hanging_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    fresh_handler,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The app's shortest interval (10 s): a good read, then an SSM endpoint that hangs. The second
    invocation waits out its read (bounded) and probes its first slot on time, with the cached URL.
    The deadline leaves room for the first slot only (publish budget 12 s)."""
    up = f"{live_service.url}/hello"
    put_url(up)
    home_checker(monkeypatch, CHECK_TARGETS=target(), PROBE_INTERVAL_SECONDS="10", SCHEDULE_SECONDS="20")
    invoke(fresh_handler, 18)
    capsys.readouterr()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", hanging_endpoint)
    fresh_handler._checker.urls._clients.clear()  # a new connection, to the endpoint that hangs
    scheduled = time.time()
    fresh_handler.handler({"time": datetime.fromtimestamp(scheduled, tz=UTC).isoformat()}, Context(18))
    out = capsys.readouterr().out
    [first] = probes(out)
    assert first["url"] == up and first["ok"]
    slot = scheduled + timing.slot_offset(10)
    late = first["time"] - slot
    assert late <= 0.5, late  # on its slot: the read's 3 s fit in the 5 s offset
    assert '"url_read_failed"' in out
    print(f"first slot probed {late:+.2f} s from its time after a hanging read")


def test_a_value_that_is_not_a_url_is_refused_through_the_reader(
    aws_env: str,
    live_service: RunningService,
    monkeypatch: pytest.MonkeyPatch,
    fresh_handler,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad value in the parameter is a failed read, exactly as a missing one: the last good URL
    is probed and the log line says what was wrong; with none yet, the invocation fails."""
    up = f"{live_service.url}/hello"
    put_url(up)
    home_checker(monkeypatch, CHECK_TARGETS=target())
    invoke(fresh_handler)
    capsys.readouterr()
    put_url("not-a-url")
    invoke(fresh_handler)
    out = capsys.readouterr().out
    assert {p["url"] for p in probes(out)} == {up}
    [failed] = [json.loads(line) for line in out.splitlines() if '"url_read_failed"' in line]
    assert "SettingsError" in failed["why"] and "not an http:// or https:// URL" in failed["why"], failed
    assert failed["probing"] == up

    monkeypatch.setattr(fresh_handler, "_checker", None)  # a cold start: no value ever read
    with pytest.raises(SettingsError, match="not an http:// or https:// URL"):
        invoke(fresh_handler, 10)
    assert probes(capsys.readouterr().out) == []


def url_read_failures(region: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The UrlReadFailures counts stored in `region` in the last minutes, by their dimensions."""
    return recent_sums(region, contract.URL_READ_FAILURES)


@pytest.mark.parametrize("where", ["single-region", "home-of-several", "remote"])
def test_a_failed_read_with_a_cached_url_is_counted_at_home_and_the_cached_url_still_probed(
    aws_env: str,
    live_service: RunningService,
    monkeypatch: pytest.MonkeyPatch,
    fresh_handler,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    """A persistent read failure must reach an alarm: each invocation that falls back to the cached
    URL counts one UrlReadFailures, in the home region, without dimensions whatever its location
    (one metric, one alarm for every location), as the alarm reads it. A good read counts nothing."""
    own = "ca-central-1"
    up = f"{live_service.url}/hello"
    put_url(up)
    if where == "remote":
        remote_checker(monkeypatch, own, HOME, CHECK_TARGETS=target(), **SHORT_RUNS)
    elif where == "home-of-several":
        home_checker(monkeypatch, CHECK_TARGETS=target(), LOCATION=HOME)
    else:
        home_checker(monkeypatch, CHECK_TARGETS=target())
    expected = ()
    invoke(fresh_handler)
    capsys.readouterr()
    assert url_read_failures(HOME) == {}  # a good read: nothing

    delete_url()
    invoke(fresh_handler)
    out = capsys.readouterr().out
    assert {p["url"] for p in probes(out)} == {up} and all(p["ok"] for p in probes(out))
    assert '"url_read_failed"' in out
    assert url_read_failures(HOME) == {expected: 1.0}
    if where == "remote":
        assert url_read_failures(own) == {}  # where no alarm reads it


def test_a_failed_read_in_a_run_that_published_nothing_is_sent_with_the_next_batch() -> None:
    """A run may publish nothing (every slot skipped after a slow read, or its probes dropped at
    the deadline): its count is added to the next one's, under the earlier stamp, never lost."""
    from checker_lambda.metrics import CloudWatchPublisher
    from checker_lambda.probe import ProbeResult

    class Client:
        sent: list[dict] = []

        def put_metric_data(self, **call: object) -> None:
            self.sent.append(call)

    client = Client()
    publisher = CloudWatchPublisher(client, high_resolution=False)
    publisher.count_url_read_failures(1, 60.0)  # a run that then publishes nothing
    publisher.count_url_read_failures(0, 120.0)  # a good read
    publisher.count_url_read_failures(1, 180.0)
    publisher.publish([ProbeResult(target="hello", url="http://x/", started_at=180.0, ok=True)])
    [call] = client.sent
    [datum] = [d for d in call["MetricData"] if d["MetricName"] == contract.URL_READ_FAILURES]
    assert datum["Value"] == 2.0 and datum["Timestamp"].timestamp() == 60.0
    publisher.publish([ProbeResult(target="hello", url="http://x/", started_at=190.0, ok=True)])
    assert not [d for d in client.sent[-1]["MetricData"] if d["MetricName"] == contract.URL_READ_FAILURES]


# --- UrlReader on its own: botocore's Stubber at the edge, one real SSM client per region ---------


class StubbedSsm:
    """`UrlReader(client=...)`: a real SSM client per region, made up front, each with a Stubber
    activated; records which the reader asks for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *regions: str) -> None:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            monkeypatch.setenv(key, value)
        self.stubbers = {region: Stubber(boto3.client("ssm", region_name=region)) for region in regions}
        for stubber in self.stubbers.values():
            stubber.activate()
        self.made: list[str] = []

    def __call__(self, region: str) -> object:
        self.made.append(region)
        return self.stubbers[region].client

    def value(self, region: str, name: str, value: str) -> None:
        response = {"Parameter": {"Name": name, "Type": "String", "Value": value, "Version": 1}}
        self.stubbers[region].add_response("get_parameter", response, {"Name": name})

    def error(self, region: str, name: str, code: str, message: str) -> None:
        self.stubbers[region].add_client_error("get_parameter", code, message, expected_params={"Name": name})

    def done(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


def parameter_target(name: str, parameter: str, region: str) -> dict:
    return {"name": name, "url_parameter": parameter, "url_parameter_region": region}


THREE = Settings(
    targets=(
        Target.parse(parameter_target("a", "/a/url", HOME), "a"),
        Target.parse({"name": "plain", "url": "http://plain.example/"}, "plain"),  # between two parameters
        Target.parse(parameter_target("b", "/b/url", "eu-west-1"), "b"),
    ),
    interval=10,
    schedule=60,
    confirm=2,
)


def logged(out: str) -> list[dict]:
    return [line for line in map(json.loads, filter(None, out.splitlines())) if line["type"] == "url_read_failed"]


def test_the_reader_fills_each_parameters_url_in_order_with_one_client_per_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ssm = StubbedSsm(monkeypatch, HOME, "eu-west-1")
    reader = UrlReader(remote=False, client=ssm)
    for run in range(2):
        ssm.value(HOME, "/a/url", f"http://a{run}.example/")
        ssm.value("eu-west-1", "/b/url", f"https://b{run}.example/")
        resolved = reader.resolve(THREE)
        assert [t.url for t in resolved.targets] == [
            f"http://a{run}.example/",
            "http://plain.example/",
            f"https://b{run}.example/",
        ]
        assert resolved.targets[1] == THREE.targets[1]  # a given URL is left as it is
        assert reader.failures == 0
    assert ssm.made == [HOME, "eu-west-1"]  # made once, kept across invocations
    assert reader.cached == {(HOME, "/a/url"): "http://a1.example/", ("eu-west-1", "/b/url"): "https://b1.example/"}
    ssm.done()


def test_every_failed_read_of_a_run_is_counted_and_logged_and_probes_the_last_good_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ssm = StubbedSsm(monkeypatch, HOME, "eu-west-1")
    reader = UrlReader(remote=True, client=ssm)
    ssm.value(HOME, "/a/url", "http://a.example/")
    ssm.value("eu-west-1", "/b/url", "https://b.example/")
    reader.resolve(THREE)
    capsys.readouterr()

    ssm.error(HOME, "/a/url", "ParameterNotFound", "gone")
    ssm.error("eu-west-1", "/b/url", "ThrottlingException", "x" * 400)
    resolved = reader.resolve(THREE)
    assert reader.failures == 2
    assert [t.url for t in resolved.targets] == ["http://a.example/", "http://plain.example/", "https://b.example/"]
    first, second = logged(capsys.readouterr().out)
    assert first == {
        "type": "url_read_failed",
        "parameter": "/a/url",
        "region": HOME,
        "why": "ParameterNotFound: An error occurred (ParameterNotFound) when calling the GetParameter operation: gone",
        "probing": "http://a.example/",
    }
    assert second["parameter"] == "/b/url" and second["region"] == "eu-west-1"
    assert second["why"].startswith("ThrottlingException: An error occurred (ThrottlingException)")
    assert len(second["why"]) == 300 and second["probing"] == "https://b.example/"

    ssm.value(HOME, "/a/url", "http://a2.example/")  # the next run reads well again: counted afresh
    ssm.value("eu-west-1", "/b/url", "https://b.example/")
    reader.resolve(THREE)
    assert reader.failures == 0 and reader.cached[HOME, "/a/url"] == "http://a2.example/"
    ssm.done()


def test_a_failed_read_with_no_good_value_yet_fails_the_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    ssm = StubbedSsm(monkeypatch, HOME)
    reader = UrlReader(remote=False, client=ssm)
    ssm.error(HOME, "/a/url", "ParameterNotFound", "gone")
    with pytest.raises(ClientError, match="ParameterNotFound"):
        reader.resolve(Settings(targets=THREE.targets[:1], interval=10, schedule=60, confirm=2))
    assert reader.cached == {}


def test_the_readers_own_clients_have_the_configuration_of_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a client given, each region's is made with the home or remote configuration."""
    from checker_lambda.budgets import REMOTE_URL_CLIENT_CONFIG, URL_CLIENT_CONFIG

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    for remote, config in ((False, URL_CLIENT_CONFIG), (True, REMOTE_URL_CLIENT_CONFIG)):
        client = UrlReader(remote=remote)._client("eu-west-1")
        assert client.meta.region_name == "eu-west-1"
        assert client.meta.config.connect_timeout == config.connect_timeout
        assert client.meta.config.read_timeout == config.read_timeout
        assert client.meta.config.retries["total_max_attempts"] == 1
