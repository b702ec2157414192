"""The checker's real loop on a fake clock, and its datapoints through CloudWatch's alarm rules.

`timeline()` runs `checker_lambda.run.Monitor` invocation by invocation against a target that
fails during an outage, and records when each datapoint becomes readable in CloudWatch (the
moment its PutMetricData call returns). `replay()` feeds those arrivals to `evaluate()`, which
implements the alarm evaluation AWS documents in "Configuring how CloudWatch alarms treat
missing data" (CloudWatch User Guide; docs/decisions.md §3 cites it):

- the alarm retrieves an *evaluation range* of more periods than Evaluation Periods (N);
- with at least N real datapoints in the range, it judges the N most recent real ones and the
  missing-data treatment is not used;
- with fewer, it fills the shortfall (only as few times as possible) with the treatment and
  keeps every real datapoint in the range; `ignore` retains the current state, and with no good
  datapoint in the range it retains it too (the tables' rows "- - X - -" and "- - - X -").

What AWS leaves open is replayed every way: ranges of N to 2N periods, and a range that ends
with the current, still open period or with the last complete one.

`python -m tests.simulate` prints the simulated worst cases for a few settings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdk_app import alarm_plan as ap
from cdk_app.alarm_plan import ALARM, INSUFFICIENT, OK, evaluate  # noqa: F401 (the tests read them here)
from cdk_app.config import AppConfig
from checker_lambda import timing
from checker_lambda.budgets import publish_budget
from checker_lambda.probe import ProbeResult
from checker_lambda.run import Monitor, first_slot
from checker_lambda.settings import Settings, Target

READINGS = ("open period", "complete periods")  # where the evaluation range ends


# --- the checker, on a fake clock -----------------------------------------------------------


@dataclass(frozen=True)
class Checker:
    interval: int = 10
    confirm: int = 3
    timeout: float = 5.0
    schedule: int = 60

    def settings(self) -> Settings:
        target = Target(name="hello", url="http://hello.test/hello", timeout=self.timeout)
        return Settings(targets=(target,), interval=self.interval, schedule=self.schedule, confirm=self.confirm)

    @property
    def bound(self) -> float:
        """The stated worst case (checker_lambda/timing.py; docs/alarms.md)."""
        return timing.worst_case_detection(interval=self.interval, confirm=self.confirm, timeout=self.timeout)

    @property
    def run_for(self) -> int:
        """The Lambda timeout the stack gives it."""
        return timing.invocation_timeout(
            schedule=self.schedule, interval=self.interval, slowest_probe=self.timeout, publish_budget=publish_budget()
        )


@dataclass(frozen=True)
class Scenario:
    checker: Checker = Checker()
    outage: tuple[float, float] | None = None  # [start, end): the target fails, each probe at its slowest
    flaps: tuple[tuple[float, float], ...] = ()  # more [start, end) spans in which the target fails
    invocations: int = 12
    cold: frozenset[int] = frozenset({0})  # invocations that start in a new execution environment
    skipped: frozenset[int] = frozenset()  # invocations that never ran
    # The execution environment of each invocation (0 when not listed): Lambda starts another one
    # when an invocation overlaps the next, and either may take later invocations.
    environments: tuple[int, ...] = ()
    start_delay: float = 0.2  # EventBridge delivery and init, after the scheduled time
    cold_start_delay: float = 1.5
    slow_publishes: frozenset[int] = frozenset()  # calls (0-based) that take the whole publish budget
    throttled_publishes: frozenset[int] = frozenset()  # calls that fail (botocore gave up)
    publish_seconds: float = 0.0  # a normal call; the stated bound leaves the call's own latency out


@dataclass(frozen=True)
class Datum:
    slot: float
    ok: bool
    readable_at: float


class InstantMonitor(Monitor):
    """Publishes every probe the moment it ends: what the batching is compared with."""

    def has_news(self) -> bool:
        return bool(self._pending)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class _Throttled(Exception):
    pass


@dataclass
class Timeline:
    scenario: Scenario
    data: list[Datum] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)  # when each successful call returned


@functools.cache
def timeline(
    scenario: Scenario, monitor: type[Monitor] = Monitor, *, location: str | None = None, phase: float = 0.0
) -> Timeline:
    """`location`: the checker is one of several (every failure published at once); `phase`: its
    invocations are scheduled this many seconds after the minute (each region's rule has its own).
    Deterministic, so each one is run once (the same outage recurs across the searches); callers
    only read it."""
    c = scenario.checker
    settings = dataclasses.replace(c.settings(), location=location)
    clock = _Clock()
    out = Timeline(scenario)
    attempts = [0]

    class Prober:
        def probe(self, target: Target) -> ProbeResult:
            started = clock.now
            spans = ((scenario.outage,) if scenario.outage is not None else ()) + scenario.flaps
            down = any(a <= started < b for a, b in spans)
            clock.now += target.timeout if down else 0.05
            return ProbeResult(target=target.name, url=target.url, started_at=started, ok=not down)

    def publish(results: Sequence[ProbeResult]) -> None:
        call = attempts[0]
        attempts[0] += 1
        clock.now += publish_budget() if call in scenario.slow_publishes else scenario.publish_seconds
        if call in scenario.throttled_publishes:
            raise _Throttled(f"call {call}")
        out.calls.append(clock.now)
        out.data.extend(Datum(r.slot if r.slot is not None else r.started_at, r.ok, clock.now) for r in results)

    warm: dict[int, Monitor] = {}  # by execution environment
    for k in range(scenario.invocations):
        if k in scenario.skipped:
            continue
        env = scenario.environments[k] if k < len(scenario.environments) else 0
        cold = env not in warm or k in scenario.cold
        if cold:
            warm[env] = monitor(settings, Prober(), publish, clock=clock.time, sleep=clock.sleep, log=lambda r: None)  # type: ignore[arg-type]
        running = warm[env]
        scheduled = k * c.schedule + phase
        begin = scheduled + (scenario.cold_start_delay if cold else scenario.start_delay)
        clock.now = max(clock.now, begin)
        with contextlib.suppress(_Throttled):  # the Lambda fails; its batch is lost
            running.run(first_slot(scheduled, clock.now, settings), clock.now + c.run_for)
    return out


# --- CloudWatch's alarm evaluation, as documented ---------------------------------------------


REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1")
DEFAULTS_CONTEXT: dict[str, Any] = json.loads((Path(__file__).resolve().parent.parent / "cdk.json").read_text())[
    "context"
]


@functools.cache
def planned(c: Checker, locations: int = 1, quorum: int = 0) -> ap.Plan:
    """The alarm plan of the stack deployed with these checker settings (and this many checker
    regions, this quorum): what the replays evaluate."""
    context = DEFAULTS_CONTEXT | {
        "probeIntervalSeconds": c.interval,
        "confirmProbes": c.confirm,
        "probeTimeoutSeconds": c.timeout,
        "scheduleMinutes": c.schedule // 60,
        "checkerRegions": list(REGIONS[:locations]) if locations > 1 else [],
        "checkerQuorum": quorum,
    }
    return ap.plan(AppConfig.from_context(context.get))


def availability_alarm(c: Checker, treat: str = "ignore") -> ap.Alarm:
    alarm = planned(c)["Availability-hello"]
    assert isinstance(alarm, ap.Alarm)
    return dataclasses.replace(alarm, missing=ap.Missing(treat))


def heartbeat_alarm(c: Checker) -> ap.Alarm:
    alarm = planned(c)["CheckerHeartbeat"]
    assert isinstance(alarm, ap.Alarm)
    return alarm


def period_breaches(alarm: ap.Alarm, values: Sequence[bool]) -> bool | None:
    """A period of one metric's probes (True healthy), as the alarm reads it."""
    assert isinstance(alarm.metric, ap.Metric)
    return alarm.datapoint({"": ap.statistic(alarm.metric.statistic, [1.0 if ok else 0.0 for ok in values])})


def replay(
    data: Iterable[Datum],
    alarm: ap.Alarm,
    *,
    range_periods: int,
    reading: str,
    until: float,
    history_from: float = 0.0,
) -> list[tuple[float, str]]:
    """The alarm's state after each evaluation, as (time, state).

    It is evaluated whenever a datapoint becomes readable and at every period boundary (only
    at boundaries when the range ends with the last complete period). Periods before
    `history_from` hold healthy data: the metric existed before the replay starts.
    """
    return replays(data, alarm, ranges=(range_periods,), reading=reading, until=until, history_from=history_from)[
        range_periods
    ]


def replays(
    data: Iterable[Datum],
    alarm: ap.Alarm,
    *,
    ranges: Iterable[int],
    reading: str,
    until: float,
    history_from: float = 0.0,
) -> dict[int, list[tuple[float, str]]]:
    """`replay` for each evaluation range (in periods) of `ranges`, the arrivals read once."""
    p = alarm.metric.period
    ranges = tuple(ranges)
    widest = max(ranges)
    arrivals = sorted(data, key=lambda d: d.readable_at)
    first_bucket = math.floor(history_from / p)
    boundaries = {float(b * p) for b in range(first_bucket, int(until // p) + 1)}
    if reading == "complete periods":
        times = sorted(boundaries)
    else:
        times = sorted(boundaries | {d.readable_at for d in arrivals if d.readable_at <= until})
    state = dict.fromkeys(ranges, OK)
    states: dict[int, list[tuple[float, str]]] = {r: [] for r in ranges}
    buckets: dict[int, list[bool]] = {}
    breaching: dict[int, bool] = {}  # per bucket, as of the datapoints readable so far
    evaluated: list[bool | None] | None = None
    i = 0
    for t in times:
        while i < len(arrivals) and arrivals[i].readable_at <= t:
            b = math.floor(arrivals[i].slot / p)
            buckets.setdefault(b, []).append(arrivals[i].ok)
            breaching[b] = bool(period_breaches(alarm, buckets[b]))
            i += 1
        last = math.floor(t / p) - (1 if reading == "complete periods" else 0)
        values = [False if b < first_bucket else breaching.get(b) for b in range(last - widest + 1, last + 1)]
        if values != evaluated:  # the same values give the same state again (evaluate is idempotent)
            for r in ranges:
                state[r] = evaluate(
                    values[widest - r :], n=alarm.periods, m=alarm.datapoints, treat=alarm.missing, state=state[r]
                )
            evaluated = values
        for r in ranges:
            states[r].append((t, state[r]))
    return states


def every_reading(alarm: ap.Alarm) -> list[tuple[int, str]]:
    return [(r, reading) for r in range(alarm.periods, 2 * alarm.periods + 1) for reading in READINGS]


# --- what the tests and the report need ---------------------------------------------------------


def outage_offsets(c: Checker) -> list[float]:
    """Outage starts (or ends) at every second of an invocation, and just after and before each slot."""
    base = 3 * c.schedule
    grid = timing.slot_offset(c.interval)
    offsets = {base + grid + s + d for s in range(0, c.schedule, c.interval) for d in (0.001, c.interval - 0.001)}
    offsets |= {base + s + 0.5 for s in range(c.schedule)}
    return sorted(offsets)


def first(states: list[tuple[float, str]], wanted: str, after: float) -> float | None:
    return next((t for t, s in states if t >= after and s == wanted), None)


def outage_scenario(c: Checker, start: float, end: float, cold_at: float | None) -> Scenario:
    """An outage [start, end); a cold start in the invocation running at `cold_at`, if given."""
    cold = {0} if cold_at is None else {0, int(cold_at // c.schedule)}
    return Scenario(c, outage=(start, end), cold=frozenset(cold), invocations=math.ceil(end / c.schedule) + 5)


def detection_and_recovery(tl: Timeline, alarm: ap.Alarm, range_periods: int, reading: str) -> tuple[float, float]:
    """Seconds from the outage's start to ALARM and from its end to OK; asserts there is no flapping."""
    return every_detection_and_recovery(tl, alarm, (range_periods,), reading)[0]


def every_detection_and_recovery(
    tl: Timeline, alarm: ap.Alarm, ranges: Iterable[int], reading: str
) -> list[tuple[float, float]]:
    """`detection_and_recovery` for each evaluation range of `ranges`."""
    assert tl.scenario.outage is not None
    start, end = tl.scenario.outage
    until = end + 3 * tl.scenario.checker.schedule
    replayed = replays(tl.data, alarm, ranges=ranges, reading=reading, until=until)
    return [_detected(states, start, end) for states in replayed.values()]


def outage_timelines(c: Checker) -> Iterable[tuple[str, Timeline]]:
    """Outages that start, and outages that end, at every offset; warm, or with a cold start where
    the change happens or in the invocation after it. Each one spans several invocations."""
    duration = 2 * c.schedule + 5 * c.interval
    for offset in outage_offsets(c):
        for cold_at in (None, offset, offset + c.schedule):
            yield "detection", timeline(outage_scenario(c, offset, offset + duration, cold_at))
            end = offset + duration
            yield "recovery", timeline(outage_scenario(c, offset, end, None if cold_at is None else cold_at + duration))


def worst_cases(c: Checker, reading: str = "open period") -> dict[str, float]:
    """Worst detection and recovery over every outage timeline and every range of N..2N periods."""
    alarm = availability_alarm(c)
    worst = {"detection": 0.0, "recovery": 0.0}
    for kind, tl in outage_timelines(c):
        for d, r in every_detection_and_recovery(tl, alarm, range(alarm.periods, 2 * alarm.periods + 1), reading):
            worst[kind] = max(worst[kind], d if kind == "detection" else r)
    return worst


def settles(states: list[tuple[float, str]], wanted: str, since: float, until: float) -> float | None:
    """Seconds from `since` until the alarm is `wanted` at every evaluation up to `until` (0 if it
    already was); None if it is not `wanted` at the last evaluation before `until`."""
    window = [(t, s) for t, s in states if t < until]
    if not window or window[-1][1] != wanted:
        return None
    last_other = max((i for i, (_, s) in enumerate(window) if s != wanted), default=None)
    if last_other is None:
        return 0.0
    return max(0.0, window[last_other + 1][0] - since)


@dataclass(frozen=True)
class Flapping:
    """A seeded random run of failing and passing probes, then a change that lasts; cold starts,
    and warm environments taking turns (each knows only what it published itself)."""

    scenario: Scenario
    change: float  # when the lasting change starts: an outage ("detection") or the service up ("recovery")
    kind: str
    until: float

    @staticmethod
    def make(c: Checker, seed: int, kind: str) -> Flapping:
        rng = random.Random(f"{c}-{seed}-{kind}")
        first = 2 * c.schedule + timing.slot_offset(c.interval)  # two quiet invocations of history first
        slots = [first + i * c.interval for i in range(rng.randint(2, 2 * c.schedule // c.interval + 2))]
        failing = [s for s in slots if rng.random() < rng.choice((0.3, 0.5, 0.7))]
        if kind == "recovery":
            failing = sorted(set(failing) | {slots[-1]})
        flaps = tuple((s - 0.5, s + 0.5) for s in failing)
        change = slots[-1] + 0.5 + rng.uniform(0, c.interval - 1)  # anywhere before the next slot
        outage = (change, change + 2 * c.schedule + rng.uniform(0, c.schedule)) if kind == "detection" else None
        end = outage[1] if outage else change
        until = end + 3 * c.schedule
        invocations = math.ceil(until / c.schedule) + 1
        cold = frozenset({0} | {k for k in range(1, invocations) if rng.random() < 0.2})
        envs = tuple(rng.choice((0, 1, 2)) if rng.random() < 0.3 else 0 for _ in range(invocations))
        if kind == "recovery":
            change = slots[-1] + 0.5  # the last failing probe's period is over: the service is up from here
        scenario = Scenario(c, outage=outage, flaps=flaps, cold=cold, invocations=invocations, environments=envs)
        return Flapping(scenario, change, kind, until)

    def times(self, states: list[tuple[float, str]]) -> dict[str, float | None]:
        """Seconds from the lasting change to the alarm settling, for detection also to OK after it,
        in the alarm's states replayed up to `until`."""
        if self.kind == "recovery":
            return {"recovery": settles(states, OK, self.change, self.until)}
        assert self.scenario.outage is not None
        end = self.scenario.outage[1]
        return {"detection": settles(states, ALARM, self.change, end), "recovery": settles(states, OK, end, self.until)}


def flapping_worst(
    c: Checker, seeds: int, reading: str = "open period", monitor: type[Monitor] = Monitor
) -> dict[str, float]:
    """Worst settling times over seeded flapping timelines and every range of N..2N; inf if one never settles."""
    alarm = availability_alarm(c)
    worst = {"detection": 0.0, "recovery": 0.0}
    for seed in range(seeds):
        for kind in ("detection", "recovery"):
            f = Flapping.make(c, seed, kind)
            tl = timeline(f.scenario, monitor)
            ranges = range(alarm.periods, 2 * alarm.periods + 1)
            for states in replays(tl.data, alarm, ranges=ranges, reading=reading, until=f.until).values():
                for name, t in f.times(states).items():
                    worst[name] = max(worst[name], math.inf if t is None else t)
    return worst


def burn_alert(
    data: Sequence[Datum],
    *,
    budget: float,
    windows: tuple[float, float],
    burn: float,
    reading: str,
    evaluate_from: float,
    until: float,
) -> float | None:
    """When a multi-window burn-rate alert (both windows above `burn`) first fires, evaluated every minute.

    "sliding": each window is the last W seconds at the evaluation (CloudWatch's default
    SlidingWindow, "Alarm evaluation window" in the User Guide); "wall clock": the last complete
    W-second period aligned to the clock (WallClockWindow).
    """
    arrivals = sorted(data, key=lambda d: d.readable_at)
    t = math.ceil(evaluate_from / 60) * 60
    while t <= until:
        breaching = []
        for w in windows:
            end = t if reading == "sliding" else math.floor(t / w) * w
            seen = [d.ok for d in arrivals if d.readable_at <= t and end - w <= d.slot < end]
            breaching.append(bool(seen) and (1 - sum(seen) / len(seen)) / budget > burn)
        if all(breaching):
            return float(t)
        t += 60
    return None


# --- several locations, and the quorum alarm's metric math ------------------------------------
#
# The quorum alarm (cdk_app/monitoring.py) evaluates, per period, the number of locations whose
# probe failed: sum over locations of (1 - FILL(availability, 1)). What AWS documents for FILL is
# that it fills missing values; where the filled series starts and ends, and what a sum does with
# an operand that has no value, it does not say. Each reading is replayed:
#   "fill"  - every period of the range has a value; a location that has not published is healthy;
#   "union" - a period has a value once any location has published for it;
#   "all"   - a period has a value only once every location has published for it.
FILL_READINGS = ("fill", "union", "all")


def quorum_alarm(c: Checker, k: int, n: int = 3) -> ap.Alarm:
    """The quorum alarm of n checker regions, k of them failing in a period to count it."""
    alarm = planned(c, n, k)["Quorum-hello"]
    assert isinstance(alarm, ap.Alarm)
    return alarm


def located(
    c: Checker,
    phases: Sequence[float],
    outage: tuple[float, float] | None,
    *,
    seen_by: Iterable[int] | None = None,
    invocations: int = 12,
    remote_publish: float = 0.0,
) -> list[Timeline]:
    """One timeline per location, each with its own invocation phase; `seen_by`: the locations
    that see the outage (all by default), the others find the target healthy; `remote_publish`:
    how long each publish of a location other than the first (the home one) takes."""
    seeing = set(range(len(phases))) if seen_by is None else set(seen_by)
    return [
        timeline(
            Scenario(
                c,
                outage=outage if i in seeing else None,
                invocations=invocations,
                publish_seconds=remote_publish if i else 0.0,
            ),
            location=f"loc{i}",
            phase=phase,
        )
        for i, phase in enumerate(phases)
    ]


def quorum_replay(
    timelines: Sequence[Timeline],
    alarm: ap.Alarm,
    *,
    range_periods: int,
    reading: str,
    fill: str,
    until: float,
) -> list[tuple[float, str]]:
    """The quorum alarm's state after each evaluation, evaluated as `replay` does."""
    replayed = quorum_replays(timelines, alarm, ranges=(range_periods,), fills=(fill,), reading=reading, until=until)
    return replayed[range_periods, fill]


def quorum_replays(
    timelines: Sequence[Timeline],
    alarm: ap.Alarm,
    *,
    ranges: Iterable[int],
    fills: Iterable[str],
    reading: str,
    until: float,
) -> dict[tuple[int, str], list[tuple[float, str]]]:
    """`quorum_replay` for each evaluation range of `ranges` and each FILL reading of `fills`,
    the arrivals read once."""
    assert isinstance(alarm.metric, ap.Math)
    ids = [name for name, _ in alarm.metric.metrics]  # one per location, in the timelines' order
    assert len(ids) == len(timelines)
    p = alarm.metric.period
    ranges, fills = tuple(ranges), tuple(fills)
    widest = max(ranges)
    arrivals = sorted(((d, i) for i, tl in enumerate(timelines) for d in tl.data), key=lambda x: x[0].readable_at)
    boundaries = {float(b * p) for b in range(0, int(until // p) + 1)}
    if reading == "complete periods":
        times = sorted(boundaries)
    else:
        times = sorted(boundaries | {d.readable_at for d, _ in arrivals if d.readable_at <= until})
    published: dict[int, dict[int, list[bool]]] = {}  # bucket -> location -> its probes (True healthy)
    keys = [(r, fill) for r in ranges for fill in fills]
    state = dict.fromkeys(keys, OK)
    states: dict[tuple[int, str], list[tuple[float, str]]] = {key: [] for key in keys}
    evaluated: dict[str, list[bool | None]] = {}
    datapoints: dict[tuple[tuple[bool, ...], ...], bool | None] = {}
    j = 0
    for t in times:
        while j < len(arrivals) and arrivals[j][0].readable_at <= t:
            d, i = arrivals[j]
            b = math.floor(d.slot / p)
            published.setdefault(b, {}).setdefault(i, []).append(d.ok)
            j += 1
        last = math.floor(t / p) - (1 if reading == "complete periods" else 0)
        window = range(last - widest + 1, last + 1)
        have = [len(published.get(b, ())) for b in window]
        # The alarm's own expression over each location's Minimum (None: not published yet),
        # evaluated once per distinct set of probes (most periods repeat one: all healthy, all down).
        failed = []
        for b in window:
            probes = tuple(tuple(published.get(b, {}).get(i, ())) for i in range(len(timelines)))
            if probes not in datapoints:
                minimum = {ids[i]: ap.statistic("Minimum", [float(ok) for ok in oks]) for i, oks in enumerate(probes)}
                datapoints[probes] = alarm.datapoint(minimum)
            failed.append(datapoints[probes])
        for fill in fills:
            values: list[bool | None] = [
                f if fill == "fill" or (h > 0 if fill == "union" else h == len(timelines)) else None
                for h, f in zip(have, failed, strict=True)
            ]
            if values != evaluated.get(fill):  # the same values give the same state (evaluate is idempotent)
                for r in ranges:
                    key = (r, fill)
                    state[key] = evaluate(
                        values[widest - r :], n=alarm.periods, m=alarm.datapoints, treat=alarm.missing, state=state[key]
                    )
                evaluated[fill] = values
            for r in ranges:
                states[r, fill].append((t, state[r, fill]))
    return states


def location_phases(n: int) -> list[tuple[float, ...]]:
    """Invocation phases of the other locations relative to the home one, at points across a slot."""
    grid = (0.0, 3.5, 7.0, 9.9)
    return [(0.0, *rest) for rest in itertools.product(grid, repeat=n - 1)]


def quorum_worst_cases(
    c: Checker, fills: Sequence[str] = ("fill", "union"), n: int = 3, k: int = 2, remote_publish: float = 0.0
) -> dict[str, float]:
    """Worst detection and recovery of the quorum alarm, all locations seeing an outage that
    starts (and ends) anywhere in a slot, for every phase set, range and FILL reading; each
    publish from another region taking `remote_publish` seconds."""
    alarm = quorum_alarm(c, k, n)
    worst = {"detection": 0.0, "recovery": 0.0}
    duration = 2 * c.schedule + 5 * c.interval
    for phases in location_phases(n):
        for start in [3 * c.schedule + x * c.interval / 8 + 0.01 for x in range(8 * c.schedule // c.interval)]:
            tls = located(
                c,
                phases,
                (start, start + duration),
                invocations=math.ceil((start + duration) / c.schedule) + 4,
                remote_publish=remote_publish,
            )
            until = start + duration + 2 * c.schedule
            ranges = range(alarm.periods, 2 * alarm.periods + 1)
            replayed = quorum_replays(tls, alarm, ranges=ranges, fills=fills, reading="open period", until=until)
            for states in replayed.values():
                d, r = _detected(states, start, start + duration)
                worst["detection"] = max(worst["detection"], d)
                worst["recovery"] = max(worst["recovery"], r)
    return worst


def _detected(states: list[tuple[float, str]], start: float, end: float) -> tuple[float, float]:
    assert all(s != ALARM for t, s in states if t < start), "ALARM before the outage"
    alarm_at = first(states, ALARM, start)
    assert alarm_at is not None and alarm_at < end, "no ALARM during the outage"
    assert all(s == ALARM for t, s in states if alarm_at <= t < end), "the alarm cleared during the outage"
    ok_at = first(states, OK, end)
    assert ok_at is not None, "no OK after the outage"
    return alarm_at - start, ok_at - end


QUORUMS_REPORTED = ((3, 2), (2, 2), (3, 3))

SETTINGS_REPORTED = (
    Checker(),  # the defaults
    Checker(interval=30, confirm=2, timeout=10),
    Checker(interval=10, confirm=2, timeout=3, schedule=120),
)


FLAPPING_SEEDS = 100


def main() -> None:
    c = Checker()
    for n, k in QUORUMS_REPORTED:
        w = quorum_worst_cases(c, n=n, k=k)
        bound = timing.worst_case_quorum_detection(
            interval=c.interval, confirm=c.confirm, timeout=c.timeout, locations=n, quorum=k
        )
        w_all = quorum_worst_cases(c, fills=("all",), n=n, k=k)
        print(
            f"quorum {k} of {n} locations, defaults: stated bound {bound:g}s; simulated worst detection "
            f"{w['detection']:.2f}s, recovery {w['recovery']:.2f}s (FILL read as 'fill' or 'union'); "
            f"{w_all['detection']:.2f}s / {w_all['recovery']:.2f}s if a period counts only once every "
            "location published it ('all')"
        )
    for c in SETTINGS_REPORTED:
        w = worst_cases(c)
        w_complete = worst_cases(c, "complete periods")
        print(
            f"interval={c.interval}s confirm={c.confirm} timeout={c.timeout:g}s schedule={c.schedule}s: "
            f"stated bound {c.bound:g}s; simulated worst detection {w['detection']:.2f}s, "
            f"recovery {w['recovery']:.2f}s (range ending with the open period); "
            f"{w_complete['detection']:.2f}s / {w_complete['recovery']:.2f}s evaluated only on complete periods"
        )
        f, i = flapping_worst(c, FLAPPING_SEEDS), flapping_worst(c, FLAPPING_SEEDS, monitor=InstantMonitor)
        print(
            f"  after {FLAPPING_SEEDS} seeded flapping timelines: detection {f['detection']:.2f}s, recovery "
            f"{f['recovery']:.2f}s (every probe published at once: {i['detection']:.2f}s / {i['recovery']:.2f}s)"
        )


if __name__ == "__main__":
    main()
