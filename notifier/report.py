"""What the tools ask of the notifier: the message each channel would receive (make local), whether
each channel's secret is readable (make preflight), and whether each channel took a page, read
from the notifier's own log lines (make drill)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from notifier import alarm, channels, contract
from notifier.contract import Channel
from notifier.handler import check_secret
from notifier.page import Context, Page, page

__all__ = ["check_secret", "check_secrets", "deliveries", "preview", "wait_for_deliveries"]


def check_secrets(channels_: Sequence[Channel], clients: Callable[[str], Any]) -> tuple[bool, str]:
    """make preflight's line: every channel's secret exists, is readable and holds what its type needs."""
    results = [check_secret(c, clients) for c in channels_]
    failed = [line for ok, line in results if not ok]
    if failed:
        return False, "; ".join(line.removeprefix("alertChannels ") for line in failed)
    return True, f"{len(results)} secret(s) readable, each holding its type's destination: " + ", ".join(
        c.label for c in channels_
    )


def preview(kinds: Iterable[str], notifications: Sequence[alarm.Notification], ctx: Context) -> list[str]:
    """Per channel type and notification, the JSON body it would receive (no secret: a placeholder)."""
    lines = []
    for n in notifications:
        p: Page = page(n, ctx)
        for kind in kinds:
            lines.append(f"--- {kind} would receive, for {n.name} {n.state} ({p.title}):")
            lines.append(json.dumps(channels.preview(kind, p), indent=2, ensure_ascii=False))
    return lines


def deliveries(logs: Any, log_group: str, since: dt.datetime) -> list[dict[str, Any]]:
    """The notifier's delivery lines since `since` (oldest first)."""
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"logGroupName": log_group, "startTime": int(since.timestamp() * 1000)}
    while True:
        answer = logs.filter_log_events(**kwargs)
        for e in answer.get("events", []):
            try:
                line = json.loads(e["message"])
            except (ValueError, TypeError):
                continue  # Lambda's own START/END/REPORT lines
            if isinstance(line, dict) and line.get("type") == contract.DELIVERY_LOG:
                found.append(line)
        if not answer.get("nextToken"):
            return found
        kwargs["nextToken"] = answer["nextToken"]


def wait_for_deliveries(
    logs: Any,
    log_group: str,
    *,
    since: dt.datetime,
    channels_: Sequence[Channel],
    alarm_name: str,
    states: Sequence[str] = ("ALARM", "OK"),
    bound: float = 120.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, list[str]]:
    """Per channel and state, whether the notifier delivered `alarm_name`'s notification, polling
    its log until every one has a line or `bound` seconds pass. (all delivered, one line each)."""
    end = clock() + bound
    while True:
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for line in deliveries(logs, log_group, since):
            if line.get("alarm") == alarm_name:
                seen[(line.get("channel", ""), line.get("state", ""))] = line  # the newest wins
        wanted = [(c.label, s) for c in channels_ for s in states]
        if all(w in seen for w in wanted) or clock() >= end:
            break
        sleep(min(5.0, max(0.0, end - clock())))
    lines, ok = [], True
    for label, state in wanted:
        got = seen.get((label, state))
        if got is None:
            ok = False
            lines.append(f"FAIL  {label}: no delivery of {alarm_name} {state} logged within {bound:g} s")
        elif got.get("delivered"):
            lines.append(f"ok    {label}: {alarm_name} {state} delivered (attempts {got.get('attempts')})")
        else:
            ok = False
            lines.append(f"FAIL  {label}: {alarm_name} {state} not delivered: {got.get('error')}")
    return ok, lines
