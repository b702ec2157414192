"""`make drill` and `make drill-undo`, offline.

The sequencing of CloudWatch and ELBv2 calls through botocore's Stubber, with a fake clock that
moves only when the drill sleeps (so a 3-minute drill runs in milliseconds, and every wait is
seen to end); a moto server for what is stored and read back (SetAlarmState, DescribeAlarms,
ModifyListener, DescribeListeners) and for the real `python -m tools.drill` process stopped by
a signal. Moto evaluates no alarm and keeps no alarm history: what only AWS can show is what
the drill is for.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from cdk_app.config import MONITORING_STACK_NAME
from tests.conftest import ROOT, no_aws
from tools.drill import alarms, cli, limits, modes
from tools.drill import errors as drill_errors
from tools.drill import listener as drill_listener

T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
DATE = "Sat, 28 Nov 2026 12:00:00 GMT"  # T0 as AWS's Date header says it
COMPOSITE = "hello-service-down"
CHILD = "HelloWorldEks-MonitoringAvailabilityhello12345678-ABCDEF"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:HelloWorldEks-Alerts"
LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/hello/1/2"
TARGET_GROUP = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/hello/3"
FORWARD = [{"Type": "forward", "TargetGroupArn": TARGET_GROUP, "Order": 1}]
KEYS = {"aws_access_key_id": "x", "aws_secret_access_key": "x"}  # noqa: S105  # the Stubber sends nothing


class FakeClock(limits.Clock):
    def __init__(self, start: datetime = T0) -> None:
        self.t = start
        self.slept: list[float] = []
        self.on_sleep: Callable[[], None] | None = None

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += timedelta(seconds=seconds)
        if self.on_sleep:
            self.on_sleep()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def state(when: float, old: str, new: str, name: str = COMPOSITE) -> dict[str, Any]:
    return {
        "AlarmName": name,
        "Timestamp": at(when),
        "HistoryItemType": "StateUpdate",
        "HistorySummary": f"Alarm updated from {old} to {new}",
        "HistoryData": json.dumps({"oldState": {"stateValue": old}, "newState": {"stateValue": new}}),
    }


def executed(when: float, ok: bool = True, error: str = "") -> dict[str, Any]:
    """An Action item as CloudWatch writes it (wording: AWS Knowledge Center, aws-sdk-java#1723)."""
    summary = (
        f"Successfully executed action {TOPIC}"
        if ok
        else f'Failed to execute action {TOPIC}. Received error: "{error}"'
    )
    data = {"actionState": "Succeeded" if ok else "Failed", "notificationResource": TOPIC, "error": error or None}
    return {
        "AlarmName": COMPOSITE,
        "Timestamp": at(when),
        "HistoryItemType": "Action",
        "HistorySummary": summary,
        "HistoryData": json.dumps(data),
    }


def composite(value: str = "OK", updated: datetime = T0 - timedelta(days=1)) -> dict[str, Any]:
    return {
        "AlarmName": COMPOSITE,
        "StateValue": value,
        "AlarmRule": f'ALARM("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{CHILD}")',
        "AlarmActions": [TOPIC],
        "OKActions": [TOPIC],
        "StateUpdatedTimestamp": updated,
    }


def child(value: str = "OK", updated: datetime = T0 - timedelta(days=1)) -> dict[str, Any]:
    return {
        "AlarmName": CHILD,
        "StateValue": value,
        "Period": 10,
        "DatapointsToAlarm": 3,
        "EvaluationPeriods": 5,
        "StateUpdatedTimestamp": updated,
    }


ALARMS = alarms.Alarms(drill=child(), composite=composite())
SINCE = T0 - timedelta(seconds=1)


def history_params(name: str, kind: str) -> dict[str, Any]:
    # Without AlarmTypes, DescribeAlarmHistory returns metric alarms only (CloudWatch API
    # Reference): the composite's history would be empty.
    return {
        "AlarmName": name,
        "AlarmTypes": ["CompositeAlarm" if name == COMPOSITE else "MetricAlarm"],
        "HistoryItemType": kind,
        "StartDate": SINCE,
        "ScanBy": "TimestampAscending",
    }


def poll(
    stub: Stubber,
    *,
    composite_items: list[dict[str, Any]] | None = None,
    child_items: list[dict[str, Any]] | None = None,
    actions: list[dict[str, Any]] | None = None,
) -> None:
    """One poll as the drill makes it: DescribeAlarms; the history only when something changed."""
    changed = composite_items is not None
    stamp = at(0.5) if changed else T0 - timedelta(days=1)
    stub.add_response(
        "describe_alarms",
        {"MetricAlarms": [child(updated=stamp)], "CompositeAlarms": [composite(updated=stamp)]},
        {"AlarmNames": [COMPOSITE, CHILD], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]},
    )
    if not changed:
        return
    stub.add_response(
        "describe_alarm_history", {"AlarmHistoryItems": composite_items}, history_params(COMPOSITE, "StateUpdate")
    )
    stub.add_response(
        "describe_alarm_history", {"AlarmHistoryItems": child_items or []}, history_params(CHILD, "StateUpdate")
    )
    if any(json.loads(i["HistoryData"])["newState"]["stateValue"] == "ALARM" for i in composite_items or []):
        stub.add_response(
            "describe_alarm_history", {"AlarmHistoryItems": actions or []}, history_params(COMPOSITE, "Action")
        )


