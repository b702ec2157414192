"""The alarms as synthesized, fed the real checker's datapoints as they become readable.

tests/simulate.py runs the real run loop on a fake clock and evaluates alarms by CloudWatch's
documented rules, for every evaluation range from N to 2N periods and both places the range
may end (the open period, or the last complete one): AWS documents neither.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from cdk_app import alarm_plan as ap
from checker_lambda import contract, timing
from tests import simulate
from tests.infra import resources, synth
from tests.simulate import ALARM, INSUFFICIENT, OK, Checker, Scenario, evaluate, replay, timeline

DEFAULTS = Checker()


# --- the evaluator is CloudWatch's documented behaviour -------------------------------------

# "Configuring how CloudWatch alarms treat missing data", the two example tables: evaluation
# range 5, Evaluation Periods 3, Datapoints to Alarm 3 (first table) or 2 (second); most recent
# datapoint on the right; columns MISSING, IGNORE, BREACHING, NOT BREACHING. None = "Retain
# current state".
DOCUMENTED = [
    (3, "0 - X - X", (OK, OK, OK, OK)),
    (3, "0 - - - -", (OK, OK, OK, OK)),
    (3, "- - - - -", (INSUFFICIENT, None, ALARM, OK)),
    (3, "0 X X - X", (ALARM, ALARM, ALARM, ALARM)),
    (3, "- - X - -", (ALARM, None, ALARM, OK)),
    (2, "0 - X - X", (ALARM, ALARM, ALARM, ALARM)),
    (2, "0 0 X 0 X", (ALARM, ALARM, ALARM, ALARM)),
    (2, "0 - X - -", (OK, OK, ALARM, OK)),
    (2, "- - - - 0", (OK, OK, ALARM, OK)),
    (2, "- - - X -", (ALARM, None, ALARM, OK)),
]


@pytest.mark.parametrize(("m", "row", "expected"), DOCUMENTED)
def test_the_evaluator_reproduces_the_documented_examples(m: int, row: str, expected: tuple) -> None:
    values = [{"0": False, "X": True, "-": None}[c] for c in row.split()]
    for treat, want in zip(("missing", "ignore", "breaching", "notBreaching"), expected, strict=True):
        for state in (OK, ALARM):
            assert evaluate(values, n=3, m=m, treat=treat, state=state) == (want or state), (row, treat, state)


def test_evaluating_the_same_values_again_keeps_the_state_the_replays_rely_on_it() -> None:
    for size in range(1, 7):
        for values in itertools.product((True, False, None), repeat=size):
            for n in range(1, size + 1):
                for m in range(1, n + 1):
                    for treat in ("missing", "ignore", "breaching", "notBreaching"):
                        for state in (OK, ALARM, INSUFFICIENT):
                            once = evaluate(values, n=n, m=m, treat=treat, state=state)
                            assert evaluate(values, n=n, m=m, treat=treat, state=once) == once


# --- the alarms, as synthesized ---------------------------------------------------------------


def synthesized(c: Checker) -> tuple[ap.Alarm, ap.Alarm]:
    """The availability and heartbeat alarms of the plan for these settings, which the stack
    built with them renders (tests/test_alarm_plan.py shows every alarm is rendered as planned)."""
    t = synth(
        probeIntervalSeconds=c.interval,
        confirmProbes=c.confirm,
        probeTimeoutSeconds=int(c.timeout) if float(c.timeout).is_integer() else c.timeout,  # 5 as cdk.json has it
        scheduleMinutes=c.schedule // 60,
    )
    fn = next(
        r["Properties"]
        for r in resources(t, "AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "checker_lambda.handler.handler"
    )
    assert fn["Timeout"] == c.run_for  # the simulation runs the loop with the deployed deadline
    return simulate.availability_alarm(c), simulate.heartbeat_alarm(c)


@pytest.fixture(
    scope="module", params=simulate.SETTINGS_REPORTED, ids=lambda c: f"{c.interval}s-{c.confirm}-{c.schedule}s"
)
def checker(request: pytest.FixtureRequest) -> tuple[Checker, ap.Alarm, ap.Alarm]:
    c = request.param
    return c, *synthesized(c)


def _states(tl: simulate.Timeline, alarm: ap.Alarm, until: float):
    for range_periods, reading in simulate.every_reading(alarm):
        yield (
            (range_periods, reading),
            replay(tl.data, alarm, range_periods=range_periods, reading=reading, until=until),
        )


def healthy(c: Checker) -> dict[str, Scenario]:
    k = 4  # an invocation well inside the replay
    return {
        "cold start": Scenario(c, cold=frozenset({0, k})),
        "warm": Scenario(c),
        "late publish": Scenario(c, slow_publishes=frozenset(range(0, 20, 3))),
        "skipped invocation": Scenario(c, skipped=frozenset({k})),
        # The cold start's first news publish fails; the next one (or the final one) carries it.
        "throttled publish retried": Scenario(c, throttled_publishes=frozenset({0})),
        "throttled final publish": Scenario(c, throttled_publishes=frozenset({k})),
        "late start": Scenario(c, cold=frozenset({0, k}), start_delay=4.0, cold_start_delay=8.0),
    }


@pytest.mark.parametrize("name", list(healthy(DEFAULTS)))
def test_no_healthy_timeline_leaves_a_slot_unprobed_or_wakes_the_heartbeat(checker, name: str) -> None:
    """The availability alarm is not replayed here: with every datapoint a success and missing
    data ignored, nothing could ever put it in ALARM. Gaps are what could page, through the heartbeat."""
    c, _, heartbeat = checker
    tl = timeline(healthy(c)[name])
    assert tl.data and all(d.ok for d in tl.data)
    if name in ("cold start", "warm", "late start", "throttled publish retried"):  # no slot unprobed
        slots = sorted(d.slot for d in tl.data)
        assert slots == [slots[0] + i * c.interval for i in range(len(slots))]
        assert len(slots) == tl.scenario.invocations * c.schedule // c.interval
    until = c.schedule * tl.scenario.invocations
    for reading, states in _states(tl, heartbeat, until):
        assert ALARM not in {s for _, s in states}, (name, reading)


def test_every_outage_alarms_and_clears_within_the_stated_bound(checker) -> None:
    """Outages starting and ending at every offset of an invocation, warm or cold, any range."""
    c, availability, heartbeat = checker
    worst = simulate.worst_cases(c)
    assert worst["detection"] <= c.bound and worst["recovery"] <= c.bound, worst
    assert worst["detection"] > c.bound - 0.1  # the bound is what happens, not a loose ceiling
    # Evaluated only on complete periods, CloudWatch's cadence adds at most one period.
    late = simulate.worst_cases(c, "complete periods")
    assert late["detection"] <= c.bound + c.interval and late["recovery"] <= c.bound + c.interval, late
    # The checker keeps reporting through an outage: the heartbeat stays quiet.
    tl = timeline(simulate.outage_scenario(c, 3 * c.schedule + 1, 6 * c.schedule, None))
    for reading, states in _states(tl, heartbeat, 9 * c.schedule):
        assert ALARM not in {s for _, s in states}, reading


def test_a_silent_checker_pages_through_the_heartbeat(checker) -> None:
    c, availability, heartbeat = checker
    tl = timeline(Scenario(c, invocations=20, skipped=frozenset(range(5, 20))))
    last = max(d.readable_at for d in tl.data)
    for reading, states in _states(tl, heartbeat, 20 * c.schedule):
        alarm_at = simulate.first(states, ALARM, 0)
        # Somewhere between N and 2N+1 minutes of silence, depending on the evaluation range.
        assert alarm_at is not None and alarm_at - last <= (2 * heartbeat.periods + 1) * 60, reading


def test_the_heartbeat_pages_through_the_service_down_composite() -> None:
    t = synth()
    alarms = resources(t, "AWS::CloudWatch::Alarm")
    [(logical_id, props)] = [
        (k, a["Properties"]) for k, a in alarms.items() if a["Properties"].get("Statistic") == "SampleCount"
    ]
    assert props["MetricName"] == contract.AVAILABILITY and props["Period"] == 60  # standard resolution
    assert props["ComparisonOperator"] == "LessThanThreshold" and props["Threshold"] == 1
    assert props["TreatMissingData"] == "breaching" and "AlarmActions" not in props
    [down] = [
        c["Properties"]
        for c in resources(t, "AWS::CloudWatch::CompositeAlarm").values()
        if c["Properties"].get("AlarmName") == "hello-service-down"
    ]
    assert logical_id in str(down["AlarmRule"])


# --- why not the other treatments -------------------------------------------------------------


def test_missing_data_as_breaching_would_page_a_healthy_service() -> None:
    """The old availability alarm: between two batches the newest periods are still unpublished."""
    alarm = simulate.availability_alarm(DEFAULTS, treat="breaching")
    tl = timeline(Scenario(DEFAULTS))
    states = replay(tl.data, alarm, range_periods=alarm.periods, reading="open period", until=600)
    assert ALARM in {s for _, s in states}


def test_missing_data_as_not_breaching_would_clear_in_the_middle_of_an_outage() -> None:
    alarm = simulate.availability_alarm(DEFAULTS, treat="notBreaching")
    tl = timeline(simulate.outage_scenario(DEFAULTS, 200.5, 400.5, None))
    with pytest.raises(AssertionError, match="cleared during the outage"):
        simulate.detection_and_recovery(tl, alarm, alarm.periods, "open period")


# --- burn-rate windows are windows ---------------------------------------------------------------


def _burn_windows(t) -> dict[int, dict[str, Any]]:
    """The burn-rate window alarms, by the period (seconds) of the availability they average."""
    out = {}
    for a in resources(t, "AWS::CloudWatch::Alarm").values():
        metrics = a["Properties"].get("Metrics") or []
        stats = [m["MetricStat"] for m in metrics if "MetricStat" in m]
        if stats and stats[0]["Metric"]["MetricName"] == contract.AVAILABILITY and stats[0]["Stat"] == "Average":
            out[stats[0]["Period"]] = a["Properties"]
    return out


@pytest.fixture(scope="module")
def burn_windows() -> dict[int, dict[str, Any]]:
    return _burn_windows(synth())


def test_burn_rate_windows_slide_with_the_clock_not_with_the_hour(burn_windows) -> None:
    assert set(burn_windows) == {3600, 300, 21600, 1800}
    for period, props in burn_windows.items():
        # One datapoint of the whole window, re-evaluated as the window slides (not clock-aligned).
        assert props["EvaluationPeriods"] == 1, period
        assert props["EvaluationWindow"] == {"SlidingWindow": {}}, period


# Google SRE workbook, "Alerting on SLOs": page on 2% of a 30-day budget spent in an hour
# (burn 14.4 over 1 h and 5 min), ticket on 5% in six hours (burn 6 over 6 h and 30 min).
WORKBOOK = [(3600, 300, 0.02), (21600, 1800, 0.05)]


@pytest.mark.parametrize(("long", "short", "spent"), WORKBOOK)
def test_a_full_outage_trips_the_burn_alert_when_the_workbook_says_wherever_the_hour_falls(
    burn_windows, long: int, short: int, spent: float
) -> None:
    budget = 0.001  # the default 99.9% SLO
    burn = burn_windows[long]["Threshold"]
    assert burn_windows[short]["Threshold"] == burn
    intended = spent * 30 * 86_400 * budget  # seconds of full outage that spend that much budget
    late: list[float] = []
    for offset in range(0, 3600, 7 * 60 + 13):  # the outage starts anywhere in the clock hour
        start = long + 600 + offset + 0.5  # with a full window of healthy history before it
        tl = timeline(simulate.outage_scenario(DEFAULTS, start, start + intended + 900, None))
        at = simulate.burn_alert(
            tl.data,
            budget=budget,
            windows=(long, short),
            burn=burn,
            reading="sliding",
            evaluate_from=start - 300,
            until=start + 1800,
        )
        # Late by at most one checker run (its batch) and one minute of evaluation.
        assert at is not None and 0 < at - start <= intended + DEFAULTS.schedule + 60, (offset, at)
        if long == 3600:
            wall = simulate.burn_alert(
                tl.data,
                budget=budget,
                windows=(long, short),
                burn=burn,
                reading="wall clock",
                evaluate_from=start - 300,
                until=start + 2 * long,
            )
            late.append(float("inf") if wall is None else wall - start)
    if late:  # clock-aligned periods wait for the hour to end (and by then the 5 min one may be quiet)
        assert max(late) > 30 * 60


# --- flapping, then a change that lasts ----------------------------------------------------------


def test_an_outage_after_flapping_alarms_within_the_bound_for_every_range() -> None:
    """Review repro: probes F F F, ok ok, F F, ok, then an outage from the slot at 245 s. The
    published probes left the alarm OK while the checker's own verdict was still "down", so the
    outage's failures were held to the end of the invocation (ALARM 55 s after it started)."""
    c = DEFAULTS
    flaps = tuple((s - 0.5, s + 0.5) for s in (165, 175, 185, 215, 225))
    start = 244.5
    tl = timeline(Scenario(c, outage=(start, start + 150), flaps=flaps, invocations=10))
    alarm = simulate.availability_alarm(c)
    for range_periods, reading in simulate.every_reading(alarm):
        states = replay(tl.data, alarm, range_periods=range_periods, reading=reading, until=start + 150)
        took = simulate.settles(states, ALARM, start, start + 150)
        limit = c.bound if reading == "open period" else c.bound + c.interval
        assert took is not None and took <= limit, (range_periods, reading, took)


