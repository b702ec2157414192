"""Checker settings, read once from environment variables and validated with clear errors."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from urllib.parse import urlsplit

MAX_TARGETS = 10  # targets per checker (the synth check keeps a run's datapoints within one call)
MAX_BODY_BYTES = 64 * 1024  # default per target: the probe reads at most this much of a body
MAX_BODY_BYTES_RANGE = (1024, 10 * 1024 * 1024)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$"
_REGION = re.compile(REGION_PATTERN)
# An SSM parameter name as PutParameter accepts it (a fully qualified, /-rooted one here).
_PARAMETER = re.compile(r"^/[A-Za-z0-9_.\-/]{1,1010}$")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable and what is allowed."""


# How an error names each setting, and shows its value. The Lambda's environment variables are
# the default; the CDK app and `make local` name what their users typed (context keys, options).
Labels = Mapping[str, Callable[[object], str]]


def _shown(name: str) -> Callable[[object], str]:
    return lambda value: f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"


# The Lambda's environment, owned here: Settings.to_env writes it, Settings.from_env reads it.
ENV = {
    "targets": "CHECK_TARGETS",
    "interval": "PROBE_INTERVAL_SECONDS",
    "schedule": "SCHEDULE_SECONDS",
    "confirm": "CONFIRM_PROBES",
    "ca_bundle": "CA_BUNDLE",
    # With checkerRegions: the Location dimension, and the home region to publish to.
    "location": "LOCATION",
    "metrics_region": "METRICS_REGION",
}
ENV_LABELS: Labels = {
    **{field: _shown(name) for field, name in ENV.items()},
    "targets": lambda _: ENV["targets"],
    "timeout": lambda value: f"target timeout {value:g}s",
}


