"""The first deploy pages nobody: every checker runs once, and publishes, before any alarm that
reads its metrics is created or updated (checker_lambda/first_run.py, docs/decisions.md §3).

On the synthesized templates: each metric alarm depends on the home checker's first run, and
the health stack on every remote checker stack, whose own first run completes with it. The
first run's code runs against a moto server and a real local service, the checker invoked in
process as Lambda would (its return value, or its error as Lambda reports one), and its answer
to CloudFormation caught by a real local HTTP server.
"""

from __future__ import annotations

import io
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from cdk_app import checker as checker_construct
from cdk_app.alarm_plan import Missing, plan
from cdk_app.config import MONITORING_STACK_NAME, AppConfig, checker_stack_name
from checker_lambda import contract, first_run
from tests.conftest import RunningService
from tests.infra import DEFAULTS, as_json, render, stack_dependencies, stack_templates
from tests.peers import closed_port_url
from tests.test_checker_aws import Context, fresh_handler  # noqa: F401
from tests.test_checker_url import HOME, delete_url, put_url, target

EMAIL = "oncall@example.com"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
CONFIGS = {  # as other tests synthesize them
    "one region": {"alertEmail": EMAIL},
    "three regions": {"checkerRegions": json.dumps(REGIONS), "alertEmail": EMAIL},
}
HANDLER = "checker_lambda.handler.handler"


def first_runs(t: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in t["Resources"].items() if r["Type"] == "Custom::CheckerFirstRun"}


def checker_function(t: dict[str, Any]) -> str:
    [fn] = [k for k, r in t["Resources"].items() if r["Properties"].get("Handler") == HANDLER]
    return fn


