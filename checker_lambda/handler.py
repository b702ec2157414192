"""AWS Lambda entry point: parse settings, run one invocation's probes, return a summary."""

from __future__ import annotations

import ssl
import time
from datetime import datetime
from typing import Any

import boto3

from checker_lambda.metrics import CloudWatchPublisher, client_config, publish_budget
from checker_lambda.probe import Prober
from checker_lambda.run import Monitor, first_slot
from checker_lambda.settings import Settings

_monitor: Monitor | None = None


def build_monitor(settings: Settings, cloudwatch: Any = None) -> Monitor:
    context = ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else None
    # METRICS_REGION: the home region, whose CloudWatch the alarms read; unset, the Lambda's own.
    config = client_config(remote=settings.metrics_region is not None)
    client = cloudwatch or boto3.client("cloudwatch", region_name=settings.metrics_region, config=config)
    publisher = CloudWatchPublisher(
        client,
        high_resolution=settings.high_resolution,
        location=settings.location,
        details=settings.metrics_region is None,  # a checker in another region: the alarms' metrics only
    )
    return Monitor(
        settings,
        Prober(ssl_context=context),
        publisher.publish,
        publish_budget=publish_budget(config),  # the client above, at its slowest
    )


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
    global _monitor
    if _monitor is None:
        _monitor = build_monitor(Settings.from_env())
    now = time.time()
    deadline = now + context.get_remaining_time_in_millis() / 1000
    start = first_slot(scheduled_time(event), now, _monitor.settings)
    results = _monitor.run(start, deadline)
    return {
        "probes": len(results),
        "failed": sum(not r.ok for r in results),
        "verdicts": {name: ("up" if ok else "down") for name, ok in _monitor.verdicts.items()},
    }