@pytest.mark.parametrize("c", simulate.SETTINGS_REPORTED, ids=lambda c: f"{c.interval}s-{c.confirm}-{c.schedule}s")
def test_after_random_flapping_an_outage_or_a_recovery_settles_within_the_bound(c: Checker) -> None:
    """Seeded random flapping (cold starts included), then an outage or a recovery that lasts:
    the alarm is ALARM (or OK) from `confirm * interval + timeout` after the change on, for
    every range of N..2N periods, until the next change. Publishing every probe the moment it
    ends does no better in the worst case."""
    worst = simulate.flapping_worst(c, seeds=FLAPPING_SEEDS)
    assert worst["detection"] <= c.bound and worst["recovery"] <= c.bound, worst
    instant = simulate.flapping_worst(c, seeds=FLAPPING_SEEDS, monitor=simulate.InstantMonitor)
    assert all(worst[k] <= instant[k] + 1e-9 for k in worst), (worst, instant)
    late = simulate.flapping_worst(c, seeds=FLAPPING_SEEDS, reading="complete periods")
    assert late["detection"] <= c.bound + c.interval and late["recovery"] <= c.bound + c.interval, late


FLAPPING_SEEDS = 40


# --- several locations: the quorum alarm ----------------------------------------------------------

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


@pytest.fixture(scope="module")
def quorum() -> ap.Alarm:
    """The quorum alarm of three regions (a majority), as planned; tests/test_alarm_plan.py shows
    the stack renders it so."""
    return simulate.quorum_alarm(DEFAULTS, 2, len(REGIONS))


