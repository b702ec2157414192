"""The two alarms the drill watches (the composite that pages, the availability alarm it forces or
the outage trips), and what their history says."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cdk_app.alarm_plan import DEFAULT_TARGET
from tools.drill.errors import DrillError, one_line

ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]


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
            warnings.append(f"cannot read the subscriptions of {topic} ({one_line(exc)})")
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
