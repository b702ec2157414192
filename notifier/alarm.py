"""An alarm's SNS notification, read from the shapes AWS documents ("Schema of Amazon SNS
notifications when alarms change state", CloudWatch User Guide; tests/data/sns_*.json keep
examples with their sources). Metric alarms carry a Trigger; composite alarms an AlarmRule and
TriggeringChildren instead."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Notification:
    name: str
    arn: str
    state: str  # ALARM, OK or INSUFFICIENT_DATA
    old_state: str
    reason: str
    description: str
    changed: dt.datetime
    region: str  # the region code, from the ARN (the message's Region is a display name)
    composite: bool
    children: tuple[str, ...] = ()  # a composite's triggering alarms, by name
    dimensions: tuple[tuple[str, str], ...] = ()  # a plain metric alarm's
    window: int = 0  # a metric alarm's evaluation range, seconds (0: not in the message)
    # When it started: a composite's earliest triggering child's change, else its own change.
    since: dt.datetime | None = None


def _time(text: str) -> dt.datetime:
    """CloudWatch writes 2015-06-03T17:43:27.123+0000."""
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _name(arn: str) -> str:
    return arn.split(":alarm:", 1)[-1]


def parse(message: dict[str, Any]) -> Notification:
    """One alarm notification (the SNS Message, decoded). KeyError/ValueError: not one."""
    arn = message.get("AlarmArn") or ""
    trigger = message.get("Trigger") or {}
    children, times = [], []
    for child in message.get("TriggeringChildren") or []:
        # Documented as a list of strings; CloudWatch sends {"Arn": ..., "State": {...}}.
        children.append(_name(child.get("Arn", "") if isinstance(child, dict) else str(child)))
        stamp = (child.get("State") or {}).get("Timestamp") if isinstance(child, dict) else None
        if stamp:
            times.append(_time(stamp))
    changed = _time(message["StateChangeTime"])
    dims = tuple((d["name"], d["value"]) for d in trigger.get("Dimensions") or [])
    if not dims:  # a metric-math alarm: its metrics' dimensions, when they agree
        for m in trigger.get("Metrics") or []:
            stat = (m.get("MetricStat") or {}).get("Metric") or {}
            dims = dims or tuple((d["name"], d["value"]) for d in stat.get("Dimensions") or [])
    period = trigger.get("Period") or next(
        ((m.get("MetricStat") or {}).get("Period") or m.get("Period") for m in trigger.get("Metrics") or []), 0
    )
    return Notification(
        name=message["AlarmName"],
        arn=arn,
        state=message["NewStateValue"],
        old_state=message.get("OldStateValue") or "",
        reason=message.get("NewStateReason") or "",
        description=message.get("AlarmDescription") or "",
        changed=changed,
        region=arn.split(":")[3] if arn.count(":") >= 5 else "",
        composite="AlarmRule" in message,
        children=tuple(c for c in children if c),
        dimensions=dims,
        window=int(period or 0) * int(trigger.get("EvaluationPeriods") or 0),
        since=min([*times, changed]),
    )


def from_event(event: dict[str, Any]) -> list[tuple[Notification | None, str, str]]:
    """Each SNS record of a Lambda event: (the alarm notification or None, subject, raw message).
    A message that is not an alarm's (a test publish) is delivered as its text."""
    out: list[tuple[Notification | None, str, str]] = []
    for record in event.get("Records") or []:
        sns = record.get("Sns") or {}
        raw, subject = sns.get("Message") or "", sns.get("Subject") or ""
        try:
            out.append((parse(json.loads(raw)), subject, raw))
        except (ValueError, KeyError, TypeError, AttributeError):
            out.append((None, subject, raw))
    return out
