"""`make drill`: prove, on the deployed stack, that an outage pages someone, and time it.

Two modes:

- `alarm` (the default, safe in production): SetAlarmState puts the default target's
  availability alarm into ALARM. CloudWatch documents this as temporary: a metric alarm
  returns to its real state at its next evaluation. The composite `<prefix>-service-down` must
  follow, notify, and return to OK by itself. The composite is never set directly: AWS does not
  promise a composite returns to its real state. Users, metrics and the error budget are untouched.
- `outage`: the load balancer's listener answers a fixed 503 for a bounded time (ModifyListener),
  so the checker's real probes fail. The original default actions are saved to an undo file
  first, and restored on every exit (normal end, error, Ctrl-C, SIGTERM, SIGHUP, the
  `--max-seconds` cap); `make drill-undo` restores from the file if this process could not.

Both wait for the composite to reach ALARM, confirm from its alarm history that each alarm
action executed (history item "Successfully executed action ..." vs "Failed to execute action
..."), wait for OK, and print the times next to the bounds. Exit 0 when every bound held and
every action succeeded, 1 otherwise, 2 for a usage or environment error (one line each, never a
traceback). Nothing here calls AWS at import time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from cdk_app.alarm_plan import DEFAULT_TARGET, FAST_BURN
from checker_lambda import timing
from checker_lambda.aws_env import NO_CREDENTIALS, session_region
from tools.outputs import OutputsError, from_cloudformation, from_file, region_of

ROOT = Path(__file__).resolve().parent.parent
UNDO_FILE = ROOT / ".drill-undo.json"
ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]

MAX_SECONDS = 180.0  # default cap on an outage
POLL_SECONDS = 5.0
# CloudWatch's evaluation frequency (CloudWatch User Guide, "Using Amazon CloudWatch alarms",
# AlarmThatSendsEmail.html): "If the alarm period is 10 seconds or 30 seconds, the alarm is
# evaluated every 10 seconds"; for a period of a minute or more, every minute.
HIGH_RESOLUTION_EVALUATION = 10.0
STANDARD_EVALUATION = 60.0
# Ours, not AWS's: metric data becoming readable to the alarm and a composite following its
# child take seconds, and AWS documents no figure for either.
SLACK_SECONDS = 10.0
# Ours, not AWS's: from the composite's transition to its action's history item.
ACTION_SECONDS = 30.0
# The fast-burn pair's short window: a real outage can trip it, and it holds the composite in
# ALARM until its window has no failure.
FAST_BURN_SHORT_WINDOW = float(FAST_BURN[1])
DRILL_BODY = "Planned outage drill (make drill MODE=outage): back within minutes."


class DrillError(Exception):
    """A usage or environment problem, one line for the user: exit 2."""


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived: unwind (restoring on the way) and exit 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# --- time ------------------------------------------------------------------------------------


class Clock:
    """Wall time and sleeping; tests pass a fake one that only moves when slept."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def server_time(response: dict[str, Any], clock: Clock) -> datetime:
    """When AWS did it, by AWS's clock (the response's Date header, whole seconds, so at most 1 s
    early): the alarm history's timestamps are on that clock, not this machine's."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if date:
        with contextlib.suppress(TypeError, ValueError):
            return parsedate_to_datetime(date).astimezone(UTC)
    return clock.now()


# --- where the names come from ---------------------------------------------------------------


_CHILD = re.compile(r'\b(?:ALARM|OK|INSUFFICIENT_DATA)\(\s*"?([^")]+?)"?\s*\)')


def children(rule: str) -> list[str]:
    """The alarm names a composite's AlarmRule refers to, in order (by ARN or by name)."""
    return [ref.split(":alarm:", 1)[-1] for ref in _CHILD.findall(rule)]


@dataclass(frozen=True)
class Alarms:
    drill: dict[str, Any]  # the metric alarm the drill forces (or the outage trips)
    composite: dict[str, Any]  # <prefix>-service-down

    @property
    def names(self) -> list[str]:
        return [self.composite["AlarmName"], self.drill["AlarmName"]]