@pytest.mark.parametrize("name", CONFIGS)
def test_every_alarm_is_created_after_a_first_run_of_every_checker_it_reads(name: str) -> None:
    templates = {k: as_json(t) for k, t in stack_templates(**CONFIGS[name]).items()}
    health = templates[MONITORING_STACK_NAME]
    [(home_run, run)] = first_runs(health).items()
    # Both ends: the run invokes this stack's checker, and its function may invoke that one only.
    fn = checker_function(health)
    assert run["Properties"]["Function"] == {"Ref": fn}
    [runner] = [
        k
        for k, r in health["Resources"].items()
        if r["Properties"].get("Handler") == "checker_lambda.first_run.on_event"
    ]
    assert run["Properties"]["ServiceToken"] == {"Fn::GetAtt": [runner, "Arn"]}
    [policy] = [
        r["Properties"]["PolicyDocument"]
        for r in health["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        and {"Ref": health["Resources"][runner]["Properties"]["Role"]["Fn::GetAtt"][0]} in r["Properties"]["Roles"]
    ]
    assert [s for s in policy["Statement"] if "logs:" not in json.dumps(s["Action"])] == [
        {"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": {"Fn::GetAtt": [fn, "Arn"]}},
        {"Action": "cloudformation:DescribeStacks", "Effect": "Allow", "Resource": {"Ref": "AWS::StackId"}},
        {"Action": "cloudwatch:GetMetricStatistics", "Effect": "Allow", "Resource": "*"},
    ]
    assert health["Outputs"]["FirstRun"]["Value"] == {"Fn::GetAtt": [home_run, "Summary"]}
    # It answers only once every location's heartbeat metric reads back: the plan's heartbeats.
    p = plan(AppConfig.from_context({**DEFAULTS, **CONFIGS[name]}.get))
    wanted = [
        {"Namespace": m.namespace, "MetricName": m.name, **m.dims}
        for a in p.metric_alarms
        if a.missing is Missing.BREACHING
        for m in a.metrics()
    ]
    assert json.loads(run["Properties"]["Heartbeats"]) == wanted
    assert [h.get(contract.LOCATION) for h in wanted] == (REGIONS if name == "three regions" else [None])
    # Bounded: the function answers before its own timeout, and CloudFormation waits a little more.
    timeout = health["Resources"][runner]["Properties"]["Timeout"]
    assert timeout == first_run.TIMEOUT and int(run["Properties"]["ServiceTimeout"]) == timeout + 60
    [invoke_config] = [
        r["Properties"]
        for r in health["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventInvokeConfig" and r["Properties"]["FunctionName"] == {"Ref": runner}
    ]
    assert (invoke_config["MaximumRetryAttempts"], invoke_config["MaximumEventAgeInSeconds"]) == (0, 60)

    depends = stack_dependencies(**CONFIGS[name])[MONITORING_STACK_NAME]
    alarms = {k: r for k, r in health["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms
    for logical_id, alarm in alarms.items():
        assert home_run in alarm.get("DependsOn", []), logical_id  # the home checker ran first
        read = {
            d["Value"]
            for stat in [
                alarm["Properties"],
                *(m.get("MetricStat", {}).get("Metric", {}) for m in alarm["Properties"].get("Metrics", [])),
            ]
            for d in stat.get("Dimensions", [])
            if d["Name"] == contract.LOCATION
        }
        for location in read - {REGIONS[0]}:  # a remote checker: its stack, with its first run, first
            assert checker_stack_name(location) in depends, (logical_id, location)
    for region in REGIONS[1:] if name == "three regions" else []:
        remote = templates[checker_stack_name(region)]
        [(remote_run, r)] = first_runs(remote).items()
        assert r["Properties"]["Function"] == {"Ref": checker_function(remote)}
        assert r["Properties"]["Location"] == region
        assert r["Properties"]["Heartbeats"] == "[]"  # the home run, later, reads them all back
        assert remote["Outputs"]["FirstRun"]["Value"] == {"Fn::GetAtt": [remote_run, "Summary"]}
        assert not [k for k, x in remote["Resources"].items() if x["Type"].startswith("AWS::CloudWatch::")]


def test_a_changed_setting_or_code_runs_the_checker_again_before_the_alarms_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An Update of the first-run resource runs the new checker; the alarms depend on it, so
    CloudFormation updates them after it: no alarm reads a metric the new checker has not yet
    published (docs/decisions.md §3)."""
    before = as_json(stack_templates(**CONFIGS["one region"])[MONITORING_STACK_NAME])
    after = as_json(
        stack_templates(
            alertEmail=EMAIL, confirmProbes=2, latencyPercentile="p99", latencyThresholdMs=250, sloTargetPercent=99.5
        )[MONITORING_STACK_NAME]
    )
    [run_before] = first_runs(before).values()
    [run_after] = first_runs(after).values()
    assert run_before["Properties"]["CONFIRM_PROBES"] != run_after["Properties"]["CONFIRM_PROBES"]
    # The role's policy and the function's limits are part of it too.
    [checker_role_policy] = [
        r["Properties"]["PolicyDocument"]
        for k, r in before["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and k.startswith("CheckerRoleDefaultPolicy")
    ]
    assert json.loads(render(run_before["Properties"]["Policy"])) == json.loads(json.dumps(render(checker_role_policy)))
    fn = before["Resources"][checker_function(before)]["Properties"]
    assert (run_before["Properties"]["Timeout"], run_before["Properties"]["Memory"]) == (
        str(fn["Timeout"]),
        str(fn["MemorySize"]),
    )
    # The code: one byte changed anywhere in the package changes the release.
    assert run_before["Properties"]["Code"] == checker_construct.code_digest()
    copy = tmp_path / "checker_lambda"
    shutil.copytree(checker_construct.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(checker_construct, "PACKAGE", copy)
    assert checker_construct.code_digest() == run_before["Properties"]["Code"]
    (copy / "probe.py").write_text((copy / "probe.py").read_text() + "\n")
    assert checker_construct.code_digest() != run_before["Properties"]["Code"]


# --- the first run's code, against moto and a real service ---------------------------------------


@contextmanager
def cloudformation_endpoint() -> Iterator[list[dict[str, Any]]]:
    """A local stand-in for the pre-signed S3 URL CloudFormation waits on: records each PUT."""
    answers: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            answers.append({"content_type": self.headers.get("Content-Type"), **json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answers.append({"url": f"http://127.0.0.1:{server.server_port}/response?signed=1"})
        yield answers
    finally:
        server.shutdown()
        server.server_close()


def in_process(handler_module: Any) -> first_run.Invoke:
    """Lambda's RequestResponse invoke of the checker, run here: its return value, or the error
    payload and FunctionError Lambda reports when the handler raises ("Invoke", Lambda API)."""

    def invoke(function: str, payload: bytes, seconds: float) -> tuple[dict[str, Any], str | None]:
        try:
            return handler_module.handler(json.loads(payload), Context(min(seconds, 20))), None
        except Exception as exc:  # noqa: BLE001  # what Lambda turns into a FunctionError
            return {"errorType": type(exc).__name__, "errorMessage": str(exc)}, "Unhandled"

    return invoke


def event(url: str, kind: str = "Create") -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/HelloWorldHealth/x",
        "RequestId": "r-1",
        "LogicalResourceId": "CheckerFirstRunFA38C128",
        "ResourceType": "Custom::CheckerFirstRun",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:fr",
            "Function": "checker",
            "Location": HOME,
        },
    }


def availability(name: str = "hello") -> list[float]:
    now = datetime.now(UTC)
    points = boto3.client("cloudwatch", region_name=HOME).get_metric_statistics(
        Namespace=contract.NAMESPACE,
        MetricName=contract.AVAILABILITY,
        Dimensions=[{"Name": contract.TARGET, "Value": name}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Minimum", "SampleCount"],
    )["Datapoints"]
    return [p["Minimum"] for p in points for _ in range(int(p["SampleCount"]))]


@pytest.fixture
def checker_env(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_REGION": HOME,
        "PROBE_INTERVAL_SECONDS": "1",
        "SCHEDULE_SECONDS": "4",
        "CONFIRM_PROBES": "2",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CHECK_TARGETS", target())


@pytest.mark.parametrize("up", [True, False], ids=["healthy", "service down"])
def test_the_first_run_publishes_and_reports_what_it_saw_and_succeeds(
    checker_env: None,
    live_service: RunningService,
    fresh_handler: Any,  # noqa: F811
    up: bool,
) -> None:
    put_url(f"{live_service.url}/hello" if up else closed_port_url())
    with cloudformation_endpoint() as answers:
        first_run.on_event(event(answers[0]["url"]), Context(600), invoke=in_process(fresh_handler))
    [answer] = answers[1:]
    assert answer["Status"] == "SUCCESS" and answer["content_type"] == ""
    assert (answer["StackId"], answer["RequestId"], answer["LogicalResourceId"]) == (
        "arn:aws:cloudformation:us-east-1:123456789012:stack/HelloWorldHealth/x",
        "r-1",
        "CheckerFirstRunFA38C128",
    )
    summary = answer["Data"]["Summary"]
    published = availability()
    assert len(published) == 1, "one round of probes, published, whatever the schedule"
    if up:
        assert summary == f"{HOME}: hello up"
        assert min(published) == 1.0
    else:
        assert summary == f"{HOME}: hello down (refused); the availability alarm pages if hello stays down"
        assert min(published) == 0.0


def test_a_checker_that_cannot_run_fails_the_deploy_with_one_line(checker_env: None, fresh_handler: Any) -> None:  # noqa: F811
    delete_url()  # the URL parameter is missing: the checker raises before probing
    with cloudformation_endpoint() as answers:
        first_run.on_event(event(answers[0]["url"]), Context(600), invoke=in_process(fresh_handler))
    [answer] = answers[1:]
    assert answer["Status"] == "FAILED" and answer["Data"] == {}
    assert answer["Reason"].startswith(f"the health checker in {HOME} cannot run: ParameterNotFound: ")
    assert "ParameterNotFound" in answer["Reason"] and "\n" not in answer["Reason"]
    assert availability() == []


def test_delete_answers_at_once_without_running_the_checker() -> None:
    def never(*_: object) -> tuple[dict[str, Any], str | None]:
        raise AssertionError("invoked on Delete")

    with cloudformation_endpoint() as answers:
        first_run.on_event(
            {**event(answers[0]["url"], "Delete"), "PhysicalResourceId": "first-run-x"}, Context(60), invoke=never
        )
    [answer] = answers[1:]
    assert (answer["Status"], answer["PhysicalResourceId"], answer["Data"]) == ("SUCCESS", "first-run-x", {})


def test_an_invoke_that_fails_or_hangs_is_one_line_not_a_hung_deploy() -> None:
    def denied(*_: object) -> tuple[dict[str, Any], str | None]:
        raise PermissionError("User is not authorized to perform: lambda:InvokeFunction\non checker")

    with cloudformation_endpoint() as answers:
        first_run.on_event(event(answers[0]["url"]), Context(60), invoke=denied)
    [answer] = answers[1:]
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == (
        "could not invoke the health checker checker: PermissionError: "
        "User is not authorized to perform: lambda:InvokeFunction on checker"
    )


def test_lambda_invoke_waits_for_the_checker_and_reads_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The boto3 edge moto cannot serve (it runs functions in Docker): the call and both answers."""
    client = botocore.session.get_session().create_client(
        "lambda",
        region_name=HOME,
        aws_access_key_id="x",
        aws_secret_access_key="x",  # noqa: S106  # a stub
    )
    stub = Stubber(client)
    body = json.dumps({"errorType": "SettingsError", "errorMessage": "CHECK_TARGETS is empty"}).encode()

    stub.add_response(
        "invoke",
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": StreamingBody(io.BytesIO(body), len(body))},
        {
            "FunctionName": "checker",
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(first_run.FIRST_RUN_EVENT).encode(),
        },
    )
    made: list[Any] = []
    monkeypatch.setattr(boto3, "client", lambda *a, **k: made.append(k["config"]) or client)
    with stub:
        with pytest.raises(
            first_run.FirstRunFailed,
            match=r"^the health checker in eu-west-1 cannot run: SettingsError: CHECK_TARGETS is empty$",
        ):
            first_run.first_run({"Function": "checker", "Location": "eu-west-1"}, first_run.lambda_invoke, 30)
        stub.assert_no_pending_responses()
    # One attempt: botocore's retry of a read timeout would run the checker twice.
    assert made[0].retries == {"total_max_attempts": 1, "mode": "standard"} and 29 < made[0].read_timeout <= 30


class FakeTime:
    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def probed(**found: str) -> tuple[dict[str, Any], None]:
    return {"probes": len(found), "failed": 0, "verdicts": {}, "probed": found}, None


def answer(invoke: Any, t: FakeTime, kind: str = "Create", **over: Any) -> dict[str, Any]:
    got: list[dict[str, Any]] = []
    e = {**event("https://cloudformation.example/response", kind), **over}
    first_run.on_event(
        e,
        Context(900),
        invoke=invoke,
        respond=lambda url, body: got.append(body),
        visible=over.pop("visible", lambda _: True),
        status_of=over.pop("status_of", lambda _: "UPDATE_IN_PROGRESS"),
        clock=t.clock,
        sleep=t.sleep,
    )
    [body] = got
    return body


HEARTBEAT = {"Namespace": contract.NAMESPACE, "MetricName": contract.AVAILABILITY, "Target": "hello"}


def test_the_home_run_answers_once_its_heartbeats_read_back_and_their_minute_is_over() -> None:
    """Whether the heartbeat's evaluation range ends with the open minute or the last complete
    one, and however long CloudWatch takes to show a new metric, the alarm created after the
    answer holds the first run's datapoint."""
    t = FakeTime(1_800_000_040.5)  # 40.5 s into a minute
    polls = iter([False, False, True])
    e = event("https://x")
    props = {**e["ResourceProperties"], "Heartbeats": json.dumps([HEARTBEAT])}
    body = answer(lambda *_: probed(hello="up"), t, ResourceProperties=props, visible=lambda hb: next(polls))
    assert body["Status"] == "SUCCESS" and body["Data"]["Summary"] == f"{HOME}: hello up"
    assert t.slept == [5, 5, 10.5] and t.now % 60 == 1  # read back after 10 s, then the minute ended
    # Never readable within the wait: the checkers did publish; the summary says what may follow.
    t = FakeTime(1_800_000_000.0)
    body = answer(lambda *_: probed(hello="up"), t, ResourceProperties=props, visible=lambda hb: False)
    assert body["Status"] == "SUCCESS" and body["Data"]["Summary"].endswith("the heartbeat may page once")
    assert sum(t.slept) <= first_run.VISIBLE_SECONDS
    # A remote checker's run (no heartbeats to read): no wait at all.
    t = FakeTime(1_800_000_040.5)
    assert answer(lambda *_: probed(hello="up"), t)["Status"] == "SUCCESS" and t.slept == []


def test_an_access_denial_while_iam_catches_up_is_tried_again_then_fails_with_one_line() -> None:
    calls = []

    def denied_twice(*_: object) -> tuple[dict[str, Any], str | None]:
        calls.append(1)
        if len(calls) <= 2:
            return {
                "errorType": "AccessDeniedException",
                "errorMessage": "not authorized to perform: ssm:GetParameter",
            }, "Unhandled"
        return probed(hello="up")

    t = FakeTime(1000.0)
    assert answer(denied_twice, t)["Status"] == "SUCCESS" and len(calls) == 3
    t = FakeTime(1000.0)
    body = answer(lambda *_: ({"errorType": "AccessDeniedException", "errorMessage": "no"}, "Unhandled"), t)
    assert (
        body["Status"] == "FAILED"
        and body["Reason"] == f"the health checker in {HOME} cannot run: AccessDeniedException: no"
    )
    assert first_run.ACCESS_RETRY_SECONDS <= sum(t.slept) < first_run.ACCESS_RETRY_SECONDS + 20
    # Any other error is the answer at once, whatever its payload looks like.
    t = FakeTime(1000.0)
    body = answer(lambda *_: ("Task timed out after 70.00 seconds", "Unhandled"), t)
    assert (body["Status"], t.slept) == ("FAILED", [])
    assert body["Reason"] == f"the health checker in {HOME} cannot run: Unhandled: Task timed out after 70.00 seconds"


def test_a_run_that_probed_nothing_is_tried_once_more_then_fails() -> None:
    runs = iter([probed(), probed(hello="down (refused)")])
    t = FakeTime(1000.0)
    body = answer(lambda *_: next(runs), t)
    assert body["Data"]["Summary"] == f"{HOME}: hello down (refused); the availability alarm pages if hello stays down"
    t = FakeTime(1000.0)
    body = answer(lambda *_: probed(), t)
    assert (body["Status"], body["Reason"]) == (
        "FAILED",
        f"the health checker in {HOME} ran but probed nothing before its deadline",
    )


def test_an_update_runs_the_checker_again_but_not_while_the_stack_rolls_back() -> None:
    calls = []

    def invoke(*_: object) -> tuple[dict[str, Any], None]:
        calls.append(1)
        return probed(hello="up")

    body = answer(invoke, FakeTime(1000.0), "Update", PhysicalResourceId="first-run-x")
    assert (body["Status"], body["PhysicalResourceId"], len(calls)) == ("SUCCESS", "first-run-x", 1)
    # On a rollback CloudFormation sends an Update with the old properties: a failed run then
    # would leave the stack UPDATE_ROLLBACK_FAILED.
    body = answer(
        invoke,
        FakeTime(1000.0),
        "Update",
        PhysicalResourceId="first-run-x",
        status_of=lambda _: "UPDATE_ROLLBACK_IN_PROGRESS",
    )
    assert (body["Status"], body["Data"], len(calls)) == (
        "SUCCESS",
        {"Summary": "not run: the stack is rolling back"},
        1,
    )
    # The stack's status unreadable: the run goes on, as on any Update.

    def unreadable(_: str) -> str:
        raise PermissionError("denied")

    assert answer(invoke, FakeTime(1000.0), "Update", status_of=unreadable)["Status"] == "SUCCESS" and len(calls) == 2
