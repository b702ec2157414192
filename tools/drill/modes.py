"""The two drills: force the availability alarm (alarm mode) or make the listener answer 503 (outage
mode), then time the composite's ALARM, its actions and its OK against the bounds."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tools.drill.alarms import Action, Alarms, Seen, Watch
from tools.drill.errors import DrillError, one_line
from tools.drill.limits import ACTION_SECONDS, POLL_SECONDS, Bound, Bounds, Clock, server_time
from tools.drill.listener import FIXED_503, is_drill, restore, signals_raise, write_undo

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
                print(f"error: {one_line(exc)}; the outage is still on: run make drill-undo", file=sys.stderr)
            raise
    return d.report()
