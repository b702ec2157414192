"""The checker's timing contract: how long an invocation may run, the alarms' shapes, the bounds.

How the checker behaves (checker_lambda/run.py): an invocation starts every `schedule` seconds
and probes every slot of its `schedule / interval` slots. A probe is published at once, with
everything pending, when the state the alarm holds from the published probes is unknown or
when the probes so far decide another one (run.py, `standing` and `decided`); the others
wait for the end of the invocation.

The availability alarm (cdk_app/monitoring.py) has period = interval, `confirm` datapoints of
`2*confirm - 1`, missing data ignored; a heartbeat alarm on the count of datapoints per minute
pages when the checker stops reporting.

Stated bound, from the start (or end) of an outage to the datapoints that make the alarm go to
ALARM (or OK) being readable in CloudWatch: the first slot after the change and confirm-1 more
slots, the last of which may take the whole probe timeout, then a publish at once:

    confirm * interval + timeout

(35 s at the defaults). CloudWatch's own evaluation cadence comes on top. tests/simulate.py
replays every offset through the real loop to check it; `python -m tests.simulate` prints the
simulated worst cases.
"""

from __future__ import annotations

import math

LAMBDA_MAX_TIMEOUT = 900  # seconds, AWS Lambda's limit


def worst_case_detection(*, interval: float, confirm: int, timeout: float) -> float:
    return confirm * interval + timeout


def worst_case_quorum_detection(*, interval: float, confirm: int, timeout: float, locations: int, quorum: int) -> float:
    """With several locations the quorum alarm counts the locations failing in the *same* period,
    each probing at its own phase of the period. Phases sorted, p(1) <= ... <= p(n): the period the
    outage starts in counts when the quorum-th latest phase is after the start, and the last of
    `confirm` periods is readable once the quorum-th earliest probe of it ends. So the single
    bound holds while p(quorum) <= p(n - quorum + 1), for any phases when quorum <= (n + 1) / 2
    (a majority of an odd number of locations); otherwise up to one interval more.
    tests/test_alarm_replay.py simulates every phase."""
    extra = 0 if quorum <= (locations + 1) / 2 else interval
    return worst_case_detection(interval=interval, confirm=confirm, timeout=timeout) + extra


def worst_case_recovery(*, interval: float, confirm: int, timeout: float) -> float:
    return worst_case_detection(interval=interval, confirm=confirm, timeout=timeout)


def evaluation_periods(confirm: int) -> int:
    """M of N with N = 2M-1: ALARM needs M failures, OK needs M successes among the last N."""
    return 2 * confirm - 1


def slot_offset(interval: float) -> float:
    """Slots sit this far after the scheduled time, so a late start does not make a slot late.

    EventBridge documents that a target may be invoked "several seconds" after the scheduled
    time; a cold start adds its init. An invocation that starts later than this probes its
    first slot at once, late by the excess.
    """
    return min(interval / 2, 5.0)


def slot_tolerance(interval: float) -> float:
    """How late a slot may still be probed: until the end of the alarm period it is stamped in.

    A probe is stamped with its slot, so one that starts later than this would be counted in a
    period it did not run in; it is skipped instead (a gap, which the availability alarm ignores).
    """
    return interval - slot_offset(interval)


def first_slot_delay(*, interval: float, read_budget: float) -> float:
    """How late the first slot can be for an invocation that starts on time and first reads its URL
    parameters (checker_lambda/urls.py) at their slowest: the slot offset absorbs the read."""
    return max(0.0, read_budget - slot_offset(interval))


def invocation_timeout(
    *, schedule: float, interval: float, slowest_probe: float, publish_budget: float, read_budget: float = 0.0
) -> int:
    """Seconds an invocation needs so that its last slot is probed and published.

    The last slot may start late by a news publish after the slot before it (both at their
    slowest), or, when it is also the first, by the URL read before it (`read_budget`), as long
    as that is within `slot_tolerance` (later, it is skipped); then it takes its probe and the
    final publish, both at their slowest. More than the schedule: an invocation may, at worst,
    overlap the next one by a few seconds.
    """
    step = slowest_probe + publish_budget
    read_late = first_slot_delay(interval=interval, read_budget=read_budget)
    late = min(slot_tolerance(interval), max(0.0, step - interval, read_late))
    last_start = schedule - interval + slot_offset(interval) + late
    return math.ceil(last_start + step)


def heartbeat_periods(schedule: float) -> int:
    """Minutes without a single datapoint that mean the checker stopped reporting.

    A healthy checker leaves at most the minutes of one invocation unpublished while it runs,
    the minutes of one more when an invocation is skipped or its publish is lost, and one minute
    when its publish lands after the minute ends: 2 * schedule minutes + 1. One more, so that
    none of that is ever read as silence.
    """
    return 2 * math.ceil(schedule / 60) + 2
