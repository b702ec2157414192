"""Worst-case detection and recovery times of the checker plus its availability alarm.

How the checker behaves (checker_lambda/run.py): an invocation starts every `schedule` seconds
and probes at `interval` spacing. It publishes once, either at the end, or as soon as
`confirm` consecutive probes of this invocation agree on a state (up or down) different from
the last one it published; then it stops. The availability alarm has period = interval,
datapoints to alarm = confirm, evaluation periods = 2*confirm - 1, missing data = breaching.

Worst case, from the instant the outage starts (or ends) to the datapoints reaching
CloudWatch, not counting CloudWatch's own evaluation delay:

- detection: the outage starts right after the probe `confirm` slots before the end of an
  invocation; that invocation sees confirm-1 failures (not enough), and the next one has to
  count `confirm` of its own:  D = (2*confirm - 1) * interval + timeout
- recovery: either the same straddling case, or the invocation stopped early when it
  confirmed the outage and nothing probes until the next invocation, which then counts
  `confirm` successes:  R = max(schedule, (2*confirm - 1) * interval + timeout)
"""

from __future__ import annotations


def worst_case_detection(*, interval: float, confirm: int, timeout: float) -> float:
    return (2 * confirm - 1) * interval + timeout


def worst_case_recovery(*, interval: float, confirm: int, timeout: float, schedule: float) -> float:
    return max(schedule, worst_case_detection(interval=interval, confirm=confirm, timeout=timeout))


def evaluation_periods(confirm: int) -> int:
    """M of N with N = 2M-1: ALARM needs M failures, OK needs M successes among the last N."""
    return 2 * confirm - 1
