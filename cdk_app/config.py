"""The app's configuration: one typed, validated object read from CDK context.

Defaults live in cdk.json; `cdk deploy -c key=value` (or the Makefile's variables) override
them. A bad value stops synth with one line naming the key and what is allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from checker_lambda.settings import Settings, SettingsError, Target

ContextGetter = Callable[[str], Any]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INSTANCE = re.compile(r"^[a-z][a-z0-9-]*\.(nano|micro|small|medium|large|[0-9]*xlarge|metal)$")
_DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$")
# Periods a CloudWatch alarm accepts (10 and 30 need high-resolution metrics); one probe each.
ALARM_PERIODS = (10, 30, 60)


class ConfigError(ValueError):
    """One line: which context key is wrong and what is allowed."""


@dataclass(frozen=True)
class AppConfig:
    alert_email: str | None
    node_instance_type: str
    node_count: int
    schedule_minutes: int
    probe_interval_seconds: int
    probe_timeout_seconds: float
    confirm_probes: int
    name_prefix: str
    extra_targets: tuple[Target, ...]
    cert_expiry_days: int

    @property
    def namespace(self) -> str:
        return self.name_prefix

    @property
    def node_arm64(self) -> bool:
        """Graviton instance families carry a 'g' after the generation digit (t4g, m7g, c8gd)."""
        family = self.node_instance_type.split(".")[0]
        return bool(re.match(r"^[a-z]+\d+g", family))

    @classmethod
    def from_context(cls, get: ContextGetter) -> AppConfig:
        def raw(key: str) -> Any:
            value = get(key)
            if value is None:
                raise ConfigError(f"context key '{key}' is missing (its default belongs in cdk.json)")
            return value

        def integer(key: str, low: int, high: int, allowed: tuple[int, ...] = ()) -> int:
            value = raw(key)
            try:
                number = int(value)
                if isinstance(value, float) or str(number) != str(value).strip():
                    raise ValueError
            except (TypeError, ValueError):
                number = None  # type: ignore[assignment]
            if number is None or (allowed and number not in allowed) or not low <= number <= high:
                what = f"one of {list(allowed)}" if allowed else f"an integer {low}..{high}"
                raise ConfigError(f"context key '{key}'={value!r} is invalid: allowed is {what}")
            return number

        email = str(raw("alertEmail")).strip()
        if email and not _EMAIL.match(email):
            raise ConfigError(f"context key 'alertEmail'={email!r} is invalid: allowed is an email address or ''")
        instance = str(raw("nodeInstanceType"))
        if not _INSTANCE.match(instance):
            raise ConfigError(
                f"context key 'nodeInstanceType'={instance!r} is invalid: allowed is an EC2 type like t3.medium"
            )
        prefix = str(raw("namePrefix"))
        if not _DNS_LABEL.match(prefix):
            raise ConfigError(
                f"context key 'namePrefix'={prefix!r} is invalid: allowed is 1-20 of a-z 0-9 -, starting with a letter"
            )
        timeout_raw = raw("probeTimeoutSeconds")
        try:
            timeout = float(timeout_raw)
        except (TypeError, ValueError):
            timeout = -1.0
        if not 0.5 <= timeout <= 30:
            raise ConfigError(
                f"context key 'probeTimeoutSeconds'={timeout_raw!r} is invalid: allowed is a number 0.5..30"
            )
        config = cls(
            alert_email=email or None,
            node_instance_type=instance,
            node_count=integer("nodeCount", 1, 20),
            schedule_minutes=integer("scheduleMinutes", 1, 15),
            probe_interval_seconds=integer("probeIntervalSeconds", 10, 60, ALARM_PERIODS),
            probe_timeout_seconds=timeout,
            confirm_probes=integer("confirmProbes", 2, 10),
            name_prefix=prefix,
            extra_targets=_targets(raw("extraTargets")),
            cert_expiry_days=integer("certExpiryDays", 1, 365),
        )
        if config.probe_timeout_seconds >= config.probe_interval_seconds:
            raise ConfigError(
                f"context key 'probeTimeoutSeconds'={timeout_raw!r} is invalid: allowed is less than "
                f"probeIntervalSeconds ({config.probe_interval_seconds})"
            )
        per_invocation = config.schedule_minutes * 60 // config.probe_interval_seconds
        if config.confirm_probes > per_invocation:
            raise ConfigError(
                f"context key 'confirmProbes'={config.confirm_probes} is invalid: allowed is 2..{per_invocation} "
                "(probes per invocation)"
            )
        config._check_checker()
        return config

    def checker_environment(self, default_target: dict[str, Any]) -> dict[str, str]:
        """The Lambda's environment; checker_lambda.settings.Settings.from_env reads it back."""
        targets = [default_target] + [{k: v for k, v in vars(t).items() if v is not None} for t in self.extra_targets]
        return {
            "CHECK_TARGETS": json.dumps(targets, separators=(",", ":")),
            "PROBE_INTERVAL_SECONDS": str(self.probe_interval_seconds),
            "SCHEDULE_SECONDS": str(self.schedule_minutes * 60),
            "CONFIRM_PROBES": str(self.confirm_probes),
        }

    def _check_checker(self) -> None:
        """Run the checker's own validation on what the Lambda will receive, at synth time."""
        placeholder = {"name": "hello", "url": "http://placeholder/hello", "timeout": self.probe_timeout_seconds}
        env = self.checker_environment(placeholder)
        try:
            Settings.from_env(env)
        except SettingsError as exc:
            raise ConfigError(f"checker settings from context are invalid: {exc}") from None


def _targets(value: Any) -> tuple[Target, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError as exc:
            raise ConfigError(f"context key 'extraTargets' is not valid JSON: {exc}") from None
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ConfigError("context key 'extraTargets' is invalid: allowed is a list of {name, url, ...} objects")
    try:
        return tuple(Target.parse(t, f"extraTargets[{i}]") for i, t in enumerate(value))
    except SettingsError as exc:
        raise ConfigError(f"context key {exc}") from None
