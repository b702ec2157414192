"""The Lambda handler: read the settings, page every channel, log one line per channel, count
what was not delivered, and raise if anything was not, so the invocation goes to the on-failure
destination (the dead-letter queue) with the original event. Secrets are read at run time and
kept for SECRET_TTL in the warm container; no value is ever logged or raised."""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from notifier import alarm, channels, contract, deliver
from notifier.contract import Channel, Verdict
from notifier.page import Context, Page, catalog, page

SECRET_TTL = 300.0  # seconds: a rotated webhook is used within five minutes
MARGIN = 5.0  # seconds before the Lambda's timeout kept for the metric, the log and the raise
_cache: dict[str, tuple[float, str]] = {}


class NotDelivered(RuntimeError):
    """Some channel did not take the page: the invocation fails and goes to the dead-letter queue."""


@dataclass
class Settings:
    channels: tuple[Channel, ...]
    context: Context
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            channels=tuple(Channel(t, s) for t, s in json.loads(env[contract.ENV_CHANNELS])),
            context=Context(
                service=env.get(contract.ENV_SERVICE, "service"),
                alarms=catalog(json.loads(env.get(contract.ENV_ALARMS, "[]"))),
                locations=tuple(json.loads(env.get(contract.ENV_LOCATIONS, "[]"))),
                dashboard=env.get(contract.ENV_DASHBOARD, ""),
                runbook=env.get(contract.ENV_RUNBOOK, ""),
            ),
        )


def read_secret(channel: Channel, clients: Callable[[str], Any], now: Callable[[], float] = time.monotonic) -> str:
    cached = _cache.get(channel.secret)
    if cached and now() - cached[0] < SECRET_TTL:
        return cached[1]
    if channel.parameter is not None:
        value = clients("ssm").get_parameter(Name=channel.parameter, WithDecryption=True)["Parameter"]["Value"]
    else:
        value = clients("secretsmanager").get_secret_value(SecretId=channel.secret)["SecretString"]
    _cache[channel.secret] = (now(), value)
    return value


def check_secret(channel: Channel, clients: Callable[[str], Any]) -> tuple[bool, str]:
    """Whether the channel's secret exists, is readable, and holds what its type needs (make
    preflight): one line naming the secret, never its value."""
    try:
        value = read_secret(channel, clients, now=lambda: float("inf"))
        channels.destination(channel.type, value)
    except channels.SecretError as exc:
        return False, f"alertChannels {channel.label}: the secret {exc}"
    except Exception as exc:  # noqa: BLE001 - botocore's errors, named by code only
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        return False, f"alertChannels {channel.label}: cannot read the secret ({code})"
    return True, f"alertChannels {channel.label}: the secret exists, is readable and holds a {channel.type} destination"


def _plain(subject: str, raw: str, ctx: Context) -> Page:
    """A message that is not an alarm's (someone published to the topic): delivered as text."""
    import datetime as dt

    return Page(
        verdict=Verdict.DEGRADED,
        headline=f"Message on the alert topic: {subject or 'no subject'}",
        service=ctx.service,
        target="",
        alarm=subject or "message",
        state="",
        since=dt.datetime.now(dt.UTC),
        description=raw[:3000],
        reason="",
        dashboard=ctx.dashboard,
        runbook=ctx.runbook,
    )


def _request(channel: Channel, p: Page, clients: Callable[[str], Any]) -> channels.Request:
    return channels.render(channel.type, p, read_secret(channel, clients))


def notify(
    event: dict[str, Any],
    settings: Settings,
    clients: Callable[[str], Any],
    *,
    deadline: float,
    log: Callable[[str], None] = print,
) -> list[deliver.Outcome]:
    """Every page of the event to every channel, in parallel, by `deadline` (time.monotonic)."""
    outcomes: list[deliver.Outcome] = []
    counted: list[deliver.Outcome] = []
    for notification, subject, raw in alarm.from_event(event):
        if notification and notification.state == "OK" and notification.old_state != "ALARM":
            # A new alarm's first evaluation (INSUFFICIENT_DATA -> OK) runs its OK action: no
            # recovery to announce, and a resolve for an incident that never was.
            log(
                json.dumps(
                    {
                        "type": contract.DELIVERY_LOG,
                        "skipped": notification.name,
                        "state": "OK",
                        "old_state": notification.old_state,
                    }
                )
            )
            continue
        p = page(notification, settings.context) if notification else _plain(subject, raw, settings.context)
        jobs: Sequence[tuple[Channel, Callable[[], channels.Request]]] = [
            (c, functools.partial(_request, c, p, clients)) for c in settings.channels
        ]
        for o in deliver.send_all(jobs, deadline=deadline):
            outcomes.append(o)
            # The notifier's own alarms are best effort here (email carries them): counting their
            # failures would raise the alarm again, and a broken channel would loop it for good.
            if Verdict.DELIVERY not in (p.verdict, p.was):
                counted.append(o)
            log(
                json.dumps(
                    {
                        "type": contract.DELIVERY_LOG,
                        "channel": o.channel.label,
                        "delivered": o.ok,
                        "alarm": p.alarm,
                        "state": p.state,
                        "verdict": p.verdict.value,
                        "attempts": o.attempts,
                        "status": o.status,
                        "error": o.error,
                        "seconds": round(o.seconds, 3),
                    }
                )
            )
    failed = [o for o in counted if not o.ok]
    if failed:
        data = [{"MetricName": contract.DELIVERY_FAILURES, "Value": float(len(failed)), "Unit": "Count"}]
        data += [
            {
                "MetricName": contract.DELIVERY_FAILURES,
                "Dimensions": [{"Name": contract.CHANNEL, "Value": o.channel.label}],
                "Value": 1.0,
                "Unit": "Count",
            }
            for o in failed
        ]
        clients("cloudwatch").put_metric_data(Namespace=contract.NAMESPACE, MetricData=data)
        raise NotDelivered(
            f"{len(failed)} of {len(counted)} deliveries failed: "
            + "; ".join(f"{o.channel.label}: {o.error} after {o.attempts} attempt(s)" for o in failed)
        )
    return outcomes


_clients: dict[str, Any] = {}


def _client(service: str) -> Any:
    if service not in _clients:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
        _clients[service] = boto3.client(service, config=config)  # type: ignore[call-overload]
    return _clients[service]


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    settings = Settings.from_env(os.environ)
    settings.context.cloudwatch = _client("cloudwatch")
    for service in {"ssm" if c.parameter is not None else "secretsmanager" for c in settings.channels}:
        _client(service)  # here, not in the channels' threads: boto3 clients are not made in parallel
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - MARGIN
    outcomes = notify(event, settings, _client, deadline=deadline)
    return {"delivered": len(outcomes)}