def client(service: str) -> Any:
    return boto3.client(service, region_name="eu-west-1", **KEYS)


def bounds(mode: str) -> limits.Bounds:
    return limits.bounds(mode, period=10, confirm=3, timeout=5, schedule=60)


def new_drill(cloudwatch: Any, mode: str, clock: FakeClock) -> tuple[modes.Drill, io.StringIO]:
    out = io.StringIO()
    return modes.Drill(cloudwatch, ALARMS, bounds(mode), clock, out=out), out


SET_STATE = {"ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {"date": DATE}}}
ALARM_AT_2 = [state(2, "OK", "ALARM")]
FULL_CYCLE = [state(2, "OK", "ALARM"), state(31, "ALARM", "OK")]
CHILD_CYCLE = [state(0.2, "OK", "ALARM", CHILD), state(30, "ALARM", "OK", CHILD)]


# --- alarm mode (SetAlarmState) ----------------------------------------------------------------


def test_alarm_mode_forces_the_child_never_the_composite_and_reports_each_time_within_its_bound(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloudwatch, clock = client("cloudwatch"), FakeClock()
    d, out = new_drill(cloudwatch, "alarm", clock)
    with Stubber(cloudwatch) as stub:
        stub.add_response("set_alarm_state", SET_STATE)
        poll(stub)  # nothing yet
        for _ in range(2):  # the ALARM, then its action
            poll(stub, composite_items=ALARM_AT_2, child_items=CHILD_CYCLE[:1], actions=[executed(3)])
        for _ in range(2):  # the OK, then its action
            poll(stub, composite_items=FULL_CYCLE, child_items=CHILD_CYCLE, actions=[executed(3), executed(32)])
        assert modes.drill_alarm_mode(d) == 0
        stub.assert_no_pending_responses()
    text = out.getvalue()
    assert f"forcing {CHILD} to ALARM" in text
    assert "to ALARM" in text and "2.0 s" in text and "MISSED" not in text
    assert "to the ALARM action" in text and "3.0 s" in text
    assert "to OK" in text and "31.0 s" in text
    assert f"ALARM action: Successfully executed action {TOPIC}" in text
    assert capsys.readouterr().err == ""


def test_the_drill_sets_only_the_child_alarm_and_says_it_is_a_drill() -> None:
    cloudwatch, clock = client("cloudwatch"), FakeClock()
    d, _ = new_drill(cloudwatch, "alarm", clock)
    calls: list[dict[str, Any]] = []
    cloudwatch.meta.events.register(
        "provide-client-params.monitoring.SetAlarmState", lambda params, **_: calls.append(params)
    )
    with Stubber(cloudwatch) as stub:
        stub.add_response("set_alarm_state", SET_STATE)
        for _ in range(2):
            poll(stub, composite_items=ALARM_AT_2, actions=[executed(3)])
        for _ in range(2):
            poll(stub, composite_items=FULL_CYCLE, actions=[executed(3), executed(32)])
        modes.drill_alarm_mode(d)
    [params] = calls
    assert params["AlarmName"] == CHILD != COMPOSITE
    assert params["StateValue"] == "ALARM" and "drill" in params["StateReason"].lower()


def test_a_failed_action_is_an_error_line_naming_what_aws_said_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    cloudwatch, clock = client("cloudwatch"), FakeClock()
    d, _ = new_drill(cloudwatch, "alarm", clock)
    kms = "null (Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException)"
    with Stubber(cloudwatch) as stub:
        stub.add_response("set_alarm_state", SET_STATE)
        for _ in range(2):
            poll(stub, composite_items=ALARM_AT_2, actions=[executed(3, ok=False, error=kms)])
        for _ in range(2):
            poll(stub, composite_items=FULL_CYCLE, actions=[executed(3, ok=False, error=kms), executed(32)])
        assert modes.drill_alarm_mode(d) == 1
    errors = capsys.readouterr().err.splitlines()
    [failed] = [e for e in errors if "failed" in e]
    assert failed.startswith("error: the ALARM action failed: Failed to execute action") and "AWSKMS" in failed
    assert all(e.startswith("error: ") for e in errors)


def test_a_composite_that_never_follows_ends_the_wait_at_its_bound_with_one_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloudwatch, clock = client("cloudwatch"), FakeClock()
    d, _ = new_drill(cloudwatch, "alarm", clock)
    give_up = bounds("alarm").to_action.seconds * 2
    with Stubber(cloudwatch) as stub:
        stub.add_response("set_alarm_state", SET_STATE)
        for _ in range(int(give_up / limits.POLL_SECONDS) + 1):
            poll(stub)
        assert modes.drill_alarm_mode(d) == 1
        stub.assert_no_pending_responses()
    assert sum(clock.slept) == pytest.approx(give_up)
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: to ALARM: not seen within the wait")


def test_a_late_alarm_is_reported_as_missed_next_to_its_bound(capsys: pytest.CaptureFixture[str]) -> None:
    cloudwatch, clock = client("cloudwatch"), FakeClock()
    d, out = new_drill(cloudwatch, "alarm", clock)
    late = [state(40, "OK", "ALARM"), state(60, "ALARM", "OK")]
    with Stubber(cloudwatch) as stub:
        stub.add_response("set_alarm_state", SET_STATE)
        for _ in range(4):
            poll(stub, composite_items=late, actions=[executed(41), executed(61)])
        assert modes.drill_alarm_mode(d) == 1
    assert "MISSED" in out.getvalue()
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: to ALARM: 40.0 s, over the 20 s bound")


# --- outage mode (ModifyListener) ------------------------------------------------------------


LISTENER_DESCRIPTION = {"ListenerArn": LISTENER, "Port": 80, "Protocol": "HTTP", "DefaultActions": FORWARD}


def listener_is(stub: Stubber, actions: list[dict[str, Any]]) -> None:
    stub.add_response(
        "describe_listeners",
        {"Listeners": [{**LISTENER_DESCRIPTION, "DefaultActions": actions}]},
        {"ListenerArns": [LISTENER]},
    )


def expect_outage(stub: Stubber) -> None:
    stub.add_response(
        "modify_listener",
        {"Listeners": [], "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {"date": DATE}}},
        {"ListenerArn": LISTENER, "DefaultActions": [drill_listener.FIXED_503]},
    )


def expect_restore(stub: Stubber, date: str | None = None) -> None:
    listener_is(stub, [drill_listener.FIXED_503])
    metadata = {"ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {"date": date}}} if date else {}
    stub.add_response(
        "modify_listener", {"Listeners": [], **metadata}, {"ListenerArn": LISTENER, "DefaultActions": FORWARD}
    )
    listener_is(stub, FORWARD)


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[tuple[modes.Drill, Any, Any, FakeClock, Path, io.StringIO]]:
    cloudwatch, elbv2, clock = client("cloudwatch"), client("elbv2"), FakeClock()
    out = io.StringIO()
    d = modes.Drill(cloudwatch, ALARMS, bounds("outage"), clock, out=out)
    yield d, cloudwatch, elbv2, clock, tmp_path / ".drill-undo.json", out


def run_outage(d: modes.Drill, elbv2: Any, undo: Path, max_seconds: float = 180) -> int:
    return modes.drill_outage_mode(d, elbv2, dict(LISTENER_DESCRIPTION), undo, max_seconds, "eu-west-1")


def test_outage_mode_saves_first_answers_503_restores_and_removes_the_undo_file(outage, capsys) -> None:
    d, cloudwatch, elbv2, clock, undo, out = outage
    during: list[bool] = []
    clock.on_sleep = lambda: during.append(undo.exists())
    alarm = [state(38, "OK", "ALARM")]
    cycle = [state(38, "OK", "ALARM"), state(80, "ALARM", "OK")]
    child_alarm = [state(36, "OK", "ALARM", CHILD)]
    child_cycle = [*child_alarm, state(75, "ALARM", "OK", CHILD)]
    with Stubber(cloudwatch) as cw, Stubber(elbv2) as elb:
        expect_outage(elb)
        for _ in range(8):  # 0..35 s: the checker has not yet confirmed
            poll(cw)
        for _ in range(2):
            poll(cw, composite_items=alarm, child_items=child_alarm, actions=[executed(39)])
        expect_restore(elb, date="Sat, 28 Nov 2026 12:00:45 GMT")  # AWS's clock: 5 s after ours
        for _ in range(2):
            poll(cw, composite_items=cycle, child_items=child_cycle, actions=[executed(39), executed(81)])
        assert run_outage(d, elbv2, undo) == 0
        cw.assert_no_pending_responses()
        elb.assert_no_pending_responses()
    assert during and all(during[:8])  # the undo file existed for as long as the outage lasted
    assert not undo.exists()
    text = out.getvalue()
    assert "availability alarm to ALARM (real probes)" in text and "36.0 s" in text
    # after the restore, on AWS's clock: OK at 80 s, restored at 45 s
    assert re.search(r"to OK after the restore\s+35\.0 s", text), text
    assert re.search(r"availability alarm to OK after the restore\s+30\.0 s", text), text
    assert "restored listener" in text
    assert capsys.readouterr().err == ""


def test_the_undo_file_holds_the_original_actions_while_the_outage_lasts(outage) -> None:
    d, cloudwatch, elbv2, clock, undo, _ = outage
    saved: list[dict[str, Any]] = []

    def look() -> None:
        saved.append(json.loads(undo.read_text()))
        raise KeyboardInterrupt

    clock.on_sleep = look
    with Stubber(cloudwatch) as cw, Stubber(elbv2) as elb:
        expect_outage(elb)
        poll(cw)
        expect_restore(elb)
        with pytest.raises(KeyboardInterrupt):
            run_outage(d, elbv2, undo)
    [record] = saved
    assert record["listener_arn"] == LISTENER and record["default_actions"] == FORWARD
    assert record["region"] == "eu-west-1"


def test_ctrl_c_during_the_wait_restores_the_listener(outage) -> None:
    d, cloudwatch, elbv2, clock, undo, _ = outage

    def interrupt() -> None:
        raise KeyboardInterrupt

    clock.on_sleep = interrupt
    with Stubber(cloudwatch) as cw, Stubber(elbv2) as elb:
        expect_outage(elb)
        poll(cw)
        expect_restore(elb)
        with pytest.raises(KeyboardInterrupt):
            run_outage(d, elbv2, undo)
        elb.assert_no_pending_responses()
    assert not undo.exists()


def test_an_aws_error_during_the_wait_restores_the_listener(outage) -> None:
    d, cloudwatch, elbv2, _, undo, _ = outage
    with Stubber(cloudwatch) as cw, Stubber(elbv2) as elb:
        expect_outage(elb)
        cw.add_client_error("describe_alarms", "Throttling", "Rate exceeded")
        expect_restore(elb)
        with pytest.raises(ClientError):
            run_outage(d, elbv2, undo)
        elb.assert_no_pending_responses()
    assert not undo.exists()


def test_a_bug_during_the_wait_restores_the_listener(outage, monkeypatch: pytest.MonkeyPatch) -> None:
    d, cloudwatch, elbv2, _, undo, _ = outage

    def broken(self: alarms.Watch) -> alarms.Seen:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(alarms.Watch, "poll", broken)
    with Stubber(elbv2) as elb:
        expect_outage(elb)
        expect_restore(elb)
        with pytest.raises(ZeroDivisionError):
            run_outage(d, elbv2, undo)
        elb.assert_no_pending_responses()
    assert not undo.exists()


def test_max_seconds_caps_the_outage_when_no_alarm_comes(outage, capsys) -> None:
    d, cloudwatch, elbv2, clock, undo, out = outage
    with Stubber(cloudwatch) as cw, Stubber(elbv2) as elb:
        expect_outage(elb)
        for _ in range(int(20 / limits.POLL_SECONDS) + 1):
            poll(cw)
        expect_restore(elb)
        assert run_outage(d, elbv2, undo, max_seconds=20) == 1
        cw.assert_no_pending_responses()
        elb.assert_no_pending_responses()
    assert sum(clock.slept) == pytest.approx(20)  # restored at the cap, not later
    assert "--max-seconds 20 reached: restoring" in out.getvalue()
    assert not undo.exists()
    errors = capsys.readouterr().err.splitlines()
    assert errors and all(e.startswith("error: ") for e in errors)
    assert any("to ALARM: not seen" in e for e in errors)


def test_a_restore_that_fails_keeps_the_undo_file_and_says_make_drill_undo(outage, capsys) -> None:
    d, cloudwatch, elbv2, clock, undo, _ = outage

    def interrupt() -> None:
        raise KeyboardInterrupt

    clock.on_sleep = interrupt
    with Stubber(cloudwatch) as cw, Stubber(elbv2) as elb:
        expect_outage(elb)
        poll(cw)
        listener_is(elb, [drill_listener.FIXED_503])
        elb.add_client_error("modify_listener", "AccessDenied", "not authorized")
        with pytest.raises(KeyboardInterrupt):
            run_outage(d, elbv2, undo)
    assert undo.exists()
    [line] = capsys.readouterr().err.splitlines()
    assert "make drill-undo" in line and "ModifyListener" in line


def test_an_existing_undo_file_is_never_overwritten_and_nothing_changes(outage) -> None:
    d, _, elbv2, _, undo, _ = outage
    undo.write_text('{"listener_arn": "the only copy"}')
    with Stubber(elbv2), pytest.raises(drill_errors.DrillError, match="make drill-undo"):
        run_outage(d, elbv2, undo)  # nothing is queued: any call to ELB would fail the test
    assert "the only copy" in undo.read_text()


def test_a_listener_already_answering_the_drill_503_is_refused(outage) -> None:
    d, _, elbv2, _, undo, _ = outage
    with pytest.raises(drill_errors.DrillError, match="drill-undo"):
        modes.drill_outage_mode(
            d, elbv2, {**LISTENER_DESCRIPTION, "DefaultActions": [drill_listener.FIXED_503]}, undo, 180, "eu-west-1"
        )
    assert not undo.exists()


# --- bounds, history items, names --------------------------------------------------------------


def test_a_composite_with_its_actions_disabled_is_refused_before_anything_changes() -> None:
    [problem] = alarms.ready(alarms.Alarms(drill=child(), composite={**composite(), "ActionsEnabled": False}))
    assert "actions disabled" in problem


def test_a_signal_during_the_restore_waits_for_it_then_stops_the_drill(outage) -> None:
    d, cloudwatch, elbv2, clock, undo, _ = outage
    alarm = [state(38, "OK", "ALARM")]

    def sigterm_during_restore(params: dict[str, Any], **_: Any) -> None:
        if params["DefaultActions"] == FORWARD:
            os.kill(os.getpid(), signal.SIGTERM)

    elbv2.meta.events.register("provide-client-params.elastic-load-balancing-v2.ModifyListener", sigterm_during_restore)
    with Stubber(cloudwatch) as cw, Stubber(elbv2) as elb:
        expect_outage(elb)
        for _ in range(2):
            poll(cw, composite_items=alarm, actions=[executed(39)])
        expect_restore(elb)
        with pytest.raises(drill_errors.Stopped):
            run_outage(d, elbv2, undo)
        elb.assert_no_pending_responses()  # the restore was not cut short
    assert not undo.exists()


@pytest.mark.parametrize(
    ("subscriptions", "warned"),
    [
        ([{"SubscriptionArn": f"{TOPIC}:1", "Protocol": "email"}], None),
        ([{"SubscriptionArn": "PendingConfirmation", "Protocol": "email"}], "is confirmed"),
        ([], "has no subscription"),
    ],
)
def test_a_topic_nobody_confirmed_is_a_warning_before_the_drill(
    subscriptions: list[dict[str, str]], warned: str | None
) -> None:
    sns = client("sns")
    with Stubber(sns) as stub:
        stub.add_response("list_subscriptions_by_topic", {"Subscriptions": subscriptions}, {"TopicArn": TOPIC})
        warnings = alarms.subscription_warnings(sns, ALARMS)
    if warned is None:
        assert warnings == []
    else:
        [warning] = warnings
        assert warned in warning and TOPIC in warning


def test_subscriptions_it_may_not_read_are_a_warning_not_a_failure() -> None:
    sns = client("sns")
    with Stubber(sns) as stub:
        stub.add_client_error("list_subscriptions_by_topic", "AuthorizationError", "not authorized")
        [warning] = alarms.subscription_warnings(sns, ALARMS)
    assert warning.startswith(f"cannot read the subscriptions of {TOPIC}")


def test_the_bounds_are_the_readmes_plus_stated_allowances() -> None:
    alarm, outage = bounds("alarm"), bounds("outage")
    # alarm mode: the composite follows its child; the child returns on the next batch.
    assert alarm.to_alarm.seconds == 10 + limits.SLACK_SECONDS
    assert alarm.to_ok.seconds == 60 + 10 + limits.SLACK_SECONDS
    # outage: docs/alarms.md's 35 s + one period + the 10 s evaluation frequency + slack.
    assert outage.drill_alarm is not None and outage.drill_ok is not None
    assert outage.drill_alarm.seconds == 35 + 10 + 10 + limits.SLACK_SECONDS
    assert "35 s detection" in outage.drill_alarm.why
    assert outage.drill_ok.seconds == 35 + 10 + 10 + limits.SLACK_SECONDS
    assert outage.to_ok.seconds >= limits.FAST_BURN_SHORT_WINDOW
    # a one-minute period is evaluated every minute
    slow = limits.bounds("outage", period=60, confirm=2, timeout=10, schedule=60)
    assert slow.drill_alarm is not None and slow.drill_alarm.seconds == 2 * 60 + 10 + 60 + 60 + limits.SLACK_SECONDS


@pytest.mark.parametrize(
    ("item", "succeeded"),
    [
        (executed(1), True),
        (executed(1, ok=False, error="KMS"), False),
        ({**executed(1), "HistoryData": "not json"}, True),  # the summary alone says it
        ({**executed(1, ok=False), "HistoryData": "{}"}, False),
        ({**executed(1), "HistorySummary": "Queued action", "HistoryData": "{}"}, None),
    ],
)
def test_an_action_item_is_read_from_its_data_or_its_summary(item: dict[str, Any], succeeded: bool | None) -> None:
    assert alarms.action(item).succeeded is succeeded


def test_the_children_of_a_rule_are_read_by_arn_or_by_name_in_order() -> None:
    rule = (
        'ALARM("arn:aws:cloudwatch:eu-west-1:1:alarm:A-Availabilityhello1-X") OR '
        'ALARM(B-Latencyhello) OR (ALARM("arn:aws:cloudwatch:eu-west-1:1:alarm:hello-FastBurn"))'
    )
    assert alarms.children(rule) == ["A-Availabilityhello1-X", "B-Latencyhello", "hello-FastBurn"]


def test_in_the_synthesized_stack_the_first_availability_child_of_service_down_is_the_default_targets() -> None:
    from tests.infra import default_template, render, resources

    template = default_template()
    [service_down] = [
        r
        for r in resources(template, "AWS::CloudWatch::CompositeAlarm").values()
        if r["Properties"].get("AlarmName") == "hello-service-down"
    ]
    rule = render(service_down["Properties"]["AlarmRule"])
    first = next(c for c in alarms.children(rule) if "Availability" in c)
    assert "Availabilityhello" in first  # the logical id CloudFormation puts in the alarm's name


def test_a_custom_domain_without_a_load_balancer_output_is_one_line() -> None:
    with pytest.raises(drill_errors.DrillError, match=r"^hello\.example\.com is a custom domain .*LoadBalancerArn"):
        drill_listener.find_listener(client("elbv2"), {"HelloUrl": "https://hello.example.com/hello"}, "eu-west-1")


def test_the_listener_is_found_by_the_urls_host_and_port() -> None:
    elbv2 = client("elbv2")
    host = "hello-123.eu-west-1.elb.amazonaws.com"
    lb = "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/hello/1"
    with Stubber(elbv2) as stub:
        stub.add_response(
            "describe_load_balancers",
            {"LoadBalancers": [{"LoadBalancerArn": "other", "DNSName": "x"}, {"LoadBalancerArn": lb, "DNSName": host}]},
        )
        stub.add_response(
            "describe_listeners",
            {"Listeners": [{**LISTENER_DESCRIPTION, "Port": 443}, LISTENER_DESCRIPTION]},
            {"LoadBalancerArn": lb},
        )
        assert drill_listener.find_listener(elbv2, {"HelloUrl": f"http://{host}/hello"}, "eu-west-1")["Port"] == 80


# --- against a moto server: what is stored and read back -------------------------------------


def moto_backend(region: str = "us-east-1") -> Any:
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends["123456789012"][region]


def deployed_alarms(region: str = "us-east-1", composite_state: str = "OK") -> None:
    """The metric alarm through the API; the composite straight into moto's store (moto has no
    PutCompositeAlarm), with a rule that names its child by ARN as the CDK writes it."""
    cw = boto3.client("cloudwatch", region_name=region)
    cw.put_metric_alarm(
        AlarmName=CHILD,
        Namespace="HelloWorld/HealthCheck",
        MetricName="Availability",
        Dimensions=[{"Name": "Target", "Value": "hello"}],
        Statistic="Minimum",
        Period=10,
        EvaluationPeriods=5,
        DatapointsToAlarm=3,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
    )
    moto_backend(region).put_metric_alarm(
        name=COMPOSITE,
        namespace="",
        metric_name="",
        comparison_operator="",
        evaluation_periods=0,
        period=0,
        threshold=0,
        statistic="",
        description="",
        dimensions=[],
        alarm_actions=[TOPIC],
        ok_actions=[TOPIC],
        rule=(
            f'ALARM("arn:aws:cloudwatch:{region}:123456789012:alarm:HelloWorldEks-MonitoringLatencyhello1-X") OR '
            f'ALARM("arn:aws:cloudwatch:{region}:123456789012:alarm:{CHILD}")'
        ),
    )
    if composite_state != "OK":
        moto_backend(region).set_alarm_state(COMPOSITE, "a real outage", None, composite_state)
    for name in (CHILD, COMPOSITE):  # deployed long ago: only what the drill does is news
        moto_backend(region).alarms[name].state_updated_timestamp -= timedelta(days=1)


@pytest.fixture
def clean_moto(aws_env: str) -> Iterator[str]:
    from moto.core.models import default_user_config  # noqa: F401  # moto is importable
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    yield aws_env
    moto_api_backend.reset()


def test_without_outputs_naming_them_the_alarms_are_found_from_the_composites_rule(clean_moto: str) -> None:
    deployed_alarms()
    found = alarms.find_alarms(boto3.client("cloudwatch"), {}, "hello")
    assert found.composite["AlarmName"] == COMPOSITE
    assert found.drill["AlarmName"] == CHILD  # the availability child, not the latency one before it
    assert alarms.ready(found) == []


def test_a_composite_already_in_alarm_stops_the_drill_before_anything_changes(
    clean_moto: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed_alarms(composite_state="ALARM")
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text(json.dumps({"HelloWorldEks": {"HelloUrl": "http://x/hello"}}))
    assert cli.main(["--outputs", str(outputs)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {COMPOSITE} is ALARM, not OK")
    assert boto3.client("cloudwatch").describe_alarms(AlarmNames=[CHILD])["MetricAlarms"][0]["StateValue"] == "OK"


def test_set_alarm_state_reaches_the_child_and_a_missing_history_api_is_one_line(
    clean_moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against moto the forced state is stored and read back; moto has no DescribeAlarmHistory,
    which the drill reports in one line (exit 2), with a note that the child comes back by itself."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    deployed_alarms()
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text(json.dumps({"HelloWorldEks": {"DrillAlarmName": CHILD, "ServiceDownAlarmName": COMPOSITE}}))
    assert cli.main(["--outputs", str(outputs)]) == 2
    [stored] = boto3.client("cloudwatch").describe_alarms(AlarmNames=[CHILD])["MetricAlarms"]
    assert stored["StateValue"] == "ALARM" and "drill" in stored["StateReason"].lower()
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("error: AWS:")


def test_the_name_prefix_comes_from_context_like_the_cdks(clean_moto: str, tmp_path: Path, capsys) -> None:
    deployed_alarms()  # hello-service-down exists; other-service-down does not
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text(json.dumps({"HelloWorldEks": {"HelloUrl": "http://x/hello"}}))
    assert cli.main(["--outputs", str(outputs), "-c", "namePrefix=other"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: no composite alarm other-service-down")
    assert cli.main(["--outputs", str(outputs), "-c", "nodeCount=0"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: context key 'nodeCount'")


def test_no_stack_is_one_line_and_exit_2(clean_moto: str, tmp_path: Path, capsys) -> None:
    assert cli.main(["--outputs", str(tmp_path / "absent.json"), "--region", "sa-east-1"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert (
        line.startswith(f"error: no stack {MONITORING_STACK_NAME} in sa-east-1") and "make drill ARGS='--region" in line
    )


def test_the_outputs_of_a_three_region_deploy_are_read(
    clean_moto: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """cdk-outputs.json of a deploy with checkerRegions: the health stack and each checker stack
    have a FirstRun output of their own (it read as one output with two values)."""
    deployed_alarms(composite_state="ALARM")
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "HelloWorldEks": {"HelloUrl": "http://x/hello"},
                MONITORING_STACK_NAME: {"DrillAlarmName": CHILD, "FirstRun": "us-east-1: hello up"},
                "HelloWorldChecker-eu-west-1": {"FirstRun": "eu-west-1: hello up"},
                "HelloWorldChecker-ap-southeast-2": {"FirstRun": "ap-southeast-2: hello up"},
            }
        )
    )
    assert cli.main(["--outputs", str(outputs)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {COMPOSITE} is ALARM, not OK"), line  # past the outputs, at the alarms


def moto_listener(region: str = "us-east-1") -> tuple[str, str, list[dict[str, Any]]]:
    """A load balancer with an HTTP listener forwarding to a target group: (DNS name, listener, actions)."""
    ec2, elb = boto3.client("ec2", region_name=region), boto3.client("elbv2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{z}")["Subnet"]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    lb = elb.create_load_balancer(Name="hello", Subnets=subnets)["LoadBalancers"][0]
    tg = elb.create_target_group(Name="hello", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")
    actions = [{"Type": "forward", "TargetGroupArn": tg["TargetGroups"][0]["TargetGroupArn"]}]
    listener = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=actions
    )["Listeners"][0]
    return lb["DNSName"], listener["ListenerArn"], listener["DefaultActions"]


def actions_of(listener: str) -> list[dict[str, Any]]:
    return boto3.client("elbv2").describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"]


def test_drill_undo_restores_the_saved_actions_and_removes_the_file(clean_moto: str, tmp_path: Path, capsys) -> None:
    _, listener, original = moto_listener()
    boto3.client("elbv2").modify_listener(ListenerArn=listener, DefaultActions=[drill_listener.FIXED_503])
    undo = tmp_path / ".drill-undo.json"
    undo.write_text(json.dumps({"listener_arn": listener, "region": "us-east-1", "default_actions": original}))
    assert cli.main(["--undo", "--undo-file", str(undo)]) == 0
    assert actions_of(listener) == original
    assert not undo.exists()
    assert f"restored: listener {listener}" in capsys.readouterr().out


def test_drill_undo_that_cannot_make_the_listener_stick_is_one_line_and_keeps_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """AWS accepts the ModifyListener but the listener still answers 503 (say, someone else's
    automation puts it back): the file stays, for another try."""
    elbv2 = client("elbv2")
    undo = tmp_path / ".drill-undo.json"
    undo.write_text(json.dumps({"listener_arn": LISTENER, "default_actions": FORWARD}))
    monkeypatch.setattr(boto3.Session, "client", lambda self, *a, **k: elbv2)
    monkeypatch.setattr(boto3.Session, "get_credentials", lambda self: object())
    with Stubber(elbv2) as stub:
        listener_is(stub, [drill_listener.FIXED_503])
        stub.add_response("modify_listener", {"Listeners": []}, {"ListenerArn": LISTENER, "DefaultActions": FORWARD})
        listener_is(stub, [drill_listener.FIXED_503])
        assert cli.main(["--undo", "--undo-file", str(undo)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: RuntimeError: listener") and "saved actions" in line
    assert undo.exists()


def test_drill_undo_without_a_file_changes_nothing_and_says_why(clean_moto: str, tmp_path: Path, capsys) -> None:
    _, listener, _ = moto_listener()
    boto3.client("elbv2").modify_listener(ListenerArn=listener, DefaultActions=[drill_listener.FIXED_503])
    assert cli.main(["--undo", "--undo-file", str(tmp_path / "absent.json")]) == 0
    assert actions_of(listener) == [drill_listener.FIXED_503]
    assert capsys.readouterr().out.startswith("nothing to undo: no ")


def test_the_listener_is_found_in_moto_by_the_load_balancers_dns_name(clean_moto: str) -> None:
    dns, listener, _ = moto_listener()
    found = drill_listener.find_listener(boto3.client("elbv2"), {"HelloUrl": f"http://{dns}/hello"}, "us-east-1")
    assert found["ListenerArn"] == listener


# --- the real process ----------------------------------------------------------------------------


def run_drill(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.drill", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_without_a_region_the_drill_stops_with_one_line(tmp_path: Path) -> None:
    done = run_drill(no_aws(), "--outputs", str(tmp_path / "absent.json"))
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: no AWS region") and "--region" in line


def test_without_credentials_the_drill_stops_with_one_line(tmp_path: Path) -> None:
    done = run_drill(no_aws(AWS_DEFAULT_REGION="eu-west-1"), "--outputs", str(tmp_path / "absent.json"))
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: no AWS credentials")


def test_drill_undo_without_credentials_but_with_a_file_is_one_line(tmp_path: Path) -> None:
    undo = tmp_path / ".drill-undo.json"
    undo.write_text(json.dumps({"listener_arn": LISTENER, "default_actions": FORWARD}))
    done = run_drill(no_aws(), "--undo", "--undo-file", str(undo))
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: no AWS credentials")
    assert undo.exists()


def test_importing_the_drill_calls_no_aws() -> None:
    code = (
        "import botocore.endpoint\n"
        "def boom(*a, **k): raise SystemExit('an AWS call at import time')\n"
        "botocore.endpoint.Endpoint._send = boom\n"
        "import tools.drill, tools.preflight, tools.status\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=no_aws(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("bad", [["--mode", "chaos"], ["--max-seconds", "0"], ["--frobnicate"]])
def test_a_bad_argument_is_a_usage_error(bad: list[str]) -> None:
    done = run_drill(no_aws(), *bad)
    assert done.returncode == 2 and "usage:" in done.stderr and "Traceback" not in done.stderr


def start_outage_process(moto: str, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str, Path]:
    dns, listener, _ = moto_listener()
    deployed_alarms()
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "HelloWorldEks": {"HelloUrl": f"http://{dns}/hello"},
                MONITORING_STACK_NAME: {"DrillAlarmName": CHILD, "ServiceDownAlarmName": COMPOSITE},
            }
        )
    )
    undo = tmp_path / ".drill-undo.json"
    env = {
        **no_aws(),
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.drill",
            "--mode",
            "outage",
            "--outputs",
            str(outputs),
            "--undo-file",
            str(undo),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, listener, undo


def wait_for_outage(proc: subprocess.Popen[str], listener: str, undo: Path) -> None:
    deadline = time.monotonic() + 30
    while not (undo.exists() and actions_of(listener) == [drill_listener.FIXED_503]):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the drill never started its outage"
        time.sleep(0.1)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_signal_to_the_real_process_restores_the_listener(
    clean_moto: str, tmp_path: Path, signum: int, code: int
) -> None:
    proc, listener, undo = start_outage_process(clean_moto, tmp_path)
    try:
        wait_for_outage(proc, listener, undo)
        original = json.loads(undo.read_text())["default_actions"]
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert actions_of(listener) == original
    assert not undo.exists()
    assert "restored listener" in out and "Traceback" not in err


def test_the_real_process_restores_at_max_seconds_and_exits_1(clean_moto: str, tmp_path: Path) -> None:
    proc, listener, undo = start_outage_process(clean_moto, tmp_path, "--max-seconds", "2")
    try:
        wait_for_outage(proc, listener, undo)
        started = time.monotonic()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - started < 10
    assert proc.returncode == 1, err
    assert actions_of(listener)[0]["Type"] == "forward"
    assert not undo.exists()
    assert "--max-seconds 2 reached" in out
    assert "Traceback" not in err and err.splitlines()[0].startswith("error: to ALARM: not seen")


# --- the Makefile ---------------------------------------------------------------------------------


def make_n(*args: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("ARGS", "CONTEXT", "MODE", "MAKEFLAGS")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_drill_is_the_safe_mode_unless_told_outage() -> None:
    assert "-m tools.drill --mode alarm" in make_n("drill")
    assert "-m tools.drill --mode outage -c namePrefix=x --max-seconds 60" in make_n(
        "drill", "MODE=outage", "CONTEXT=-c namePrefix=x", "ARGS=--max-seconds 60"
    )
    assert "-m tools.drill --undo" in make_n("drill-undo")


def test_the_undo_file_is_ignored_by_git() -> None:
    assert ".drill-undo.json" in (ROOT / ".gitignore").read_text().split()


def test_the_cap_holds_on_aws_clock_when_this_machine_is_behind(tmp_path: Path, capsys) -> None:
    """The cap is AWS's start plus --max-seconds: with this machine 100 s behind AWS it once kept
    the 503 up for 120 s instead of 20."""
    cloudwatch, elbv2, clock = client("cloudwatch"), client("elbv2"), FakeClock(T0 - timedelta(seconds=100))
    d = modes.Drill(cloudwatch, ALARMS, bounds("outage"), clock, out=io.StringIO())
    with Stubber(cloudwatch) as cw, Stubber(elbv2) as elb:
        expect_outage(elb)  # AWS's Date header: T0
        for _ in range(int(20 / limits.POLL_SECONDS) + 1):
            poll(cw)
        expect_restore(elb)
        run_outage(d, elbv2, tmp_path / ".drill-undo.json", max_seconds=20)
    assert sum(clock.slept) == pytest.approx(20)
    capsys.readouterr()


def test_drill_undo_never_overwrites_a_listener_changed_since_the_drill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone fixed the listener, or a deploy pointed it at a new target group: the saved copy is stale."""
    elbv2 = client("elbv2")
    undo = tmp_path / ".drill-undo.json"
    undo.write_text(json.dumps({"listener_arn": LISTENER, "default_actions": FORWARD}))
    monkeypatch.setattr(boto3.Session, "client", lambda self, *a, **k: elbv2)
    monkeypatch.setattr(boto3.Session, "get_credentials", lambda self: object())
    newer = [{"Type": "forward", "TargetGroupArn": TARGET_GROUP.replace("hello/3", "hello/4"), "Order": 1}]
    with Stubber(elbv2) as stub:
        listener_is(stub, newer)  # and no ModifyListener may follow
        assert cli.main(["--undo", "--undo-file", str(undo)]) == 2
        stub.assert_no_pending_responses()
    [line] = capsys.readouterr().err.splitlines()
    assert "no longer answers the drill's 503" in line and "not overwriting it" in line
    assert undo.exists()
