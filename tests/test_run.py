"""The invocation loop: every slot probed, news published at once, one call in steady state, deadline."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.retries import standard

from checker_lambda import timing
from checker_lambda.budgets import CLIENT_CONFIG, publish_budget
from checker_lambda.contract import Reason
from checker_lambda.probe import ProbeResult
from checker_lambda.run import Monitor, decided, first_slot, standing
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

    def __init__(self, clock: FakeClock, script: list[bool], cost: float = 0.1, costs: list[float] = []) -> None:  # noqa: B006
        self.clock, self.script, self.cost, self.costs = clock, list(script), cost, list(costs)
        self.calls: list[float] = []

    def probe(self, t: Target) -> ProbeResult:
        self.calls.append(self.clock.now)
        ok = self.script.pop(0) if self.script else True
        self.clock.now += self.costs.pop(0) if self.costs else self.cost
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


UP, DOWN = [True] * 5, [False] * 5  # published histories that leave no doubt


def test_healthy_invocation_probes_every_slot_and_publishes_once_at_the_end() -> None:
    monitor, prober, clock, published = make([True] * 6)
    monitor.remember("hello", UP)
    results = monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert len(published) == 1 and len(published[0]) == 6
    assert [round(c - prober.calls[0]) for c in prober.calls] == [0, 10, 20, 30, 40, 50]
    assert [r.slot for r in results] == [1_000_020.0 + 10 * i for i in range(6)]


def test_the_probe_that_moves_the_alarm_is_published_at_once_and_probing_goes_on() -> None:
    """Up: the third failure of 3 of 5 is news, published with the two before it; then down holds."""
    monitor, prober, clock, published = make([True, False, False, False, True, True])
    monitor.remember("hello", UP)
    results = monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert len(results) == 6 and len(prober.calls) == 6  # publishing early never stops probing
    assert [[r.ok for r in batch] for batch in published] == [[True, False, False, False], [True, True]]
    # Published: F F F ok ok. The alarm reads 3 of 5 now, but as the range slides past the
    # failures only "ok ok" is left, which reads OK: the state it holds is not known.
    assert monitor.verdicts == {}


def test_a_single_failure_changes_nothing_and_waits_for_the_end() -> None:
    monitor, _, clock, published = make([True, False, True, True, True, True])
    monitor.remember("hello", UP)
    results = monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert len(results) == 6 and monitor.verdicts == {"hello": True}
    assert [[r.ok for r in batch] for batch in published] == [[True, False, True, True, True, True]]


def test_recovery_is_published_when_confirm_successes_decide_it() -> None:
    monitor, _, clock, published = make([False, True, True, True, True, True])
    monitor.remember("hello", DOWN)
    results = monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert len(results) == 6
    assert [[r.ok for r in batch] for batch in published] == [[False, True, True, True], [True, True]]
    assert monitor.verdicts == {"hello": True}


def test_a_cold_start_publishes_until_the_alarms_state_is_known_then_probes_on() -> None:
    monitor, prober, clock, published = make([True] * 6)  # nothing published yet: any probe may move the alarm
    monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert len(prober.calls) == 6
    assert [len(batch) for batch in published] == [1, 1, 1, 3]
    assert monitor.verdicts == {"hello": True}


def test_a_down_that_will_clear_by_itself_is_unknown_so_every_probe_is_published() -> None:
    """Published F F F ok ok: the alarm is in ALARM, and will read OK once the range holds only
    the successes. An outage now must not wait for the end of the invocation."""
    monitor, _, clock, published = make([False] * 6)
    monitor.remember("hello", [False, False, False, True, True])
    monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert [len(batch) for batch in published] == [1, 1, 1, 3]  # until the last 3 published failed
    assert monitor.verdicts == {"hello": False}


@pytest.mark.parametrize(
    ("outcomes", "decision", "held"),
    [
        ([], None, None),
        ([True, True], None, None),
        ([True, True, True], True, True),
        ([False, False, False], False, False),
        ([True, False, True, False, True], True, True),
        ([False, True, False, True, False], False, None),  # ALARM now, OK once "ok F" is all that is left
        ([False, False, False, True, True], False, None),
        ([True, True, False, False, False], False, False),
        ([False] * 9 + [True, True, True], True, True),  # only the last 2M-1 count
    ],
)
def test_the_state_is_the_alarms_m_of_2m_minus_1_and_down_holds_only_on_m_failures(
    outcomes: list[bool], decision: bool | None, held: bool | None
) -> None:
    assert decided(outcomes, 3) is decision
    assert standing(outcomes, 3) is held


def test_never_starts_a_probe_that_could_end_past_the_deadline() -> None:
    monitor, prober, clock, published = make([True] * 6)
    monitor.remember("hello", UP)
    start = clock.now
    budget = monitor.publish_budget
    deadline = start + 20 + 5 + budget + 1  # room for slots 0, 10, 20 only (5 s timeout + a publish)
    monitor.run(start=start, deadline=deadline)
    assert len(prober.calls) == 3
    assert all(c + 5 + budget <= deadline for c in prober.calls)
    assert len(published) == 1


def test_a_late_start_probes_at_once_then_keeps_the_grid() -> None:
    monitor, prober, clock, _ = make([True] * 6, start=1_000_023.0)
    monitor.remember("hello", UP)
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
    monitor.remember("hello", UP)
    with pytest.raises(ConnectionError):
        monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert len(prober.calls) == 6  # a failing publish never stops probing either
    assert monitor.verdicts == {"hello": True}  # the outage was never reported
    published: list[Sequence[ProbeResult]] = []
    monitor.publish = published.append
    monitor.run(start=1_000_080.0, deadline=1_000_080.0 + RUN_FOR)
    assert [len(batch) for batch in published] == [3, 3]  # reported at the third failure, again
    assert monitor.verdicts == {"hello": False}


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
    monitor.remember("hello", UP)
    monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert published == [[True, False, False, False, False], [False]]


# --- the deadline ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [CLIENT_CONFIG, Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 4})],
    ids=["lambda", "four-attempts"],
)
def test_the_publish_budget_is_botocores_slowest_call(config: Config) -> None:
    """Every attempt may use its whole connect and read timeouts, and every wait before a retry
    is botocore's own standard-mode backoff at its longest: full jitter, a throttling error, and
    CloudWatch asking for an hour in x-amz-retry-after."""
    backoff = standard.ExponentialBackoff(
        random=lambda: 1.0, throttling_detector=standard.ThrottlingErrorDetector(standard.RetryEventAdapter())
    )
    attempts = config.retries["total_max_attempts"]
    waits = [
        backoff.delay_amount(
            standard.RetryContext(
                attempt_number=n,
                parsed_response={"Error": {"Code": "Throttling"}},
                http_response=AWSResponse("https://monitoring.test", 400, {"x-amz-retry-after": "3600000"}, None),
            )
        )
        for n in range(1, attempts)
    ]
    assert publish_budget(config) == attempts * (config.connect_timeout + config.read_timeout) + sum(waits)


class SlowPublisher:
    """Each call takes the whole publish budget; the calls listed in `fail` then raise."""

    def __init__(self, clock: FakeClock, fail: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.clock, self.fail = clock, fail
        self.ended: list[float] = []
        self.batches: list[list[float | None]] = []

    def __call__(self, results: Sequence[ProbeResult]) -> None:
        call = len(self.ended)
        self.clock.now += publish_budget()
        self.ended.append(self.clock.now)
        if call in self.fail:
            raise ConnectionError("throttled, after every retry")
        self.batches.append([r.slot for r in results])


def test_slow_publishes_on_consecutive_slots_skip_slots_rather_than_stamp_them_wrong() -> None:
    """A cold start into an outage: every probe is news, each probe times out and each publish
    takes the budget. Review repro: slots probed at 5, 22, 39, 56, 61 s, stamped 5 to 45 s."""
    clock = FakeClock(1_000_020.2)
    prober = ScriptedProber(clock, [False] * 6, cost=5.0)
    publisher = SlowPublisher(clock)
    monitor = Monitor(SETTINGS, prober, publisher, clock=clock.time, sleep=clock.sleep, log=lambda r: None)  # type: ignore[arg-type]
    deadline = clock.now + RUN_FOR
    results = monitor.run(start=first_slot(1_000_020.0, clock.now, SETTINGS), deadline=deadline)
    tolerance = timing.slot_tolerance(SETTINGS.interval)
    for probed_at, r in zip(prober.calls, results, strict=True):
        assert r.slot is not None and r.slot <= probed_at <= r.slot + tolerance, (probed_at, r.slot)
    assert [r.slot - 1_000_020.0 for r in results if r.slot is not None] == [5.0, 25.0, 45.0]  # 15, 35, 55: gaps
    assert max(publisher.ended) <= deadline


def test_the_lambda_timeout_fits_the_last_slot_as_late_as_its_period_allows_at_its_slowest() -> None:
    """News at the slot before the last takes the whole budget, so the last slot starts at the
    end of its tolerance; its probe times out and the final publish takes the budget too."""
    clock = FakeClock(1_000_020.2)  # 0.2 s after the scheduled minute
    prober = ScriptedProber(clock, [True, True, False, False, False, False], costs=[0.1] * 4 + [3.0, 5.0])
    publisher = SlowPublisher(clock)
    monitor = Monitor(SETTINGS, prober, publisher, clock=clock.time, sleep=clock.sleep, log=lambda r: None)  # type: ignore[arg-type]
    monitor.remember("hello", UP)
    deadline = clock.now + RUN_FOR
    monitor.run(start=first_slot(1_000_020.0, clock.now, SETTINGS), deadline=deadline)
    assert prober.calls[-1] - prober.calls[0] == pytest.approx(50 + timing.slot_tolerance(SETTINGS.interval))
    assert len(prober.calls) == 6 and len(publisher.ended) == 2 and publisher.ended[-1] <= deadline


def test_a_failed_news_publish_at_the_last_slot_leaves_no_second_publish_past_the_deadline() -> None:
    """Review repro: the last slot's news publish failed after the whole budget and the final
    publish took another one: calls ending at 71.8 s and 83.8 s against a 79 s timeout."""
    clock = FakeClock(1_000_020.2)
    prober = ScriptedProber(clock, [True, True, True, False, False, False], cost=5.0)
    publisher = SlowPublisher(clock, fail={0})
    monitor = Monitor(SETTINGS, prober, publisher, clock=clock.time, sleep=clock.sleep, log=lambda r: None)  # type: ignore[arg-type]
    monitor.remember("hello", UP)
    deadline = clock.now + RUN_FOR
    with pytest.raises(ConnectionError):  # the one call left fails: the Lambda fails, its Errors alarm sees it
        monitor.run(start=first_slot(1_000_020.0, clock.now, SETTINGS), deadline=deadline)
    assert len(prober.calls) == 6
    assert len(publisher.ended) == 1 and publisher.ended[0] <= deadline  # the news waited for the final call


def test_a_final_publish_that_cannot_fit_is_dropped_with_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock(1_000_020.0)
    prober = ScriptedProber(clock, [True] * 6, cost=0.1)
    publisher = SlowPublisher(clock)
    monitor = Monitor(SETTINGS, prober, publisher, clock=clock.time, sleep=clock.sleep, log=lambda r: None)  # type: ignore[arg-type]
    monitor.remember("hello", UP)
    # A probe overran its own timeout (the host was starved): no time left for the final publish.
    monitor.log = lambda r: setattr(clock, "now", clock.now + 30.0) if r.slot == 1_000_020.0 + 20 else None  # type: ignore[method-assign]
    deadline = clock.now + 20 + 5 + publish_budget() + 1
    monitor.run(start=clock.now, deadline=deadline)
    assert publisher.ended == [] and clock.now <= deadline + 30
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["type"] == "publish_dropped" and line["pending"] == 3


# --- what an unexpected error leaves behind --------------------------------------------------------


def test_a_probe_that_raises_is_a_protocol_failure_not_a_failed_round() -> None:
    clock = FakeClock(1_000_020.0)
    two = Settings(
        targets=(*SETTINGS.targets, Target(name="other", url="http://y/", timeout=5)), interval=10, confirm=3
    )

    class Broken(ScriptedProber):
        def probe(self, t: Target) -> ProbeResult:
            if t.name == "other":
                raise UnicodeError("label too long")
            return super().probe(t)

    monitor = Monitor(two, Broken(clock, []), print, clock=clock.time, sleep=clock.sleep, log=lambda r: None)  # type: ignore[arg-type]
    hello, other = monitor.probe_round(1_000_020.0)
    assert hello.ok and hello.slot == 1_000_020.0
    assert (other.target, other.ok, other.reason, other.slot) == ("other", False, Reason.PROTOCOL, 1_000_020.0)
    assert "UnicodeError" in other.detail


def test_an_unexpected_error_leaves_nothing_pending_for_the_next_invocation() -> None:
    monitor, prober, clock, published = make([True] * 12)
    monitor.remember("hello", UP)

    def log(r: ProbeResult) -> None:
        if len(prober.calls) == 3:
            raise BrokenPipeError("stdout closed")

    monitor.log = log  # type: ignore[method-assign]
    with pytest.raises(BrokenPipeError):
        monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
    assert [len(batch) for batch in published] == [2]  # what was probed before the error went out on the way
    monitor.log = lambda r: None  # type: ignore[method-assign]
    monitor.run(start=1_000_080.0, deadline=1_000_080.0 + RUN_FOR)
    assert [len(batch) for batch in published] == [2, 6]  # not the old probes again


def test_a_warm_environment_that_missed_an_invocation_forgets_what_it_published() -> None:
    """Lambda starts a second environment when a run overlaps the next minute, and either may
    take the minute after: what this one published is then not all there is. Here another
    environment published an outage meanwhile; the recovery must not wait for the end of the run."""
    monitor, _, clock, published = make([True] * 6)
    monitor.remember("hello", UP)
    monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)  # minute 0: healthy, one call
    assert [len(batch) for batch in published] == [6]
    clock.now = 1_000_140.2  # minute 1 ran elsewhere (the outage went out from there): this is minute 2
    monitor.prober.script = [True] * 6  # type: ignore[attr-defined]
    monitor.run(start=1_000_140.0, deadline=clock.now + RUN_FOR)
    assert [len(batch) for batch in published] == [6, 1, 1, 1, 3]  # each probe until the state is known again
    clock.now = 1_000_200.2  # minute 3, the very next one: what it published is all there is
    monitor.run(start=1_000_200.0, deadline=clock.now + RUN_FOR)
    assert [len(batch) for batch in published] == [6, 1, 1, 1, 3, 6]


def test_with_a_location_every_failure_is_published_at_once_even_when_it_is_no_news() -> None:
    """The quorum alarm counts the failures CloudWatch holds per period, a location that has not
    published counted as healthy: a failure held back until the end of the run would be missed."""
    located = Settings(targets=SETTINGS.targets, interval=10, confirm=3, location="eu-west-1")
    batches = {}
    for settings in (SETTINGS, located):
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
        monitor.remember("hello", UP)
        monitor.run(start=clock.now, deadline=clock.now + RUN_FOR)
        batches[settings.location] = [[r.ok for r in batch] for batch in published]
    assert batches["eu-west-1"] == [[False]] * 5 + [[True]]  # every failure at once, alone
    assert len(batches[None]) < 6  # without a location some failures wait for a later call


class InterruptedProber(ScriptedProber):
    """The second probe runs for `second` seconds, then the invocation is interrupted (a signal,
    the runtime shutting down): not an error the prober handles, so the run ends with it."""

    def __init__(self, clock: FakeClock, second: float) -> None:
        super().__init__(clock, [], cost=5.0)
        self.second = second

    def probe(self, t: Target) -> ProbeResult:
        if self.calls:
            self.clock.now += self.second
            raise KeyboardInterrupt
        return super().probe(t)


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def interrupted(second: float, publish) -> Monitor:  # type: ignore[no-untyped-def]
    clock = FakeClock(1_000_020.0)
    monitor = Monitor(
        SETTINGS,
        InterruptedProber(clock, second),  # type: ignore[arg-type]
        publish,
        clock=clock.time,
        sleep=clock.sleep,
        log=lambda r: None,
        publish_budget=12.0,
    )
    monitor.remember("hello", UP)
    # Slot 1 (at +10 s) is probed only if its probe (5 s) and a publish (12 s) end by +27 s.
    with pytest.raises(KeyboardInterrupt):
        monitor.run(start=1_000_020.0, deadline=1_000_020.0 + 27)
    return monitor


def test_an_interrupted_run_publishes_what_is_pending_when_the_publish_ends_by_the_deadline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    published: list[Sequence[ProbeResult]] = []
    interrupted(5.0, published.append)  # interrupted at +15 s: the publish ends at +27 s exactly
    assert [[r.slot for r in batch] for batch in published] == [[1_000_020.0]]
    assert capsys.readouterr().out == ""


def test_an_interrupted_run_drops_what_is_pending_when_the_publish_could_end_past_the_deadline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    published: list[Sequence[ProbeResult]] = []
    monitor = interrupted(5.5, published.append)  # a probe that overran: a publish could end at +27.5 s
    assert published == [] and monitor.pending == []
    assert lines(capsys.readouterr().out) == [
        {"type": "publish_dropped", "why": "the run ended with an error", "pending": 1}
    ]


def test_a_publish_that_fails_on_the_way_out_is_logged_and_the_interruption_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refuse(batch: Sequence[ProbeResult]) -> None:
        raise ConnectionError("CloudWatch unreachable " + "x" * 400)

    monitor = interrupted(5.0, refuse)  # the KeyboardInterrupt, not the ConnectionError, reaches the caller
    assert monitor.pending == []
    assert lines(capsys.readouterr().out) == [
        {
            "type": "publish_error",
            "error": "ConnectionError",
            "detail": ("CloudWatch unreachable " + "x" * 400)[:300],
            "pending": 0,
        }
    ]


# --- the timing contract's formulas, at values the docs state (checker_lambda/timing.py) ------------


def test_the_heartbeat_waits_two_runs_and_two_minutes_of_silence() -> None:
    assert [timing.heartbeat_periods(s) for s in (60, 61, 300)] == [4, 6, 12]


def test_recovery_is_bounded_as_detection_is() -> None:
    assert timing.worst_case_recovery(interval=10, confirm=3, timeout=5) == 35 == 3 * 10 + 5


@pytest.mark.parametrize(
    ("locations", "quorum", "bound"),
    [(3, 2, 35), (5, 3, 35), (4, 2, 35), (3, 3, 45), (2, 2, 45)],
)
def test_a_quorum_past_a_majority_of_locations_adds_one_interval(locations: int, quorum: int, bound: float) -> None:
    """The single-region bound holds while quorum <= (locations + 1) / 2 (a majority of an odd count)."""
    assert (
        timing.worst_case_quorum_detection(interval=10, confirm=3, timeout=5, locations=locations, quorum=quorum)
        == bound
    )


def test_the_url_read_makes_the_last_slot_late_only_when_it_is_the_first_and_longer_than_the_offset() -> None:
    one_slot = {"schedule": 60, "interval": 60, "slowest_probe": 5, "publish_budget": 12}
    assert timing.invocation_timeout(**one_slot) == 60 - 60 + 5 + 17  # slot offset, probe and publish
    assert timing.invocation_timeout(**one_slot, read_budget=10) == 22 + 10 - 5  # the read past the offset
    # No read given, none counted: a step shorter than the slot leaves the last slot on time.
    short = {"schedule": 60, "interval": 1.5, "slowest_probe": 0.6, "publish_budget": 1.0}
    assert (timing.invocation_timeout(**short), timing.invocation_timeout(**short, read_budget=1.0)) == (61, 62)


def test_the_most_datapoints_of_one_probe_count_every_phase_and_the_certificate_only_over_https() -> None:
    """Availability, the failure's reason, latency, then dns, connect, (tls,) first byte, (cert days)."""
    from checker_lambda.metrics import most_datums_per_probe

    assert (most_datums_per_probe(https=True), most_datums_per_probe(https=False)) == (8, 6)
