"""`make deploy`'s first step: the configuration the deploy will use is valid, and alarms have
somewhere to go (an email, webhooks, or both). Seconds, offline, before the CDK starts.

Reads cdk.json's context and the `-c key=value` options the Makefile passes to the CDK (from
ALERT_EMAIL and CONTEXT), and validates them exactly as the app does. One line and exit 2
when something is wrong.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cdk_app.config import AppConfig, ConfigError

ROOT = Path(__file__).resolve().parent.parent
NOWHERE = (
    "make deploy needs somewhere to send alarms: ALERT_EMAIL=you@example.com, and/or https:// webhooks "
    "in context key alertWebhooks (in cdk.json, or CONTEXT=...; docs/configuration.md)"
)


def context_options(argv: list[str]) -> dict[str, str]:
    """The CDK's `-c key=value` / `--context key=value` options, as the CDK reads them: strings."""
    found: dict[str, str] = {}
    rest = iter(argv)
    for arg in rest:
        if arg in ("-c", "--context"):
            pair = next(rest, None)
        elif arg.startswith("--context="):
            pair = arg.removeprefix("--context=")
        else:
            raise ConfigError(f"CONTEXT: {arg!r} is not a context option; allowed is -c key=value ...")
        if pair is None or "=" not in pair:
            raise ConfigError(f"CONTEXT: {arg} {pair or ''} needs key=value".replace("  ", " "))
        key, value = pair.split("=", 1)
        found[key] = value
    return found


def check(argv: list[str], cdk_json: Path = ROOT / "cdk.json") -> AppConfig:
    context: dict[str, Any] = dict(json.loads(cdk_json.read_text()).get("context", {}))
    context.update(context_options(argv))
    config = AppConfig.from_context(context.get, keys=context)
    if not config.alert_email and not config.alert_webhooks:
        raise ConfigError(NOWHERE)
    return config


def main(argv: list[str] | None = None) -> int:
    try:
        check(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