def find_alarms(cloudwatch: Any, outputs: dict[str, str], name_prefix: str) -> Alarms:
    """The composite and the drill alarm: named by the stack's outputs when it has them, else
    the composite `<prefix>-service-down` and the first child of its rule that is the default
    target's availability alarm."""
    composite_name = outputs.get("ServiceDownAlarmName") or f"{name_prefix}-service-down"
    drill_name = outputs.get("DrillAlarmName")
    if not drill_name:
        found = cloudwatch.describe_alarms(AlarmNames=[composite_name], AlarmTypes=["CompositeAlarm"])
        [composite] = found.get("CompositeAlarms") or [None]
        if composite is None:
            raise DrillError(f"no composite alarm {composite_name}: is the stack deployed, with this namePrefix?")
        drill_name = next(
            (n for n in children(composite.get("AlarmRule", "")) if "Availability" in n and DEFAULT_TARGET in n),
            None,
        )
        if drill_name is None:
            raise DrillError(
                f"{composite_name}'s rule names no availability alarm of target {DEFAULT_TARGET!r}: "
                "deploy the current stack (it outputs DrillAlarmName)"
            )
    found = cloudwatch.describe_alarms(AlarmNames=[composite_name, drill_name], AlarmTypes=ALARM_TYPES)
    composites = {a["AlarmName"]: a for a in found.get("CompositeAlarms", [])}
    metrics = {a["AlarmName"]: a for a in found.get("MetricAlarms", [])}
    if composite_name not in composites:
        raise DrillError(f"no composite alarm {composite_name}: is the stack deployed, with this namePrefix?")
    if drill_name not in metrics:
        raise DrillError(f"no metric alarm {drill_name} (the alarm the drill forces)")
    return Alarms(drill=metrics[drill_name], composite=composites[composite_name])


def ready(alarms: Alarms) -> list[str]:
    """Why the drill cannot start now (nothing changed yet), or what it would prove broken."""
    problems = []
    if alarms.composite.get("ActionsEnabled") is False:
        problems.append(f"{alarms.composite['AlarmName']} has its actions disabled: it would page nobody")
    for alarm in (alarms.composite, alarms.drill):
        if alarm["StateValue"] != "OK":
            problems.append(
                f"{alarm['AlarmName']} is {alarm['StateValue']}, not OK: a drill needs a quiet service "
                "(a real outage, or a drill still settling? make status)"
            )
    return problems


def subscription_warnings(sns: Any, alarms: Alarms) -> list[str]:
    """The drill proves CloudWatch -> SNS; whether SNS reaches anyone depends on confirmed
    subscriptions. Not an error: a webhook-only setup or a pending email is the user's call."""
    from botocore.exceptions import BotoCoreError, ClientError

    warnings = []
    for topic in alarms.composite.get("AlarmActions", []):
        if not topic.startswith("arn:aws") or ":sns:" not in topic:
            continue
        try:
            subs = [
                sub
                for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
                for sub in page.get("Subscriptions", [])
            ]
        except (BotoCoreError, ClientError) as exc:
            warnings.append(f"cannot read the subscriptions of {topic} ({_line(exc)})")
            continue
        confirmed = [sub for sub in subs if sub.get("SubscriptionArn", "").startswith("arn:")]
        if not subs:
            warnings.append(f"{topic} has no subscription: the drill's notifications reach nobody")
        elif not confirmed:
            warnings.append(
                f"no subscription of {topic} is confirmed (click the link in the email first): the drill "
                "proves CloudWatch -> SNS, but no one will get its emails"
            )
    return warnings


# --- bounds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    seconds: float
    why: str


@dataclass(frozen=True)
class Bounds:
    to_alarm: Bound
    to_action: Bound
    to_ok: Bound  # the composite back to OK (from the start in alarm mode, the restore in outage mode)
    drill_alarm: Bound | None = None  # outage only: the availability alarm's detection, real probes
    drill_ok: Bound | None = None  # outage only: its recovery after the restore


