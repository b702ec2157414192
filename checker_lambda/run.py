"""The probe loop of one invocation: probe every slot, publish news at once, never overrun."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from checker_lambda import metrics, timing
from checker_lambda.probe import Prober, ProbeResult
from checker_lambda.settings import Settings

Publish = Callable[[Sequence[ProbeResult]], object]
Log = Callable[[ProbeResult], None]

# The longest the Lambda's own CloudWatch client may take for one call (metrics.CLIENT_CONFIG).
DEFAULT_PUBLISH_BUDGET = metrics.publish_budget()


def json_log(result: ProbeResult) -> None:
    """One structured line per probe, for CloudWatch Logs Insights."""
    sys.stdout.write(json.dumps({"type": "probe", **result.as_log()}, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def first_slot(scheduled: float | None, now: float, settings: Settings) -> float:
    """Slot 0 of this invocation: just after the scheduled time if that is recent, else the next
    slot on the grid. The offset (timing.slot_offset) absorbs a late start."""
    offset = timing.slot_offset(settings.interval)
    if scheduled is not None and now - settings.interval < scheduled <= now + 1:
        return scheduled + offset
    return math.ceil((now - offset) / settings.interval) * settings.interval + offset


class Monitor:
    """Probes on the grid and decides when to publish; what it published survives warm invocations.

    The verdict of a target is the state its last `confirm` published probes agree on (none
    after a cold start). A probe that disagrees with it is news: it is published at once,
    together with everything still pending, so CloudWatch always holds an unbroken run of
    datapoints up to the newest news and the alarm can count M of N on its own. Probes that
    agree wait for the end of the invocation: one PutMetricData call per invocation in steady
    state.
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
        self.verdicts: dict[str, bool] = {}
        self._streaks: dict[str, tuple[bool, int]] = {}  # over published probes
        self._pending: list[ProbeResult] = []
        self._pool = ThreadPoolExecutor(max_workers=len(settings.targets), thread_name_prefix="probe")

    @property
    def pending(self) -> list[ProbeResult]:
        """Probes not yet published (an interrupted run leaves them here)."""
        return list(self._pending)

    def probe_round(self, slot: float | None) -> list[ProbeResult]:
        results = list(self._pool.map(self.prober.probe, self.settings.targets))
        for r in results:
            r.slot = slot
            self.log(r)
        return results

    def run(self, start: float, deadline: float) -> list[ProbeResult]:
        """Probe every slot of the invocation that fits before the deadline; return the probes.

        A slot is probed when its probe, at its slowest, and then a publish, at its slowest,
        both end before `deadline`. Publishing early never stops probing.
        """
        s = self.settings
        slowest = max(t.timeout for t in s.targets)
        probed: list[ProbeResult] = []
        for i in range(s.probes_per_invocation):
            slot = start + i * s.interval
            if max(slot, self.clock()) + slowest + self.publish_budget > deadline:
                break
            wait = slot - self.clock()
            if wait > 0:
                self.sleep(wait)
            results = self.probe_round(slot)
            probed += results
            self._pending += results
            if any(self._is_news(r) for r in self._pending):
                self._flush(final=False)
        self._flush(final=True)
        return probed

    def _is_news(self, r: ProbeResult) -> bool:
        """It disagrees with the verdict; or, for a checker that is one of several locations, it
        failed: the quorum alarm sums the locations' published failures per period, so a failure
        not yet published would count as a success there (docs/decisions.md §8)."""
        return self.verdicts.get(r.target) != r.ok or (not r.ok and self.settings.every_failure_is_news)

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
            ok, count = self._streaks.get(r.target, (r.ok, 0))
            count = count + 1 if ok == r.ok else 1
            self._streaks[r.target] = (r.ok, count)
            if count >= self.settings.confirm:
                self.verdicts[r.target] = r.ok


def _log_publish_error(exc: Exception, pending: int) -> None:
    line = {"type": "publish_error", "error": type(exc).__name__, "detail": str(exc)[:300], "pending": pending}
    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stdout.flush()
