"""URLs read at run time: a target may name an SSM parameter instead of a URL (the service's own
target does: the cluster stack writes `/HelloWorldEks/url` in the home region).

The Lambda reads each such parameter at the start of every invocation (ssm:GetParameter, one
call, short timeouts: budgets.url_read_budget), so a new URL (a domain turned on, a replaced load
balancer) is probed from the next invocation on, in every region, with nothing to redeploy. The
last good value is kept: a failed read probes it, logs one line and is counted (UrlReadFailures,
published in the home region with the probes, which an alarm there reads); with none yet, the
invocation fails, which the alarms see (the Lambda's Errors at home, CheckerErrors from another
region, and silence on the heartbeat). CloudFormation never resolves the parameter, so no deploy
depends on which credentials it would use for that (docs/decisions.md §8).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import boto3

from checker_lambda.budgets import url_client_config
from checker_lambda.log import log_line
from checker_lambda.settings import Settings


def needs_read(settings: Settings) -> bool:
    return any(t.url_parameter for t in settings.targets)


class UrlReader:
    """Reads the targets' URL parameters; keeps the last good value of each across invocations."""

    def __init__(self, *, remote: bool, client: Callable[[str], Any] | None = None) -> None:
        self.config = url_client_config(remote=remote)
        self._client = client or (lambda region: boto3.client("ssm", region_name=region, config=self.config))
        self._clients: dict[str, Any] = {}
        self.cached: dict[tuple[str, str], str] = {}  # (region, name) -> the last value read
        self.failures = 0  # reads of the last `resolve` that failed and fell back to the cached value

    def _read(self, region: str, name: str) -> str:
        if region not in self._clients:
            self._clients[region] = self._client(region)
        value = self._clients[region].get_parameter(Name=name)["Parameter"]["Value"]
        if not isinstance(value, str):
            raise TypeError(f"{name} holds no string")
        return value

    def resolve(self, settings: Settings) -> Settings:
        """The settings with each parameter's URL filled in. Raises when one has never been read."""
        targets = []
        self.failures = 0
        for target in settings.targets:
            if not target.url_parameter or not target.url_parameter_region:
                targets.append(target)
                continue
            key = (target.url_parameter_region, target.url_parameter)
            try:
                resolved = target.with_url(self._read(*key))
            except Exception as exc:
                if key not in self.cached:
                    raise
                _log_read_failed(key, exc, self.cached[key])
                self.failures += 1
                resolved = target.with_url(self.cached[key])
            else:
                self.cached[key] = resolved.url
            targets.append(resolved)
        return replace(settings, targets=tuple(targets))


def _log_read_failed(key: tuple[str, str], exc: Exception, used: str) -> None:
    region, name = key
    why = f"{type(exc).__name__}: {exc}"[:300]
    log_line({"type": "url_read_failed", "parameter": name, "region": region, "why": why, "probing": used})