def bounds(mode: str, *, period: float, confirm: int, timeout: float, schedule: float) -> Bounds:
    """The bounds of docs/alarms.md ("How fast an outage is detected") plus CloudWatch's own share,
    stated: one period (it may evaluate complete periods only), its evaluation frequency (AWS
    documented), and our slack (undocumented by AWS)."""
    evaluation = HIGH_RESOLUTION_EVALUATION if period < 60 else STANDARD_EVALUATION
    allowance = period + evaluation + SLACK_SECONDS
    cw = f"+ {period:g} s one period + {evaluation:g} s evaluation frequency + {SLACK_SECONDS:g} s slack"
    if mode == "alarm":
        to_alarm = Bound(evaluation + SLACK_SECONDS, f"the composite follows its child: {evaluation:g} s + slack")
        ok = schedule + evaluation + SLACK_SECONDS
        return Bounds(
            to_alarm=to_alarm,
            to_action=Bound(to_alarm.seconds + ACTION_SECONDS, f"to ALARM + {ACTION_SECONDS:g} s for the action"),
            to_ok=Bound(
                ok,
                f"the child re-evaluated on fresh data: {schedule:g} s (a checker run's batch) "
                f"+ {evaluation:g} s + slack",
            ),
        )
    detection = timing.worst_case_detection(interval=period, confirm=confirm, timeout=timeout)
    recovery = timing.worst_case_recovery(interval=period, confirm=confirm, timeout=timeout)
    drill_alarm = Bound(detection + allowance, f"{detection:g} s detection {cw}")
    # A real outage may also trip the fast SLO burn pair; its 5-minute window (a 1-minute alarm)
    # keeps the composite in ALARM until no failed probe is left in it.
    burn_clear = FAST_BURN_SHORT_WINDOW + schedule + STANDARD_EVALUATION + SLACK_SECONDS
    return Bounds(
        to_alarm=Bound(drill_alarm.seconds + SLACK_SECONDS, "detection bound + slack for the composite"),
        to_action=Bound(
            drill_alarm.seconds + SLACK_SECONDS + ACTION_SECONDS, f"to ALARM + {ACTION_SECONDS:g} s for the action"
        ),
        to_ok=Bound(
            max(recovery + allowance, burn_clear),
            f"after the restore; the SLO fast-burn 5 min window may hold it: {FAST_BURN_SHORT_WINDOW:g} s "
            f"+ {schedule:g} s batch + {STANDARD_EVALUATION:g} s evaluation + slack",
        ),
        drill_alarm=drill_alarm,
        drill_ok=Bound(recovery + allowance, f"after the restore: {recovery:g} s recovery {cw}"),
    )


# --- what the alarm history says -------------------------------------------------------------


def history(cloudwatch: Any, alarm: str, alarm_type: str, kind: str, since: datetime) -> list[dict[str, Any]]:
    """Without AlarmTypes, DescribeAlarmHistory returns metric alarms only (CloudWatch API
    Reference), so a composite's history would read as empty."""
    items: list[dict[str, Any]] = []
    pages = cloudwatch.get_paginator("describe_alarm_history").paginate(
        AlarmName=alarm, AlarmTypes=[alarm_type], HistoryItemType=kind, StartDate=since, ScanBy="TimestampAscending"
    )
    for page in pages:
        items += page.get("AlarmHistoryItems", [])
    return sorted(items, key=lambda item: item["Timestamp"])


def transitions(items: list[dict[str, Any]]) -> list[tuple[datetime, str]]:
    """(when, new state) of each StateUpdate item."""
    out = []
    for item in items:
        try:
            new = json.loads(item.get("HistoryData") or "{}")["newState"]["stateValue"]
        except (ValueError, KeyError, TypeError):
            m = re.search(r"to (OK|ALARM|INSUFFICIENT_DATA)\b", item.get("HistorySummary", ""))
            if not m:
                continue
            new = m.group(1)
        out.append((item["Timestamp"], new))
    return out


@dataclass(frozen=True)
class Action:
    when: datetime
    succeeded: bool | None  # None: the item says neither (keep waiting)
    summary: str


def action(item: dict[str, Any]) -> Action:
    """An Action history item. CloudWatch writes "Successfully executed action <arn>" or
    "Failed to execute action <arn>. Received error: ..." in the summary, and `actionState`
    "Succeeded"/"Failed" in the data (AWS Knowledge Center, cloudwatch-receive-sns-for-alarm-trigger;
    a real item quoted in aws/aws-sdk-java#1723)."""
    summary = " ".join(str(item.get("HistorySummary", "")).split())
    state = None
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        state = json.loads(item.get("HistoryData") or "{}").get("actionState")
    succeeded: bool | None = None
    if state == "Succeeded" or summary.startswith("Successfully executed action"):
        succeeded = True
    if state == "Failed" or summary.startswith("Failed to execute action"):
        succeeded = False
    return Action(item["Timestamp"], succeeded, summary)


