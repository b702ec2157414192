"""What a notification says, whatever the channel: the verdict in words, the service and target,
since when, the locations that see it, the latest failure reasons with their counts (the
checker's Failures metrics over the alarm's window), and the links to act on it."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from checker_lambda import contract as checker
from notifier.alarm import Notification
from notifier.contract import Verdict

DEFAULT_WINDOW = 600  # seconds of failures read when the alarm's window is unknown


@dataclass(frozen=True)
class Entry:
    """What the alarm plan says about one alarm (cdk_app/notifier.py writes the catalog)."""

    verdict: Verdict
    target: str = ""
    location: str = ""
    window: int = 0


def catalog(rows: Sequence[Sequence[Any]]) -> dict[str, Entry]:
    return {str(r[0]): Entry(Verdict(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows}


@dataclass(frozen=True)
class Page:
    verdict: Verdict
    service: str
    target: str
    alarm: str
    state: str
    since: dt.datetime
    description: str
    reason: str
    locations: tuple[str, ...] = ()
    failures: tuple[tuple[str, int], ...] = ()  # (reason, count), most first
    dashboard: str = ""
    runbook: str = ""
    was: Verdict | None = None  # what a recovery recovers from
    headline: str = ""  # instead of the verdict's title: a message that is not an alarm's
    counts_missing: str = ""  # why there are no failure counts, when they could not be read

    @property
    def key(self) -> str:
        """Pairs a trigger with its recovery (PagerDuty dedup_key, Opsgenie alias): the alarm."""
        return self.alarm

    @property
    def firing(self) -> bool:
        return self.verdict is not Verdict.RECOVERED

    @property
    def title(self) -> str:
        if self.headline:
            return self.headline
        what = self.target or self.service
        if self.verdict is Verdict.RECOVERED:
            return f"{what} recovered" + (f" (was {self.was.value})" if self.was else "")
        if self.verdict is Verdict.CHECKER:
            return f"Checker trouble: {what} may be unwatched"
        if self.verdict is Verdict.DELIVERY:
            return "Alert delivery trouble: pages may not reach every channel (email still does)"
        return f"{what} is {self.verdict.value}"

    @property
    def when(self) -> str:
        return self.since.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def facts(self) -> list[tuple[str, str]]:
        """(label, text) pairs every format shows, in order."""
        facts = [
            ("Verdict", self.verdict.value),
            ("Service", self.service + (f" / target {self.target}" if self.target else "")),
            ("Since" if self.firing else "Recovered at", self.when),
        ]
        if self.locations:
            facts.append(("Locations", ", ".join(self.locations)))
        if self.failures:
            facts.append(("Latest failures", ", ".join(f"{r} ×{n}" for r, n in self.failures)))
        elif self.counts_missing:
            facts.append(("Latest failures", self.counts_missing))
        facts.append(("Alarm", f"{self.alarm} ({self.state})"))
        return facts

    def links(self) -> list[tuple[str, str]]:
        return [(t, u) for t, u in (("Dashboard", self.dashboard), ("Runbook", self.runbook)) if u]

    def text(self) -> str:
        """The plain-text form: the fallback of every rich format, and the whole of a plain one."""
        lines = [self.title, *(f"{label}: {value}" for label, value in self.facts())]
        if self.description:
            lines.append(self.description)
        lines += [f"{t}: {u}" for t, u in self.links()]
        return "\n".join(lines)


def failure_counts(
    cloudwatch: Any, *, target: str, locations: Sequence[str], end: dt.datetime, window: int
) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    """The locations with failed probes of `target` and the count per reason, summed over the
    `window` seconds before `end`: one GetMetricData call over every reason and location."""
    period = max(60, 60 * math.ceil(window / 60))
    where: list[str | None] = [*locations] or [None]
    queries, keys = [], {}
    for i, (loc, reason) in enumerate((loc, r) for loc in where for r in checker.Reason):
        keys[f"f{i}"] = (loc, reason.value)
        queries.append(
            {
                "Id": f"f{i}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": checker.NAMESPACE,
                        "MetricName": checker.FAILURES,
                        "Dimensions": checker.dimensions(target, reason, loc),
                    },
                    "Period": period,
                    "Stat": "Sum",
                },
            }
        )
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=queries, StartTime=end - dt.timedelta(seconds=period), EndTime=end + dt.timedelta(seconds=60)
    )
    by_reason: dict[str, int] = {}
    seen: list[str] = []
    for result in answer.get("MetricDataResults", []):
        count = int(sum(result.get("Values") or []))
        loc, why = keys[result["Id"]]
        if count:
            by_reason[why] = by_reason.get(why, 0) + count
            if loc and loc not in seen:
                seen.append(loc)
    ordered = tuple(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])))
    return tuple(seen), ordered


@dataclass
class Context:
    """Where a page's facts come from: the plan's catalog, the deployment, CloudWatch."""

    service: str
    alarms: Mapping[str, Entry] = field(default_factory=dict)
    locations: tuple[str, ...] = ()
    dashboard: str = ""
    runbook: str = ""
    cloudwatch: Any = None  # None: no failure counts (make local without an emulator)


def page(n: Notification, ctx: Context) -> Page:
    own = ctx.alarms.get(n.name)
    # A composite speaks for the child that triggered it (service-down is "down" when
    # availability tripped it, "degraded" when latency did, "checker trouble" when the heartbeat did).
    child = next((ctx.alarms[c] for c in n.children if c in ctx.alarms), None)
    entry = child or own or Entry(Verdict.DEGRADED, dict(n.dimensions).get(checker.TARGET, ""))
    target = entry.target or (own.target if own else "")
    location = entry.location or dict(n.dimensions).get(checker.LOCATION, "")
    locations: tuple[str, ...] = (location,) if location else ()
    failures: tuple[tuple[str, int], ...] = ()
    missing = ""
    if target and ctx.cloudwatch is not None:
        window = n.window or entry.window or DEFAULT_WINDOW
        try:
            seen, failures = failure_counts(
                ctx.cloudwatch,
                target=target,
                locations=(location,) if location else ctx.locations,
                end=n.changed,
                window=window,
            )
        except Exception as exc:  # noqa: BLE001 - the page goes out without its counts, saying why
            seen, missing = (
                (),
                f"not read ({getattr(exc, 'response', {}).get('Error', {}).get('Code') or type(exc).__name__})",
            )
        locations = seen or locations
    recovered = n.state == "OK"
    return Page(
        verdict=Verdict.RECOVERED if recovered else entry.verdict,
        was=entry.verdict if recovered else None,
        service=ctx.service,
        target=target,
        alarm=n.name,
        state=n.state,
        since=n.since or n.changed,
        description=n.description,
        reason=n.reason,
        locations=locations,
        failures=failures,
        dashboard=ctx.dashboard,
        runbook=ctx.runbook,
        counts_missing=missing,
    )
