"""AWS Lambda entry point: parse settings, run one invocation's probes, return a summary."""

from __future__ import annotations

import os
import re
import ssl
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import boto3

from checker_lambda.budgets import client_config, publish_budget
from checker_lambda.log import log_line
from checker_lambda.metrics import CloudWatchPublisher, report_error
from checker_lambda.probe import Prober
from checker_lambda.run import Monitor, first_slot
from checker_lambda.settings import ENV, REGION_PATTERN, Settings
from checker_lambda.urls import UrlReader, needs_read

# Built at an environment's first invocation (a cold start), kept while it stays warm.
_checker: Checker | None = None
_REGION = re.compile(REGION_PATTERN)
# Kept free before the Lambda's deadline when a failure is being reported: the re-raise and the
# runtime's own error report must still happen inside the invocation.
ERROR_REPORT_MARGIN = 0.5
# An event with this key set is the deploy's first run (checker_lambda/first_run.py): one round
# of probes, published, then the summary; a scheduled event has no such key.
FIRST_RUN = "first_run"


class Checker:
    """What an execution environment keeps between invocations: the settings as configured (URL
    parameters not yet read), the monitor (what it published), its publisher (which also sends the
    invocation's own counts) and the URL reader (the last good URL of each parameter).

    The Lambda entry builds one from its environment; `make local` (tools/local.py) builds its
    own, as many as it has locations, and invokes them the same way."""

    def __init__(
        self, configured: Settings, monitor: Monitor, publisher: CloudWatchPublisher, urls: UrlReader | None
    ) -> None:
        self.configured = configured
        self.monitor = monitor
        self.publisher = publisher
        self.urls = urls

    @classmethod
    def build(cls, settings: Settings, cloudwatch: Any = None) -> Checker:
        context = ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else None
        remote = settings.metrics_region is not None
        # METRICS_REGION: the home region, whose CloudWatch the alarms read; unset, the Lambda's own.
        config = client_config(remote=remote)
        client = cloudwatch or boto3.client("cloudwatch", region_name=settings.metrics_region, config=config)
        publisher = CloudWatchPublisher(
            client,
            high_resolution=settings.high_resolution,
            location=settings.location,
            details=not remote,  # a checker in another region: the alarms' metrics only
        )
        monitor = Monitor(
            settings,
            Prober(ssl_context=context),
            publisher.publish,
            publish_budget=publish_budget(config),  # the client above, at its slowest
        )
        return cls(settings, monitor, publisher, UrlReader(remote=remote) if needs_read(settings) else None)

    def invoke(self, event: Any, deadline: float) -> dict[str, Any]:
        """One invocation: read the URLs, probe every slot that fits before `deadline` (epoch
        seconds), publish; the summary the Lambda returns."""
        now = time.time()
        scheduled = scheduled_time(event)
        start = first_slot(scheduled, now, self.monitor.settings)
        if self.urls is not None:
            # Before the first slot, bounded (budgets.url_read_budget). The slot offset absorbs it
            # for an invocation that starts on time; one already late (EventBridge, a cold start)
            # may probe its first slot late, or skip it past its tolerance (a gap). No value ever
            # read: raises.
            self.monitor.settings = self.urls.resolve(self.configured)
            # A read that fell back to the cached URL is counted with the probes (in the home
            # region, where an alarm reads it), stamped with the invocation's period as
            # CheckerErrors is.
            self.publisher.count_url_read_failures(self.urls.failures, now if scheduled is None else scheduled)
        first = isinstance(event, dict) and event.get(FIRST_RUN) is True
        results = self.monitor.run(start, deadline, rounds=1 if first else None)
        summary: dict[str, Any] = {
            "probes": len(results),
            "failed": sum(not r.ok for r in results),
            "verdicts": {name: ("up" if ok else "down") for name, ok in self.monitor.verdicts.items()},
        }
        if first:  # one probe decides no verdict: what each target's probe found
            summary["probed"] = {r.target: "up" if r.ok else f"down ({r.reason})" for r in results}
        return summary


def scheduled_time(event: Any) -> float | None:
    """The EventBridge scheduled event's `time` (the minute it was due), if there is one."""
    raw = event.get("time") if isinstance(event, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def handler(event: Any, context: Any) -> dict[str, Any]:
    global _checker
    try:
        if _checker is None:
            _checker = Checker.build(Settings.from_env())
        return _checker.invoke(event, time.time() + context.get_remaining_time_in_millis() / 1000)
    except Exception:
        # A checker in another region: Lambda records this error in that region, where no alarm
        # can read it, so the checker counts it in the home region itself, then fails as before.
        destination = error_destination(os.environ)
        if destination is not None:
            location, region = destination
            scheduled = scheduled_time(event)  # the invocation's period, as its probes are stamped
            when = time.time() if scheduled is None else scheduled
            report_failure(location, region, when, context.get_remaining_time_in_millis() / 1000)
        raise


def error_destination(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(Location, home region) under which a checker in another region reports its failures, read
    from the raw environment (the settings may be what failed); None for the home checker."""
    home = environ.get(ENV["metrics_region"], "")
    # LOCATION is the Lambda's region (cdk_app/checker.py); if it is what is broken, the region.
    location = next(
        (v for v in (environ.get(ENV["location"]), environ.get("AWS_REGION")) if v and _REGION.match(v)), None
    )
    return (location, home) if location and _REGION.match(home) else None


def report_failure(location: str, region: str, when: float, seconds_left: float) -> bool:
    """Best effort: count one failed invocation in `region`'s CloudWatch, giving up before the
    Lambda's deadline (`seconds_left`, less ERROR_REPORT_MARGIN). Never raises: the failure being
    reported matters more. Whether it was stored; when not, one log line says why."""
    config = client_config(remote=True)
    wait = min(seconds_left - ERROR_REPORT_MARGIN, publish_budget(config))
    outcome: list[Exception | None] = []  # the sender's error, or None once stored
    try:
        # Made here, not in the sender: boto3's default session is not thread-safe, and a sender
        # left over from an earlier invocation may still be running.
        client = boto3.client("cloudwatch", region_name=region, config=config)
    except Exception as exc:  # noqa: BLE001  # logged below, never raised
        outcome.append(exc)
        wait = 0

    def send() -> None:
        try:
            report_error(client, location, when)
        except Exception as exc:  # noqa: BLE001  # logged below, never raised
            outcome.append(exc)
        else:
            outcome.append(None)

    if wait > 0:
        # A thread, so that the wait is bounded whatever blocks (a DNS lookup has no timeout of its
        # own). One that outlives the invocation resumes, still bounded by the client's timeouts,
        # only if Lambda thaws this environment for another invocation.
        sender = threading.Thread(target=send, name="error-report", daemon=True)
        sender.start()
        sender.join(wait)
    done = list(outcome)
    if done == [None]:
        return True
    if done:
        why = f"{type(done[0]).__name__}: {done[0]}"[:300]
    else:
        why = f"no answer within {wait:.1f} s" if wait > 0 else "no time left before the deadline"
    log_line({"type": "error_report_failed", "region": region, "location": location, "why": why})
    return False