@dataclass
class Seen:
    """What the drill has observed so far, by CloudWatch's timestamps."""

    composite_alarm: datetime | None = None
    composite_ok: datetime | None = None
    drill_alarm: datetime | None = None
    drill_ok: datetime | None = None
    alarm_actions: dict[str, Action] = field(default_factory=dict)  # per action ARN
    ok_actions: dict[str, Action] = field(default_factory=dict)


def first_after(changes: list[tuple[datetime, str]], state: str, after: datetime | None) -> datetime | None:
    return next((when for when, new in changes if new == state and (after is None or when >= after)), None)


class Watch:
    """Polls the two alarms; reads their history once DescribeAlarms shows a change since t0."""

    def __init__(self, cloudwatch: Any, alarms: Alarms, since: datetime) -> None:
        self.cloudwatch = cloudwatch
        self.alarms = alarms
        self.since = since
        self.seen = Seen()

    def _changed(self) -> bool:
        found = self.cloudwatch.describe_alarms(AlarmNames=self.alarms.names, AlarmTypes=ALARM_TYPES)
        for alarm in found.get("MetricAlarms", []) + found.get("CompositeAlarms", []):
            stamps = [alarm.get(k) for k in ("StateUpdatedTimestamp", "StateTransitionedTimestamp")]
            if any(s is not None and s >= self.since - timedelta(seconds=1) for s in stamps):
                return True
        return False

    def poll(self) -> Seen:
        if not self._changed():
            return self.seen
        composite, drill = self.alarms.composite, self.alarms.drill
        since = self.since - timedelta(seconds=1)  # the Date header is whole seconds
        changes = transitions(history(self.cloudwatch, composite["AlarmName"], "CompositeAlarm", "StateUpdate", since))
        seen = self.seen
        seen.composite_alarm = first_after(changes, "ALARM", None)
        seen.composite_ok = first_after(changes, "OK", seen.composite_alarm) if seen.composite_alarm else None
        own = transitions(history(self.cloudwatch, drill["AlarmName"], "MetricAlarm", "StateUpdate", since))
        seen.drill_alarm = first_after(own, "ALARM", None)
        seen.drill_ok = first_after(own, "OK", seen.drill_alarm) if seen.drill_alarm else None
        if seen.composite_alarm:
            actions = [
                action(i) for i in history(self.cloudwatch, composite["AlarmName"], "CompositeAlarm", "Action", since)
            ]
            seen.alarm_actions = _per_arn(actions, composite.get("AlarmActions", []), seen.composite_alarm)
            if seen.composite_ok:
                seen.ok_actions = _per_arn(actions, composite.get("OKActions", []), seen.composite_ok)
        return seen


def _per_arn(actions: list[Action], arns: list[str], after: datetime) -> dict[str, Action]:
    out: dict[str, Action] = {}
    for arn in arns:
        for a in actions:
            if a.when >= after and arn in a.summary and a.succeeded is not None:
                out[arn] = a
                break
    return out


# --- the listener (outage mode) --------------------------------------------------------------


def find_listener(elbv2: Any, outputs: dict[str, str], region: str) -> dict[str, Any]:
    url = outputs.get("HelloUrl")
    if not url:
        raise DrillError("the stack has no HelloUrl output: is the deploy finished? (make status)")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    arn = outputs.get("LoadBalancerArn")
    if not arn:
        if not re.search(r"\.elb\.amazonaws\.com(\.cn)?$", host):
            raise DrillError(
                f"{host} is a custom domain and the stack has no LoadBalancerArn output, so the drill cannot "
                "tell which load balancer serves it: deploy the current stack, or use the default mode"
            )
        for page in elbv2.get_paginator("describe_load_balancers").paginate():
            for lb in page.get("LoadBalancers", []):
                if lb["DNSName"].lower() in (host, host.removeprefix("dualstack.")):
                    arn = lb["LoadBalancerArn"]
        if not arn:
            raise DrillError(f"no load balancer in {region} has the DNS name {host} (HelloUrl {url})")
    listeners = elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]
    listener = next((x for x in listeners if x["Port"] == port), None)
    if listener is None:
        raise DrillError(f"the load balancer {arn} has no listener on port {port} (HelloUrl {url})")
    return dict(listener)


FIXED_503 = {
    "Type": "fixed-response",
    "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain", "MessageBody": DRILL_BODY},
}


