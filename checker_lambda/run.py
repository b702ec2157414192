"""The probe loop of one invocation: probe every slot, publish news at once, never overrun."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from checker_lambda import budgets, timing
from checker_lambda.contract import Reason
from checker_lambda.log import log_line
from checker_lambda.probe import Prober, ProbeResult
from checker_lambda.settings import Settings, Target

Publish = Callable[[Sequence[ProbeResult]], object]
Log = Callable[[ProbeResult], None]

# The longest the Lambda's own CloudWatch client may take for one call (budgets.CLIENT_CONFIG).
DEFAULT_PUBLISH_BUDGET = budgets.publish_budget()


def json_log(result: ProbeResult) -> None:
    """One line per probe."""
    log_line({"type": "probe", **result.as_log()})


def first_slot(scheduled: float | None, now: float, settings: Settings) -> float:
    """Slot 0 of this invocation: just after the scheduled time if that is recent, else the next
    slot on the grid. The offset (timing.slot_offset) absorbs a late start."""
    offset = timing.slot_offset(settings.interval)
    if scheduled is not None and now - settings.interval < scheduled <= now + 1:
        return scheduled + offset
    return math.ceil((now - offset) / settings.interval) * settings.interval + offset


def decided(outcomes: Iterable[bool], confirm: int) -> bool | None:
    """What the availability alarm makes of these outcomes (oldest first) when it reads them all:
    `confirm` failures among the last `2*confirm - 1` is down (False), `confirm` successes is up
    (True); fewer outcomes than that decide nothing (None) until one side has `confirm`."""
    last = list(outcomes)[-timing.evaluation_periods(confirm) :]
    if len(last) - sum(last) >= confirm:
        return False
    return True if sum(last) >= confirm else None


def standing(published: Sequence[bool], confirm: int) -> bool | None:
    """The state the alarm holds from these published outcomes while nothing newer is published.

    Missing data is ignored, so as time passes the alarm's range holds fewer and fewer of them:
    down lasts only if the last `confirm` are all failures (any shorter run of them with a success
    in it reads as OK); up lasts whenever it is decided (no suffix holds `confirm` failures).
    Anything else (a down that will clear on its own, or nothing decided) is None: unknown.
    """
    if len(published) >= confirm and not any(list(published)[-confirm:]):
        return False
    return True if decided(published, confirm) else None


class Monitor:
    """Probes on the grid and decides when to publish; what it published survives warm invocations.

    For each target it keeps the last `2*confirm - 1` outcomes it published, and from them the
    state the availability alarm holds (`standing`). A probe is news when that state is unknown
    (after a cold start, or a down that will clear on its own: any probe may move the alarm) or
    when the outcomes so far, published and pending, decide another one (`decided`, the alarm's
    own M of 2M-1). News is published at once with everything pending, so the alarm is where it
    would be had every probe been published the moment it ended. Probes that change nothing
    wait for the end of the invocation: one PutMetricData call per invocation in steady state.
    An environment that did not run the previous invocation forgets what it published: another
    one may have published since.
    """

    def __init__(
        self,
        settings: Settings,
        prober: Prober,
        publish: Publish,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        log: Log = json_log,
        publish_budget: float = DEFAULT_PUBLISH_BUDGET,
    ) -> None:
        self.settings = settings
        self.prober = prober
        self.publish = publish
        self.clock = clock
        self.sleep = sleep
        self.log = log
        self.publish_budget = publish_budget  # the longest a publish can take; kept free before the deadline
        self._published: dict[str, deque[bool]] = {}  # per target, the last 2*confirm-1 published outcomes
        self._pending: list[ProbeResult] = []
        self._next_start: float | None = None  # the first slot of the invocation after the last one run here
        self._pool = ThreadPoolExecutor(max_workers=len(settings.targets), thread_name_prefix="probe")

    @property
    def pending(self) -> list[ProbeResult]:
        """Probes not yet published: empty between runs (run publishes or drops them, even when it raises)."""
        return list(self._pending)

    @property
    def verdicts(self) -> dict[str, bool]:
        """Each target's standing state from what was published (True up, False down); unknown ones left out."""
        out = {}
        for target, published in self._published.items():
            state = standing(published, self.settings.confirm)
            if state is not None:
                out[target] = state
        return out

    def remember(self, target: str, outcomes: Iterable[bool]) -> None:
        """Record outcomes as published for a target (oldest first)."""
        kept = self._published.setdefault(target, deque(maxlen=timing.evaluation_periods(self.settings.confirm)))
        kept.extend(outcomes)

    def has_news(self) -> bool:
        """Whether what is pending, added to what was published, decides a state other than the standing
        one; with a Location, also any failure."""
        confirm = self.settings.confirm
        if self.settings.every_failure_is_news and any(not r.ok for r in self._pending):
            # One of several locations: the quorum alarm sums the locations' published failures
            # per period, a failure not yet published counting as a success (docs/decisions.md §8).
            return True
        for target in {r.target for r in self._pending}:
            published = self._published.get(target, deque())
            pending = [r.ok for r in self._pending if r.target == target]
            held = standing(published, confirm)
            if held is None or decided([*published, *pending], confirm) != held:
                return True
        return False

    def probe_round(self, slot: float | None) -> list[ProbeResult]:
        targets = self.settings.targets
        # One target (the usual case) needs no thread: the prober keeps its own deadline.
        results = [self._probe(targets[0])] if len(targets) == 1 else list(self._pool.map(self._probe, targets))
        for r in results:
            r.slot = slot
            self.log(r)
        return results

    def _probe(self, target: Target) -> ProbeResult:
        """One probe; an exception the prober did not expect is that target's failure, not the round's."""
        started = self.clock()
        try:
            return self.prober.probe(target)
        except Exception as exc:  # noqa: BLE001  # a bug or an input the prober did not foresee
            detail = f"unexpected {type(exc).__name__}: {exc}"[:300]
            return ProbeResult(
                target=target.name, url=target.url, started_at=started, reason=Reason.PROTOCOL, detail=detail
            )

    def run(self, start: float, deadline: float, rounds: int | None = None) -> list[ProbeResult]:
        """Probe every slot of the invocation that fits before the deadline (only `rounds` of
        them, when given: the deploy's first run probes one, a skipped slot not counted); return
        the probes.

        A slot is probed when its probe, at its slowest, and then a publish, at its slowest,
        both end before `deadline`, and only while it is no later than `timing.slot_tolerance`
        (a probe is stamped with its slot; a later one is skipped: a gap). News is published at
        once only when a failed attempt would still leave time for the final publish; otherwise
        it goes with the final publish. No publish starts that could end past the deadline.
        Publishing early never stops probing. Nothing is left pending when this returns or raises.
        """
        s = self.settings
        if self._next_start is not None and abs(start - self._next_start) > s.interval / 2:
            # Another execution environment (or none) ran the invocations in between: what this
            # one published is not all there is, so the state the alarm holds is unknown.
            self._published.clear()
        self._next_start = start + s.schedule
        slowest = max(t.timeout for t in s.targets)
        tolerance = timing.slot_tolerance(s.interval)
        probed: list[ProbeResult] = []
        try:
            for i in range(s.probes_per_invocation):
                if rounds is not None and len(probed) >= rounds * len(s.targets):
                    break
                slot = start + i * s.interval
                now = self.clock()
                if max(slot, now) + slowest + self.publish_budget > deadline:
                    break
                if now > slot + tolerance:
                    continue  # too late for its period: a gap, which the alarm ignores
                if slot > now:
                    self.sleep(slot - now)
                results = self.probe_round(slot)
                probed += results
                self._pending += results
                if self.has_news() and self.clock() + 2 * self.publish_budget <= deadline:
                    self._flush(final=False)
        except BaseException:
            self._flush_on_the_way_out(deadline)
            raise
        if self._pending and self.clock() + self.publish_budget > deadline:
            self._drop("no time left before the deadline")
        self._flush(final=True)
        return probed

    def _flush_on_the_way_out(self, deadline: float) -> None:
        """After an unexpected error: publish what is pending if it fits, else drop it; never raise."""
        if self._pending and self.clock() + self.publish_budget <= deadline:
            try:
                self._flush(final=True)
            except Exception as exc:  # noqa: BLE001  # the error on its way out matters more
                _log_publish_error(exc, 0)
        self._drop("the run ended with an error")

    def _drop(self, why: str) -> None:
        if self._pending:
            log_line({"type": "publish_dropped", "why": why, "pending": len(self._pending)})
        self._pending = []

    def _flush(self, *, final: bool) -> None:
        if not self._pending:
            return
        batch = self._pending
        try:
            self.publish(batch)
        except Exception as exc:  # noqa: BLE001  # whatever the client raised, retry next round
            if final:
                # The Lambda fails (its Errors alarm sees it) and the batch is dropped: only what
                # reached CloudWatch counts, so the next invocation publishes the news again.
                self._pending = []
                raise
            # Still pending, and still news: the next probe round publishes it again.
            _log_publish_error(exc, len(batch))
            return
        self._pending = []
        for r in batch:
            self.remember(r.target, [r.ok])


def _log_publish_error(exc: Exception, pending: int) -> None:
    log_line({"type": "publish_error", "error": type(exc).__name__, "detail": str(exc)[:300], "pending": pending})
