"""The invocation loop: slots, early publish on a confirmed change, deadline, one publish."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from checker_lambda import timing
from checker_lambda.contract import Reason
from checker_lambda.probe import ProbeResult
from checker_lambda.run import PUBLISH_MARGIN_SECONDS, Monitor, first_slot
from checker_lambda.settings import Settings, Target


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


class ScriptedProber:
    """Answers from a script of True/False per call; each probe takes `cost` seconds."""

    def __init__(self, clock: FakeClock, script: list[bool], cost: float = 0.1) -> None:
        self.clock, self.script, self.cost = clock, list(script), cost
        self.calls: list[float] = []

    def probe(self, t: Target) -> ProbeResult:
        self.calls.append(self.clock.now)
        ok = self.script.pop(0) if self.script else True
        self.clock.now += self.cost
        result = ProbeResult(target=t.name, url=t.url, started_at=self.clock.now, ok=ok, status=200 if ok else None)
        result.reason = None if ok else Reason.REFUSED
        result.phases["total"] = self.cost * 1000
        return result


SETTINGS = Settings(targets=(Target(name="hello", url="http://x/hello", timeout=5),), interval=10, confirm=3)


def make(script: list[bool], start: float = 1_000_020.0):
    clock = FakeClock(start)
    prober = ScriptedProber(clock, script)
    published: list[Sequence[ProbeResult]] = []
    monitor = Monitor(SETTINGS, prober, published.append, clock=clock.time, sleep=clock.sleep, log=lambda r: None)  # type: ignore[arg-type]
    return monitor, prober, clock, published


def test_healthy_invocation_probes_every_slot_and_publishes_once_at_the_end() -> None:
    monitor, prober, clock, published = make([True] * 6)
    monitor.verdicts["hello"] = True  # already known up
    results = monitor.run(start=clock.now, deadline=clock.now + 60)
    assert len(published) == 1 and len(published[0]) == 6
    assert [round(c - prober.calls[0]) for c in prober.calls] == [0, 10, 20, 30, 40, 50]
    assert [r.slot for r in results] == [1_000_020.0 + 10 * i for i in range(6)]


def test_confirmed_outage_is_published_at_once() -> None:
    monitor, prober, clock, published = make([True, False, False, False, True, True])
    monitor.verdicts["hello"] = True
    results = monitor.run(start=clock.now, deadline=clock.now + 60)
    assert [r.ok for r in results] == [True, False, False, False]  # stopped after 3 failures
    assert len(published) == 1 and monitor.verdicts["hello"] is False


def test_a_single_failure_changes_nothing() -> None:
    monitor, _, clock, published = make([True, False, True, True, True, True])
    monitor.verdicts["hello"] = True
    results = monitor.run(start=clock.now, deadline=clock.now + 60)
    assert len(results) == 6 and monitor.verdicts["hello"] is True and len(published) == 1


def test_recovery_is_published_as_soon_as_confirmed() -> None:
    monitor, _, clock, published = make([False, True, True, True, True, True])
    monitor.verdicts["hello"] = False
    results = monitor.run(start=clock.now, deadline=clock.now + 60)
    assert [r.ok for r in results] == [False, True, True, True]
    assert monitor.verdicts["hello"] is True


def test_never_starts_a_probe_that_could_end_past_the_deadline() -> None:
    monitor, prober, clock, published = make([True] * 6)
    monitor.verdicts["hello"] = True
    start = clock.now
    deadline = start + 32  # room for slots 0, 10, 20 only (each may take the 5 s timeout + margin)
    monitor.run(start=start, deadline=deadline)
    assert len(prober.calls) == 3
    assert all(c + 5 + PUBLISH_MARGIN_SECONDS <= deadline for c in prober.calls)
    assert len(published) == 1


def test_a_late_start_probes_at_once_then_keeps_the_grid() -> None:
    monitor, prober, clock, _ = make([True] * 6, start=1_000_023.0)
    monitor.verdicts["hello"] = True
    monitor.run(start=1_000_020.0, deadline=1_000_020.0 + 60)
    assert prober.calls[0] == 1_000_023.0 and prober.calls[1] == pytest.approx(1_000_030.0)


def test_first_slot_uses_the_scheduled_time_only_when_recent() -> None:
    assert first_slot(600.0, 601.5, SETTINGS) == 600.0
    assert first_slot(500.0, 601.5, SETTINGS) == 610.0  # stale event: next slot on the grid
    assert first_slot(None, 601.5, SETTINGS) == 610.0


@pytest.mark.parametrize("outage_after_slot", range(0, 12))
def test_detection_and_recovery_never_exceed_the_documented_worst_case(outage_after_slot: int) -> None:
    """Simulate invocations minute by minute with an outage starting after a given slot."""
    interval, confirm, timeout, schedule = 10, 3, 5.0, 60
    worst_d = timing.worst_case_detection(interval=interval, confirm=confirm, timeout=timeout)
    worst_r = timing.worst_case_recovery(interval=interval, confirm=confirm, timeout=timeout, schedule=schedule)
    clock = FakeClock(0.0)
    outage = (outage_after_slot * interval + 0.5, outage_after_slot * interval + 0.5 + 200)

    class Prober:
        def probe(self, t: Target) -> ProbeResult:
            ok = not (outage[0] <= clock.now < outage[1])
            clock.now += timeout if not ok else 0.01  # a down target costs the full timeout
            return ProbeResult(target=t.name, url=t.url, started_at=clock.now, ok=ok)

    published_at: list[float] = []
    publishes: list[tuple[float, bool]] = []  # (when the batch reached CloudWatch, verdict after it)
    monitor = Monitor(
        SETTINGS,
        Prober(),
        lambda _: published_at.append(clock.now),
        clock=clock.time,
        sleep=clock.sleep,
        log=lambda r: None,
    )  # type: ignore[arg-type]
    monitor.verdicts["hello"] = True
    for minute in range(8):
        clock.now = max(clock.now, minute * schedule)
        monitor.run(start=minute * schedule, deadline=minute * schedule + schedule)
        publishes.append((published_at[-1], monitor.verdicts["hello"]))
    down_at = next(t for t, up in publishes if not up)
    up_at = next(t for t, up in publishes if up and t > down_at)
    assert down_at - outage[0] <= worst_d
    assert up_at - outage[1] <= worst_r


def test_a_failed_publish_does_not_count_as_published() -> None:
    clock = FakeClock(1_000_020.0)
    prober = ScriptedProber(clock, [False] * 12)

    def broken(results: Sequence[ProbeResult]) -> None:
        raise ConnectionError("CloudWatch unreachable")

    monitor = Monitor(SETTINGS, prober, broken, clock=clock.time, sleep=clock.sleep, log=lambda r: None)  # type: ignore[arg-type]
    monitor.verdicts["hello"] = True
    with pytest.raises(ConnectionError):
        monitor.run(start=clock.now, deadline=clock.now + 60)
    assert monitor.verdicts["hello"] is True  # the outage was never reported
    published: list[Sequence[ProbeResult]] = []
    monitor.publish = published.append
    results = monitor.run(start=1_000_080.0, deadline=1_000_080.0 + 60)
    assert len(results) == 3 and monitor.verdicts["hello"] is False  # reported early, again