@dataclass(frozen=True)
class Target:
    """A URL to probe: given (`url`), or read by the Lambda at the start of each invocation from an
    SSM parameter (`url_parameter` in `url_parameter_region`; checker_lambda/urls.py). Exactly one."""

    name: str
    url: str  # "" until read, for a target with a url_parameter
    expect_status: int = 200
    expect_body: str | None = None  # substring the body must contain
    expect_regex: str | None = None  # or a regular expression it must match (re.search)
    timeout: float = 5.0
    max_body_bytes: int = MAX_BODY_BYTES  # read at most this much; expectations are judged on it
    url_parameter: str | None = None  # an SSM parameter holding the URL, read at run time
    url_parameter_region: str | None = None  # its region (the home region)

    @property
    def https(self) -> bool:
        return urlsplit(self.url).scheme == "https"

    def to_json(self) -> dict[str, object]:
        """What Target.parse reads back: the fields that differ from their defaults."""
        defaults = {f.name: f.default for f in fields(self)}
        keep = ("name", "url_parameter", "url_parameter_region") if self.url_parameter else ("name", "url")
        return {k: v for k, v in asdict(self).items() if k in keep or (k != "url" and v != defaults[k])}

    def with_url(self, url: str) -> Target:
        """This target with the URL read from its parameter, checked as a given one would be."""
        target = replace(self, url=url)
        target.validate(f"{self.name} (from {self.url_parameter})", resolved=True)
        return target

    @classmethod
    def parse(cls, raw: Mapping[str, object], where: str) -> Target:
        allowed = {
            "name",
            "url",
            "url_parameter",
            "url_parameter_region",
            "expect_status",
            "expect_body",
            "expect_regex",
            "timeout",
            "max_body_bytes",
        }
        unknown = set(raw) - allowed
        if unknown:
            raise SettingsError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(allowed)})")
        url = raw.get("url")
        parameter = raw.get("url_parameter")
        if (url is None) == (parameter is None):
            raise SettingsError(f"{where}: give url (an http:// or https:// URL) or url_parameter, exactly one")
        if parameter is not None:
            region = raw.get("url_parameter_region")
            if not isinstance(parameter, str) or not _PARAMETER.match(parameter):
                raise SettingsError(f"{where}.url_parameter={parameter!r} must be an SSM parameter name like /a/b")
            if not isinstance(region, str) or not _REGION.match(region):
                raise SettingsError(
                    f"{where}.url_parameter_region={region!r} must be an AWS region name like eu-west-1"
                )
        elif "url_parameter_region" in raw:
            raise SettingsError(f"{where}.url_parameter_region goes with url_parameter, not url")
        if url is not None and not isinstance(url, str):
            raise SettingsError(f"{where}.url is required: an http:// or https:// URL")
        name = raw.get("name", _default_name(url) if isinstance(url, str) else _default_name(f"ssm://{parameter}"))
        expect_status = raw.get("expect_status", 200)
        timeout = raw.get("timeout", 5.0)
        expect_body = raw.get("expect_body")
        expect_regex = raw.get("expect_regex")
        target = cls(
            name=name,  # type: ignore[arg-type]
            expect_status=expect_status,  # type: ignore[arg-type]
            expect_body=expect_body,  # type: ignore[arg-type]
            expect_regex=expect_regex,  # type: ignore[arg-type]
            timeout=timeout,  # type: ignore[arg-type]
            max_body_bytes=raw.get("max_body_bytes", MAX_BODY_BYTES),  # type: ignore[arg-type]
            url="" if url is None else url,
            url_parameter=parameter,  # type: ignore[arg-type]
            url_parameter_region=raw.get("url_parameter_region") if parameter is not None else None,  # type: ignore[arg-type]
        )
        target.validate(where)
        return target

    def validate(self, where: str, *, resolved: bool = False) -> None:
        """`resolved`: the URL read from the parameter is checked, not the rest (already was)."""
        if self.url_parameter and not self.url and not resolved:
            self._validate_rest(where)
            return
        if not self.url.isascii():
            # Sent as-is on the wire: an international name must be given in its IDNA (xn--) form,
            # a path percent-encoded.
            raise SettingsError(f"{where}.url={self.url!r} must be ASCII: punycode the host, percent-encode the path")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(f"{where}.url={self.url!r} is not an http:// or https:// URL")
        if not resolved:
            self._validate_rest(where)

    def _validate_rest(self, where: str) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise SettingsError(f"{where}.name={self.name!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        if not isinstance(self.expect_status, int) or not 100 <= self.expect_status <= 599:
            raise SettingsError(f"{where}.expect_status={self.expect_status!r} must be an integer 100..599")
        if not isinstance(self.timeout, (int, float)) or not 0.1 <= self.timeout <= 30:
            raise SettingsError(f"{where}.timeout={self.timeout!r} must be a number of seconds 0.1..30")
        low, high = MAX_BODY_BYTES_RANGE
        if type(self.max_body_bytes) is not int or not low <= self.max_body_bytes <= high:
            raise SettingsError(f"{where}.max_body_bytes={self.max_body_bytes!r} must be an integer {low}..{high}")
        if self.expect_body is not None and self.expect_regex is not None:
            raise SettingsError(f"{where}: give expect_body or expect_regex, not both")
        if self.expect_body is not None and not isinstance(self.expect_body, str):
            raise SettingsError(f"{where}.expect_body must be a string")
        if self.expect_regex is not None:
            try:
                re.compile(self.expect_regex)
            except (re.error, TypeError) as exc:
                raise SettingsError(f"{where}.expect_regex={self.expect_regex!r} is not a valid regex: {exc}") from None


def _default_name(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc or "target"
    if parts.hostname and ":" in parts.hostname:
        # An IPv6 literal, spelled as in ipv6-literal.net names: [::1]:8080 -> 0--1-8080.
        netloc = parts.hostname.replace(":", "-")
        netloc = ("0" if netloc.startswith("-") else "") + netloc + ("0" if netloc.endswith("-") else "")
        netloc += f"-{parts.port}" if parts.port else ""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{netloc}{parts.path}".rstrip("/"))[:64]


@dataclass(frozen=True)
class Settings:
    targets: tuple[Target, ...]
    interval: float = 10.0  # seconds between probes of a target
    schedule: float = 60.0  # seconds between invocations (the EventBridge rate)
    confirm: int = 3  # consecutive probes that confirm a state change
    ca_bundle: str | None = None  # extra CA certificates for HTTPS targets (PEM file)
    # With checkerRegions: the Location dimension this checker publishes under (its region), and
    # the home region whose CloudWatch it publishes to when that is not its own.
    location: str | None = None
    metrics_region: str | None = None

    @property
    def probes_per_invocation(self) -> int:
        return int(self.schedule // self.interval)

    @property
    def high_resolution(self) -> bool:
        return self.interval < 60

    @property
    def every_failure_is_news(self) -> bool:
        """With a Location, the quorum alarm counts only failures CloudWatch holds: publish each at once."""
        return self.location is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        raw_targets = env.get(ENV["targets"])
        if not raw_targets:
            raise SettingsError(f'{ENV["targets"]} is required: a JSON list like [{{"url": "http://host/hello"}}]')
        try:
            parsed = json.loads(raw_targets)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{ENV['targets']} is not valid JSON: {exc}") from None
        if not isinstance(parsed, list) or not parsed or not all(isinstance(t, dict) for t in parsed):
            raise SettingsError(f"{ENV['targets']} must be a non-empty JSON list of objects")
        targets = tuple(Target.parse(t, f"{ENV['targets']}[{i}]") for i, t in enumerate(parsed))
        settings = cls(
            targets=targets,
            interval=_number(env, ENV["interval"], cls.interval),
            schedule=_number(env, ENV["schedule"], cls.schedule),
            confirm=int(_number(env, ENV["confirm"], cls.confirm, integer=True)),
            ca_bundle=env.get(ENV["ca_bundle"]) or None,
            location=env.get(ENV["location"]) or None,
            metrics_region=env.get(ENV["metrics_region"]) or None,
        )
        settings.validate()
        return settings

    def to_env(self) -> dict[str, str]:
        """The Lambda's environment for these settings: from_env(to_env()) gives them back."""
        env = {
            ENV["targets"]: json.dumps([t.to_json() for t in self.targets], separators=(",", ":")),
            ENV["interval"]: f"{self.interval:g}",
            ENV["schedule"]: f"{self.schedule:g}",
            ENV["confirm"]: str(self.confirm),
        }
        for field in ("ca_bundle", "location", "metrics_region"):
            if getattr(self, field):
                env[ENV[field]] = getattr(self, field)
        return env

    def validate(self, labels: Labels = ENV_LABELS) -> None:
        """Every rule over the settings as a whole; `labels` name them as the user wrote them."""
        label = {**ENV_LABELS, **labels}
        for field in ("location", "metrics_region"):
            value = getattr(self, field)
            if value is not None and not _REGION.match(value):
                raise SettingsError(f"{label[field](value)} must be an AWS region name like eu-west-1")
        if not self.targets or len(self.targets) > MAX_TARGETS:
            raise SettingsError(f"{label['targets'](None)} must list 1..{MAX_TARGETS} targets, got {len(self.targets)}")
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise SettingsError(f"{label['targets'](None)} names must be unique, got {names}")
        if not 1 <= self.interval <= 60:
            raise SettingsError(f"{label['interval'](self.interval)} must be 1..60 seconds")
        if not 1 <= self.schedule <= 900:
            raise SettingsError(f"{label['schedule'](self.schedule)} must be 1..900 seconds")
        if self.schedule % self.interval:
            raise SettingsError(f"{label['interval'](self.interval)} must divide {label['schedule'](self.schedule)}")
        slowest = max(t.timeout for t in self.targets)
        if slowest >= self.interval:
            raise SettingsError(f"{label['timeout'](slowest)} must be shorter than {label['interval'](self.interval)}")
        if not 2 <= self.confirm <= self.probes_per_invocation:
            raise SettingsError(
                f"{label['confirm'](self.confirm)} must be 2..{self.probes_per_invocation} "
                "(at least 2, so one failed probe never changes the verdict; at most the probes per run)"
            )


def _number(env: Mapping[str, str], key: str, default: float, *, integer: bool = False) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise SettingsError(f"{key}={raw!r} must be {kind}") from None
    return value