def test_the_quorum_alarm_pages_within_the_single_region_bound(quorum: ap.Alarm) -> None:
    """2 of 3 locations, each with its own invocation phase, an outage starting and ending
    anywhere in a slot, every evaluation range, FILL read as filling every period or only where
    some location published."""
    worst = simulate.quorum_worst_cases(DEFAULTS, n=3, k=2)
    bound = timing.worst_case_quorum_detection(
        interval=DEFAULTS.interval, confirm=DEFAULTS.confirm, timeout=DEFAULTS.timeout, locations=3, quorum=2
    )
    assert bound == DEFAULTS.bound  # a majority of three locations detects as fast as one region
    assert worst["detection"] <= bound and worst["recovery"] <= bound, worst
    assert worst["detection"] > bound - 0.1


def test_a_slow_publish_from_the_other_regions_adds_at_most_its_own_time() -> None:
    """The stated bound counts to the datapoints being sent; a publish across regions takes
    longer than at home (a new TLS connection at ~300 ms round trip: about 1 s, assumed). With
    every remote publish taking 1 s, the 2-of-3 quorum still detects within bound + 1 s."""
    slow = 1.0
    worst = simulate.quorum_worst_cases(DEFAULTS, fills=("fill",), n=3, k=2, remote_publish=slow)
    assert worst["detection"] <= DEFAULTS.bound + slow and worst["recovery"] <= DEFAULTS.bound + slow, worst


