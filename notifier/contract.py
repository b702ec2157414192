"""What the notifier's infrastructure (cdk_app/notifier.py, cdk_app/config.py) and its runtime
share: the channel types, how a secret is named, the verdicts, the environment, the metric."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# Chat products, paging products, and a plain signed webhook; docs/notifications.md has each format.
TYPES = ("slack", "teams", "discord", "googlechat", "pagerduty", "opsgenie", "webhook")
SSM_PREFIX = "ssm:"  # "ssm:/hello/slack": an SSM SecureString parameter; otherwise a Secrets Manager secret

# Secrets Manager (CreateSecret Name): 1-512 of ASCII letters, digits and /_+=.@-; a name ending in
# a hyphen and six characters reads as a partial ARN, so GetSecretValue by name may find another.
_SECRET = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_PARTIAL_ARN = re.compile(r"-[A-Za-z0-9]{6}$")
# SSM (PutParameter Name): a-zA-Z0-9_.- and / for the hierarchy, a leading / with a hierarchy,
# at most 15 levels, not prefixed with aws or ssm, 1011 characters with the ARN before it (~960 left).
_PARAMETER = re.compile(r"^(/[A-Za-z0-9_.-]+){1,15}$|^[A-Za-z0-9_.-]+$")


class Verdict(StrEnum):
    """What a notification says happened, in words (the alarm plan gives each alarm one)."""

    DOWN = "down"
    DEGRADED = "degraded"
    CHECKER = "checker trouble"
    DELIVERY = "alert delivery trouble"  # the notifier's own alarms: email carries them, best effort elsewhere
    RECOVERED = "recovered"


@dataclass(frozen=True)
class Channel:
    type: str
    secret: str  # a Secrets Manager name, or ssm:<parameter name>

    @property
    def parameter(self) -> str | None:
        """The SSM parameter's name, when the secret is one."""
        return self.secret[len(SSM_PREFIX) :] if self.secret.startswith(SSM_PREFIX) else None

    @property
    def label(self) -> str:
        """How logs, errors and reports name it: its type and secret's name, never its value."""
        return f"{self.type}:{self.secret}"


def secret_name_problem(secret: str) -> str | None:
    """Why no secret or parameter can have this name, or None."""
    if secret.startswith(SSM_PREFIX):
        name = secret[len(SSM_PREFIX) :]
        if not _PARAMETER.match(name) or len(name) > 960:
            return (
                "an SSM parameter name: a-z A-Z 0-9 _ . - and /, starting with / when it has a path, "
                "at most 15 levels (e.g. ssm:/hello/slack-webhook)"
            )
        if name.lstrip("/").lower().startswith(("aws", "ssm")):
            return "an SSM parameter name not starting with aws or ssm"
        return None
    if not _SECRET.match(secret):
        return "a Secrets Manager name: 1-512 of A-Z a-z 0-9 / _ + = . @ - (e.g. hello/slack-webhook)"
    if _PARTIAL_ARN.search(secret):
        return "a Secrets Manager name that does not end in a hyphen and six characters (that reads as an ARN suffix)"
    return None


def parse_channels(values: list[Any], key: str) -> tuple[Channel, ...]:
    """The alertChannels context value; a ValueError names the key, the entry and what is allowed."""
    channels = []
    for i, v in enumerate(values):
        where = f"context key '{key}'[{i}]"
        if not isinstance(v, dict) or set(v) - {"type", "secret"}:
            raise ValueError(f'{where}={v!r} is invalid: allowed is {{"type": ..., "secret": ...}}')
        if v.get("type") not in TYPES:
            raise ValueError(f"{where} has type {v.get('type')!r}: allowed is one of {list(TYPES)}")
        secret = v.get("secret")
        if not isinstance(secret, str) or not secret.strip():
            raise ValueError(
                f"{where} has no secret: allowed is the name of a Secrets Manager secret, or ssm:<parameter> "
                "for an SSM SecureString, holding the webhook URL or key"
            )
        problem = secret_name_problem(secret)
        if problem:
            raise ValueError(f"{where} has secret {secret!r}, which cannot exist: allowed is {problem}")
        channels.append(Channel(v["type"], secret))
    if len(set(channels)) != len(channels):
        raise ValueError(f"context key '{key}' lists a channel twice: allowed is each type and secret once")
    return tuple(channels)


# The Lambda's environment (cdk_app/notifier.py writes it, handler.py reads it).
ENV_CHANNELS = "NOTIFIER_CHANNELS"  # JSON [[type, secret], ...]
ENV_ALARMS = "NOTIFIER_ALARMS"  # JSON [[alarm name, verdict, target, location, window seconds], ...]
ENV_LOCATIONS = "NOTIFIER_LOCATIONS"  # JSON [location, ...]; [] for one checker (no Location dimension)
ENV_SERVICE = "NOTIFIER_SERVICE"
ENV_DASHBOARD = "NOTIFIER_DASHBOARD_URL"
ENV_RUNBOOK = "NOTIFIER_RUNBOOK_URL"

# What the notifier publishes when a channel is still undelivered at its deadline: one datum
# without dimensions (the notifier-failures alarm reads it) and one per channel.
NAMESPACE = "HelloWorld/Notifier"
DELIVERY_FAILURES = "DeliveryFailures"
CHANNEL = "Channel"
# Its log line per channel and notification (make drill reads them): {"type": "delivery", ...}.
DELIVERY_LOG = "delivery"