def _essence(actions: list[dict[str, Any]]) -> list[Any]:
    """What an action does, without the fields AWS may add or reorder when it echoes one back."""
    out = []
    for a in actions:
        forward = a.get("ForwardConfig", {}).get("TargetGroups", [])
        groups = {g["TargetGroupArn"] for g in forward} | ({a["TargetGroupArn"]} if "TargetGroupArn" in a else set())
        fixed = a.get("FixedResponseConfig") or {}
        out.append(
            [a["Type"], sorted(groups), a.get("RedirectConfig"), fixed.get("StatusCode"), fixed.get("MessageBody")]
        )
    return out


def is_drill(actions: list[dict[str, Any]]) -> bool:
    return _essence(actions) == _essence([FIXED_503])


def write_undo(path: Path, record: dict[str, Any]) -> None:
    """Before anything changes; refuses to overwrite: an earlier file may hold the only copy
    of the real actions. Flushed to disk, so a machine that dies still leaves it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise DrillError(
            f"{path} exists: an earlier outage drill did not finish restoring; run make drill-undo first"
        ) from None
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=2)
        f.flush()
        os.fsync(f.fileno())


def restore(
    elbv2: Any, listener_arn: str, actions: list[dict[str, Any]], only_over_the_drill: str | None = None
) -> dict[str, Any] | None:
    """Put the saved default actions back, and check. The ModifyListener response (its Date is
    when the outage ended, by AWS's clock), or None when they were already there.
    `only_over_the_drill` (the undo file's name): replace only the drill's own 503, never actions
    someone (or a deploy) put there since the drill saved its copy."""
    [current] = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"]
    if _essence(current["DefaultActions"]) == _essence(actions):
        return None
    if only_over_the_drill and not is_drill(current["DefaultActions"]):
        raise DrillError(
            f"listener {listener_arn} no longer answers the drill's 503 and differs from {only_over_the_drill}: "
            f"not overwriting it; compare by hand, then delete {only_over_the_drill}"
        )
    response: dict[str, Any] = elbv2.modify_listener(ListenerArn=listener_arn, DefaultActions=actions)
    [current] = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"]
    if _essence(current["DefaultActions"]) != _essence(actions):
        raise RuntimeError(f"listener {listener_arn} still does not have its saved actions after ModifyListener")
    return response


@contextlib.contextmanager
def signals_raise(backstop: float | None = None) -> Iterator[Callable[[bool], None]]:
    """SIGTERM and SIGHUP raise Stopped (SIGINT already raises KeyboardInterrupt), so `finally`
    blocks run. The yielded function shields a restore: a signal then waits until it is done.
    `backstop`: a real-time SIGALRM after that many seconds, should the polling loop itself hang
    (its calls have timeouts; this holds the cap even if they did not)."""
    shielded = False
    pending: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if shielded:
            pending.append(signum)
            return
        raise Stopped(signum)

    def shield(on: bool) -> None:
        nonlocal shielded
        shielded = on
        if not on and pending:  # a signal that came during the restore: honoured now
            raise Stopped(pending.pop())

    # SIGALRM only with a backstop: otherwise it may be someone else's (pytest-timeout's, say).
    caught = (signal.SIGTERM, signal.SIGHUP, *((signal.SIGALRM,) if backstop else ()))
    previous = {s: signal.signal(s, handler) for s in caught}
    if backstop:
        signal.setitimer(signal.ITIMER_REAL, backstop)
    try:
        yield shield
    finally:
        if backstop:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for s, h in previous.items():
            signal.signal(s, h)
    if pending:
        raise Stopped(pending[0])


# --- the drill -------------------------------------------------------------------------------


@dataclass
class Drill:
    cloudwatch: Any
    alarms: Alarms
    bounds: Bounds
    clock: Clock
    out: Any = None  # sys.stdout at the time of writing
    poll_seconds: float = POLL_SECONDS
    errors: list[str] = field(default_factory=list)
    rows: list[tuple[str, float | None, Bound]] = field(default_factory=list)
    skew: timedelta = timedelta(0)  # AWS's clock minus this machine's

    def sync(self, server: datetime) -> datetime:
        """Every deadline is on AWS's clock (the history's): learn how far this machine's is off."""
        self.skew = server - self.clock.now()
        return server

    def now(self) -> datetime:
        """AWS's time, by this machine's clock and the skew seen at the last call."""
        return self.clock.now() + self.skew

    def say(self, line: str) -> None:
        print(line, file=self.out or sys.stdout, flush=True)

    def wait(self, watch: Watch, done: Callable[[Seen], bool], until: datetime) -> Seen:
        """Poll until `done` or the deadline (a wall-clock time, so every wait is bounded)."""
        while True:
            seen = watch.poll()
            if done(seen) or self.now() >= until:
                return seen
            self.clock.sleep(max(0.0, min(self.poll_seconds, (until - self.now()).total_seconds())))

    def record(self, label: str, start: datetime, when: datetime | None, bound: Bound) -> None:
        took = (when - start).total_seconds() if when else None
        self.rows.append((label, took, bound))
        if took is None:
            self.errors.append(f"{label}: not seen within the wait ({bound.seconds:g} s bound: {bound.why})")
        elif took > bound.seconds:
            self.errors.append(f"{label}: {took:.1f} s, over the {bound.seconds:g} s bound ({bound.why})")

    def check_actions(self, kind: str, arns: list[str], got: dict[str, Action], start: datetime, bound: Bound) -> None:
        if not arns:
            self.errors.append(f"{self.alarms.composite['AlarmName']} has no {kind} action: it notifies nobody")
            return
        for arn in arns:
            a = got.get(arn)
            self.record(f"to the {kind} action", start, a.when if a else None, bound)
            if a:
                self.say(f"  {kind} action: {a.summary}")
                if not a.succeeded:
                    self.errors.append(f"the {kind} action failed: {a.summary}")

    def await_alarm(self, watch: Watch, start: datetime, give_up: datetime, cap: datetime | None = None) -> Seen:
        """Until the composite's ALARM and its actions; never past `cap` (the outage's end)."""
        b = self.bounds
        self.say(f"waiting for {self.alarms.composite['AlarmName']} to go to ALARM (bound {b.to_alarm.seconds:g} s)")
        seen = self.wait(watch, lambda s: s.composite_alarm is not None, give_up)
        self.record("to ALARM", start, seen.composite_alarm, b.to_alarm)
        if b.drill_alarm:
            self.record("availability alarm to ALARM (real probes)", start, seen.drill_alarm, b.drill_alarm)
        if seen.composite_alarm:
            arns = self.alarms.composite.get("AlarmActions", [])
            until = max(seen.composite_alarm + timedelta(seconds=ACTION_SECONDS * 2), self.now())
            seen = self.wait(watch, lambda s: set(arns) <= set(s.alarm_actions), min(until, cap) if cap else until)
            self.check_actions("ALARM", arns, seen.alarm_actions, start, b.to_action)
        return seen

    def await_ok(self, watch: Watch, start: datetime) -> None:
        b = self.bounds
        until = start + timedelta(seconds=b.to_ok.seconds * 1.5 + POLL_SECONDS)
        self.say(f"waiting for {self.alarms.composite['AlarmName']} to return to OK (bound {b.to_ok.seconds:g} s)")
        seen = self.wait(watch, lambda s: s.composite_ok is not None, until)
        if b.drill_ok:
            self.record("availability alarm to OK after the restore", start, seen.drill_ok, b.drill_ok)
        self.record("to OK" + (" after the restore" if b.drill_ok else ""), start, seen.composite_ok, b.to_ok)
        ok = seen.composite_ok
        if ok:
            arns = self.alarms.composite.get("OKActions", [])
            until = ok + timedelta(seconds=ACTION_SECONDS * 2)
            seen = self.wait(watch, lambda s: set(arns) <= set(s.ok_actions), max(until, self.now()))
            bound = Bound(ACTION_SECONDS, f"after the OK: {ACTION_SECONDS:g} s, ours")
            self.check_actions("OK", arns, seen.ok_actions, ok, bound)

    def report(self) -> int:
        self.say("result:")
        for label, took, bound in self.rows:
            verdict = "not seen" if took is None else ("ok" if took <= bound.seconds else "MISSED")
            measured = "-" if took is None else f"{took:.1f} s"
            self.say(f"  {label:<44} {measured:>8}  bound {bound.seconds:>5g} s  {verdict}  ({bound.why})")
        for error in self.errors:
            print(f"error: {error}", file=sys.stderr, flush=True)
        return 1 if self.errors else 0


def drill_alarm_mode(d: Drill) -> int:
    name = d.alarms.drill["AlarmName"]
    d.say(
        f"forcing {name} to ALARM (SetAlarmState: "
        "it returns to its real state once fresh datapoints are evaluated, within about one checker run)"
    )
    d.say(f"watching {d.alarms.composite['AlarmName']}: it must go to ALARM, notify, and return to OK")
    response = d.cloudwatch.set_alarm_state(
        AlarmName=name,
        StateValue="ALARM",
        StateReason=(
            "Drill (make drill): testing the paging path; "
            "this alarm returns to its real state with the checker's next datapoints."
        ),
    )
    start = d.sync(server_time(response, d.clock))
    watch = Watch(d.cloudwatch, d.alarms, start)
    try:
        with signals_raise():
            seen = d.await_alarm(watch, start, start + timedelta(seconds=d.bounds.to_action.seconds * 2))
            if seen.composite_alarm:
                d.await_ok(watch, start)
    except BaseException:
        # With missing data ignored, the forced ALARM clears only with fresh datapoints: if the
        # checker is not publishing, it stays, and holds service-down in ALARM (no new page).
        still = _state_of(d.cloudwatch, name)
        print(
            f"note: {name} is {still}; it returns to its real state with the checker's next datapoints"
            + ("; if it stays in ALARM, check the checker (make status)" if still == "ALARM" else ""),
            file=sys.stderr,
        )
        raise
    return d.report()


def _state_of(cloudwatch: Any, name: str) -> str:
    try:
        [alarm] = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        return str(alarm["StateValue"])
    except Exception:  # noqa: BLE001  # a note on the way out: never hide the original error
        return "in an unknown state"


def drill_outage_mode(
    d: Drill,
    elbv2: Any,
    listener: dict[str, Any],
    undo_path: Path,
    max_seconds: float,
    region: str,
    backstop: float | None = None,
) -> int:
    arn, original = listener["ListenerArn"], listener["DefaultActions"]
    if is_drill(original):
        raise DrillError(f"listener {arn} already answers the drill's 503: run make drill-undo")
    write_undo(
        undo_path,
        {"listener_arn": arn, "region": region, "default_actions": original, "saved": d.clock.now().isoformat()},
    )
    d.say(f"saved the listener's actions to {undo_path} (make drill-undo restores from it)")
    restored_at: datetime | None = None
    with signals_raise(backstop) as shield:

        def put_back() -> None:
            nonlocal restored_at
            if restored_at is not None:
                return
            shield(True)
            try:
                response = restore(elbv2, arn, original)
                restored_at = server_time(response, d.clock) if response else d.now()
                undo_path.unlink(missing_ok=True)
                d.say(f"restored listener {arn}; removed {undo_path.name}")
            finally:
                shield(False)

        try:
            d.say(f"outage: listener {arn} (port {listener['Port']}) answers 503 for at most {max_seconds:g} s")
            response = elbv2.modify_listener(ListenerArn=arn, DefaultActions=[FIXED_503])
            start = d.sync(server_time(response, d.clock))
            watch = Watch(d.cloudwatch, d.alarms, start)
            cap = start + timedelta(seconds=max_seconds)
            seen = d.await_alarm(watch, start, cap, cap)
            if d.now() >= cap and seen.composite_alarm is None:
                d.say(f"--max-seconds {max_seconds:g} reached: restoring")
            put_back()
            if backstop:
                signal.setitimer(signal.ITIMER_REAL, 0)  # the outage is over: the backstop has done its job
            restore_time = restored_at or d.now()
            if seen.composite_alarm:
                d.await_ok(watch, restore_time)
        except BaseException:
            try:
                put_back()
            except Exception as exc:  # noqa: BLE001  # the original error still propagates; this one is told
                print(f"error: {_line(exc)}; the outage is still on: run make drill-undo", file=sys.stderr)
            raise
    return d.report()


def undo(elbv2_for: Callable[[str], Any], path: Path, out: Any = None) -> int:
    out = out or sys.stdout
    if not path.exists():
        print(
            f"nothing to undo: no {path} (an outage drill writes it before changing the listener and "
            "removes it after restoring)",
            file=out,
        )
        return 0
    try:
        record = json.loads(path.read_text())
        arn, actions = record["listener_arn"], record["default_actions"]
        region = record.get("region") or arn.split(":")[3]
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise DrillError(f"{path} is unreadable ({exc}): restore the listener's default action by hand") from None
    changed = restore(elbv2_for(region), arn, actions, only_over_the_drill=path.name) is not None
    path.unlink(missing_ok=True)
    print(f"{'restored' if changed else 'already restored'}: listener {arn}; removed {path.name}", file=out)
    return 0


# --- the command -----------------------------------------------------------------------------


def _line(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    from tools.preflight import explain

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if "AccessDenied" in code or code in ("UnauthorizedOperation", "Forbidden"):
            return f"access denied to {exc.operation_name}: grant it to your identity ({code})"
    return " ".join(explain(exc).split())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.drill", description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["alarm", "outage"], default="alarm", help="alarm (default, safe) or outage")
    p.add_argument("--undo", action="store_true", help="restore the listener from the undo file, and stop")
    p.add_argument("--max-seconds", type=float, default=MAX_SECONDS, help="outage mode: the longest outage")
    p.add_argument("--region", help="the stack's region (default: from the outputs, else your AWS configuration)")
    p.add_argument("--outputs", type=Path, default=ROOT / "cdk-outputs.json", help="default cdk-outputs.json")
    p.add_argument("--undo-file", type=Path, default=UNDO_FILE, help=argparse.SUPPRESS)
    p.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="as cdk -c")
    args = p.parse_args(argv)
    if not 1 <= args.max_seconds <= 900:
        p.error("--max-seconds must be between 1 and 900")
    return args


def session_and_region(args: argparse.Namespace, outputs: dict[str, str] | None) -> tuple[Any, str]:
    import boto3

    session = boto3.Session()
    region = args.region or (region_of(outputs) if outputs else None) or session_region(session, os.environ)[0]
    if not region:
        raise DrillError("no AWS region: export AWS_REGION=<region>, or make drill ARGS='--region <region>'")
    if session.get_credentials() is None:
        raise DrillError(NO_CREDENTIALS)
    return session, region


def run(args: argparse.Namespace, clock: Clock) -> int:
    from botocore.config import Config

    config = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})
    if args.undo:
        import boto3

        if not args.undo_file.exists():
            return undo(lambda region: None, args.undo_file)
        session = boto3.Session()
        if session.get_credentials() is None:
            raise DrillError(NO_CREDENTIALS)
        return undo(lambda region: session.client("elbv2", region_name=region, config=config), args.undo_file)

    from tools.preflight import parse_context, read_config

    app = read_config(parse_context(args.context))
    outputs = from_file(args.outputs)
    session, region = session_and_region(args, outputs)

    def client(name: str) -> Any:
        return session.client(name, region_name=region, config=config)

    if outputs is None:
        outputs = from_cloudformation(client("cloudformation"), region, "make drill")
    cloudwatch = client("cloudwatch")
    alarms = find_alarms(cloudwatch, outputs, app.name_prefix)
    listener = find_listener(client("elbv2"), outputs, region) if args.mode == "outage" else None
    problems = ready(alarms)
    if problems:
        raise DrillError(problems[0])
    b = bounds(
        args.mode,
        period=float(alarms.drill.get("Period", app.probe_interval_seconds)),
        confirm=int(alarms.drill.get("DatapointsToAlarm", app.confirm_probes)),
        timeout=float(app.probe_timeout_seconds),
        schedule=float(app.schedule_minutes * 60),
    )
    d = Drill(cloudwatch, alarms, b, clock)
    for warning in subscription_warnings(client("sns"), alarms):
        d.say(f"warning: {warning}")
    if listener is None:
        return drill_alarm_mode(d)
    # The backstop: the cap plus the longest a poll can take (3 attempts of 3 s connect + 10 s read).
    backstop = args.max_seconds + 45
    return drill_outage_mode(d, client("elbv2"), listener, args.undo_file, args.max_seconds, region, backstop)


def main(argv: list[str] | None = None, clock: Clock | None = None) -> int:
    args = parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    from cdk_app.config import ConfigError

    try:
        return run(args, clock or Clock())
    except (DrillError, OutputsError, ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"error: AWS: {_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  # anything else is still one line, not a traceback
        print(f"error: {type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except Stopped as stop:
        if stop.signum == signal.SIGALRM:
            print(
                f"error: --max-seconds {args.max_seconds:g} passed while AWS did not answer; stopped", file=sys.stderr
            )
            return 1
        print(f"stopped by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return 128 + stop.signum


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
