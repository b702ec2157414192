"""The bounds the drill holds CloudWatch to (docs/alarms.md), and the clock it reads them on."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from cdk_app.alarm_plan import FAST_BURN
from checker_lambda import timing

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
