"""The probe loop of one invocation: probe at even slots, publish once, never overrun."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from checker_lambda.probe import Prober, ProbeResult
from checker_lambda.settings import Settings

Publish = Callable[[Sequence[ProbeResult]], object]
Log = Callable[[ProbeResult], None]

# Time kept free at the end of an invocation for the PutMetricData call.
PUBLISH_MARGIN_SECONDS = 2.0


def json_log(result: ProbeResult) -> None:
    """One structured line per probe, for CloudWatch Logs Insights."""
    sys.stdout.write(json.dumps({"type": "probe", **result.as_log()}, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def first_slot(scheduled: float | None, now: float, settings: Settings) -> float:
    """Slot 0 of this invocation: the scheduled time if it is recent, else now on the grid."""
    if scheduled is not None and now - settings.interval < scheduled <= now + 1:
        return scheduled
    return math.ceil(now / settings.interval) * settings.interval


class Monitor:
    """Holds the last published verdict per target, which survives warm invocations."""

    def __init__(
        self,
        settings: Settings,
        prober: Prober,
        publish: Publish,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        log: Log = json_log,
    ) -> None:
        self.settings = settings
        self.prober = prober
        self.publish = publish
        self.clock = clock
        self.sleep = sleep
        self.log = log
        self.verdicts: dict[str, bool] = {}
        self._pool = ThreadPoolExecutor(max_workers=len(settings.targets), thread_name_prefix="probe")

    def probe_round(self, slot: float | None) -> list[ProbeResult]:
        results = list(self._pool.map(self.prober.probe, self.settings.targets))
        for r in results:
            r.slot = slot
            self.log(r)
        return results

    def run(self, start: float, deadline: float) -> list[ProbeResult]:
        """Probe the invocation's slots and publish once; return what was published.

        Stops early, and publishes at once, when `confirm` consecutive probes of a target in
        this invocation agree on a state other than the last one published for it: that is
        what makes the alarm fire (or clear) within a minute instead of at the end.
        """
        s = self.settings
        slowest = max(t.timeout for t in s.targets)
        results: list[ProbeResult] = []
        streak: dict[str, tuple[bool, int]] = {}
        confirmed: dict[str, bool] = {}
        for i in range(s.probes_per_invocation):
            slot = start + i * s.interval
            if max(slot, self.clock()) + slowest + PUBLISH_MARGIN_SECONDS > deadline:
                break
            wait = slot - self.clock()
            if wait > 0:
                self.sleep(wait)
            changed = False
            for r in self.probe_round(slot):
                results.append(r)
                ok, count = streak.get(r.target, (r.ok, 0))
                count = count + 1 if ok == r.ok else 1
                streak[r.target] = (r.ok, count)
                if count >= s.confirm:
                    confirmed[r.target] = r.ok
                    changed = changed or self.verdicts.get(r.target) != r.ok
            if changed:
                break
        self.publish(results)
        # Only what reached CloudWatch counts as published: if publishing raised, the next
        # invocation still sees the change as new and publishes it early again.
        self.verdicts.update(confirmed)
        return results