def test_a_quorum_of_all_locations_may_take_one_interval_more() -> None:
    worst = simulate.quorum_worst_cases(DEFAULTS, n=2, k=2)
    bound = timing.worst_case_quorum_detection(
        interval=DEFAULTS.interval, confirm=DEFAULTS.confirm, timeout=DEFAULTS.timeout, locations=2, quorum=2
    )
    assert DEFAULTS.bound < worst["detection"] <= bound, worst


@pytest.mark.parametrize("fill", simulate.FILL_READINGS)
@pytest.mark.parametrize("seen_by", [(), (0,), (1,), (2,)], ids=["healthy", "home alone", "eu alone", "ap alone"])
def test_fewer_locations_than_the_quorum_never_page(quorum: ap.Alarm, seen_by: tuple, fill: str) -> None:
    for phases in simulate.location_phases(3):
        tls = simulate.located(DEFAULTS, phases, (200.5, 500.5), seen_by=seen_by)
        for range_periods in range(quorum.periods, 2 * quorum.periods + 1):
            states = simulate.quorum_replay(
                tls, quorum, range_periods=range_periods, reading="open period", fill=fill, until=720
            )
            assert ALARM not in {s for _, s in states}, (phases, range_periods)


@pytest.mark.parametrize("seen_by", [(0, 1), (1, 2)])
def test_a_quorum_of_locations_pages_and_the_others_do_not_hold_it_back(quorum: ap.Alarm, seen_by: tuple) -> None:
    for phases in simulate.location_phases(3):
        tls = simulate.located(DEFAULTS, phases, (200.5, 500.5), seen_by=seen_by)
        for fill in ("fill", "union"):
            states = simulate.quorum_replay(
                tls, quorum, range_periods=quorum.periods, reading="open period", fill=fill, until=720
            )
            detection, _ = simulate._detected(states, 200.5, 500.5)
            assert detection <= DEFAULTS.bound, (phases, fill)


def test_without_every_failure_published_at_once_the_quorum_would_clear_in_an_outage(quorum: ap.Alarm) -> None:
    """The old rule (only news at once) leaves an outage's later failures unpublished until the end
    of the run; read as healthy by the FILL, the quorum alarm goes OK in the middle of the outage."""
    tls = [
        simulate.timeline(simulate.Scenario(DEFAULTS, outage=(200.5, 500.5), invocations=12), location=None, phase=p)
        for p in (0.0, 3.5, 7.0)
    ]
    states = simulate.quorum_replay(
        tls, quorum, range_periods=quorum.periods, reading="open period", fill="fill", until=720
    )
    with pytest.raises(AssertionError, match="cleared during the outage"):
        simulate._detected(states, 200.5, 500.5)
