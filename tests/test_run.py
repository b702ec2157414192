"""The invocation loop: every slot probed, news published at once, one call in steady state, deadline."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from botocore.config import Config

from checker_lambda import timing
from checker_lambda.contract import Reason
from checker_lambda.metrics import CLIENT_CONFIG, publish_budget
from checker_lambda.probe import ProbeResult
from checker_lambda.run import Monitor, first_slot
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
# What the stack gives the Lambda (cdk_app/checker.py).
RUN_FOR = timing.invocation_timeout(schedule=60, interval=10, slowest_probe=5, publish_budget=publish_budget())


def make(script: list[bool], start: float = 1_000_020.0):
    clock = FakeClock(start)
    prober = ScriptedProber(clock, script)
    published: list[Sequence[ProbeResult]] = []
    monitor = Monitor(SETTINGS, prober, published.append, clock=clock.time, sleep=clock.sleep, log=lambda r: None)  # type: ignore[arg-type]
    return monitor, prober, clock, published


def test_healthy_invocation_probes_every_slot_and_publishes_once_at_the_end() -> None:
    monitor, prober, clock, published = make([True] * 6)
    monitor.verdicts["hello"] = True  # already known up
    results = monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert len(published) == 1 and len(published[0]) == 6
    assert [round(c - prober.calls[0]) for c in prober.calls] == [0, 10, 20, 30, 40, 50]
    assert [r.slot for r in results] == [1_000_020.0 + 10 * i for i in range(6)]


def test_news_is_published_at_once_and_probing_goes_on() -> None:
    """Each probe that disagrees with the verdict goes out at once, with everything pending."""
    monitor, prober, clock, published = make([True, False, False, False, True, True])
    monitor.verdicts["hello"] = True
    results = monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert len(results) == 6 and len(prober.calls) == 6  # publishing early never stops probing
    assert [[r.ok for r in batch] for batch in published] == [[True, False], [False], [False], [True], [True]]
    assert monitor.verdicts["hello"] is False  # 3 published failures; 2 successes do not confirm yet


def test_a_single_failure_is_published_at_once_and_changes_nothing() -> None:
    monitor, _, clock, published = make([True, False, True, True, True, True])
    monitor.verdicts["hello"] = True
    results = monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert len(results) == 6 and monitor.verdicts["hello"] is True
    assert [[r.ok for r in batch] for batch in published] == [[True, False], [True, True, True, True]]


def test_recovery_is_published_probe_by_probe_until_confirmed() -> None:
    monitor, _, clock, published = make([False, True, True, True, True, True])
    monitor.verdicts["hello"] = False
    results = monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert len(results) == 6
    assert [[r.ok for r in batch] for batch in published] == [[False, True], [True], [True], [True, True]]
    assert monitor.verdicts["hello"] is True


def test_a_cold_start_publishes_until_confirm_probes_agree_then_probes_on() -> None:
    monitor, prober, clock, published = make([True] * 6)  # no verdict yet
    monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert len(prober.calls) == 6
    assert [len(batch) for batch in published] == [1, 1, 1, 3]
    assert monitor.verdicts["hello"] is True


def test_the_publish_budget_is_the_clients_slowest_call() -> None:
    """Every attempt may use its whole connect and read timeouts; every retry its longest backoff."""
    # 2 attempts x (1 s connect + 2 s read), and one backoff of at most 1 s (+5 s retry-after).
    assert publish_budget(CLIENT_CONFIG) == 12
    three = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 3})
    assert publish_budget(three) == 3 * 5 + (1 + 5) + (2 + 5)
    assert Monitor(SETTINGS, None, print).publish_budget == publish_budget(CLIENT_CONFIG)  # type: ignore[arg-type]


def test_never_starts_a_probe_that_could_end_past_the_deadline() -> None:
    monitor, prober, clock, published = make([True] * 6)
    monitor.verdicts["hello"] = True
    start = clock.now
    budget = monitor.publish_budget
    deadline = start + 20 + 5 + budget + 1  # room for slots 0, 10, 20 only (5 s timeout + a publish)
    monitor.run(start=start, deadline=deadline)
    assert len(prober.calls) == 3
    assert all(c + 5 + budget <= deadline for c in prober.calls)
    assert len(published) == 1


def test_a_late_start_probes_at_once_then_keeps_the_grid() -> None:
    monitor, prober, clock, _ = make([True] * 6, start=1_000_023.0)
    monitor.verdicts["hello"] = True
    monitor.run(start=1_000_020.0, deadline=1_000_020.0 + RUN_FOR)
    assert prober.calls[0] == 1_000_023.0 and prober.calls[1] == pytest.approx(1_000_030.0)


def test_first_slot_follows_the_scheduled_time_only_when_recent() -> None:
    assert first_slot(600.0, 601.5, SETTINGS) == 605.0  # a start 1.5 s late still probes on time
    assert first_slot(500.0, 601.5, SETTINGS) == 605.0  # stale event: next slot on the grid
    assert first_slot(None, 606.0, SETTINGS) == 615.0
    assert {first_slot(s, s + 0.3, SETTINGS) % 10 for s in (600.0, 660.0, 720.0)} == {5.0}  # one grid


def test_a_failed_publish_does_not_count_as_published() -> None:
    clock = FakeClock(1_000_020.0)
    prober = ScriptedProber(clock, [False] * 12)

    def broken(results: Sequence[ProbeResult]) -> None:
        raise ConnectionError("CloudWatch unreachable")

    monitor = Monitor(SETTINGS, prober, broken, clock=clock.time, sleep=clock.sleep, log=lambda r: None)  # type: ignore[arg-type]
    monitor.verdicts["hello"] = True
    with pytest.raises(ConnectionError):
        monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert len(prober.calls) == 6  # a failing publish never stops probing either
    assert monitor.verdicts["hello"] is True  # the outage was never reported
    published: list[Sequence[ProbeResult]] = []
    monitor.publish = published.append
    monitor.run(start=1_000_080.0, deadline=1_000_080.0 + RUN_FOR)
    assert [len(batch) for batch in published] == [1, 1, 1, 3]  # reported at once, again
    assert monitor.verdicts["hello"] is False


def test_news_whose_publish_failed_is_published_again_at_the_next_probe() -> None:
    clock = FakeClock(1_000_020.0)
    prober = ScriptedProber(clock, [True, False, False, False, False, False])
    published: list[list[bool]] = []
    failures = [ConnectionError("throttled")]

    def flaky(results: Sequence[ProbeResult]) -> None:
        if failures:
            raise failures.pop()
        published.append([r.ok for r in results])

    monitor = Monitor(SETTINGS, prober, flaky, clock=clock.time, sleep=clock.sleep, log=lambda r: None)  # type: ignore[arg-type]
    monitor.verdicts["hello"] = True
    monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert published == [[True, False, False], [False], [False, False]]


def test_the_lambda_timeout_fits_every_slot_even_when_probes_and_publishes_are_at_their_slowest() -> None:
    """An outage starting at the last two slots: both probes time out, both publishes take the budget."""
    clock = FakeClock(1_000_020.2)  # 0.2 s after the scheduled minute
    prober = ScriptedProber(clock, [True, True, True, True, False, False], cost=5.0)
    ended: list[float] = []

    def slow(results: Sequence[ProbeResult]) -> None:
        clock.now += publish_budget()
        ended.append(clock.now)

    monitor = Monitor(SETTINGS, prober, slow, clock=clock.time, sleep=clock.sleep, log=lambda r: None)  # type: ignore[arg-type]
    monitor.verdicts["hello"] = True
    deadline = clock.now + RUN_FOR
    monitor.run(start=first_slot(1_000_020.0, clock.now, SETTINGS), deadline=deadline)
    assert len(prober.calls) == 6 and len(ended) == 2  # each failure is news; nothing left for the end
    assert ended[-1] <= deadline


def test_with_a_location_every_failure_is_published_at_once_even_when_it_is_no_news() -> None:
    """The quorum alarm counts the failures CloudWatch holds per period, a location that has not
    published counted as healthy: a failure held back until the end of the run would be missed."""
    located = Settings(targets=SETTINGS.targets, interval=10, confirm=3, location="eu-west-1")
    for settings, expected in (
        (SETTINGS, [[False], [False], [False], [False, False, True]]),  # batched once the verdict is down
        (located, [[False], [False], [False], [False], [False], [True]]),  # every failure at once
    ):
        clock = FakeClock(1_000_020.0)
        published: list[Sequence[ProbeResult]] = []
        monitor = Monitor(
            settings,
            ScriptedProber(clock, [False] * 5 + [True]),
            published.append,
            clock=clock.time,
            sleep=clock.sleep,
            log=lambda r: None,
        )
        monitor.verdicts["hello"] = True
        monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
        assert [[r.ok for r in batch] for batch in published] == expected, settings.location
