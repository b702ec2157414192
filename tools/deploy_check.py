"""The first step of `make deploy`, `make diff`, `make bootstrap` and `make destroy`: the
configuration is valid, alarms have somewhere to go (deploy only), and there are AWS
credentials that AWS accepts. Under two seconds, before the CDK synthesizes anything: without
it a new user waits ~10 s for the CDK's generic "Unable to resolve AWS account".

Reads cdk.json's context and the `-c key=value` options the Makefile passes to the CDK (from
ALERT_EMAIL and CONTEXT), and validates them exactly as the app does. Then the credentials:
none found is said without calling AWS; found ones are shown to STS (GetCallerIdentity, one
short attempt), which also catches an expired SSO session. One line and exit 2 when something
is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from cdk_app.config import AppConfig, ConfigError
from checker_lambda.aws_env import NO_CREDENTIALS, session_region

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("deploy", "diff", "bootstrap", "destroy")
# What to do about credentials AWS refused, expired or could not check.
FIX = "run `aws sso login` (or `aws configure`); `make preflight` checks the whole setup"
# One short attempt: the check must not be slower than the failure it replaces.
STS_TIMEOUT_SECONDS = 3
NOWHERE = (
    "make deploy needs somewhere to send alarms: ALERT_EMAIL=you@example.com, and/or https:// webhooks "
    "in context key alertWebhooks, and/or chat or paging channels in alertChannels (in cdk.json, or "
    "CONTEXT=...; docs/configuration.md)"
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


def check(argv: list[str], cdk_json: Path = ROOT / "cdk.json", *, need_alerts: bool = True) -> AppConfig:
    context: dict[str, Any] = dict(json.loads(cdk_json.read_text()).get("context", {}))
    context.update(context_options(argv))
    config = AppConfig.from_context(context.get, keys=context)
    if need_alerts and not (config.alert_email or config.alert_webhooks or config.alert_channels):
        raise ConfigError(NOWHERE)
    return config


def check_credentials(env: Any = os.environ) -> str:
    """The account the credentials belong to; ConfigError (one line) when there are none, or AWS
    refuses them. No AWS call when none are found."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        session = boto3.Session()
        credentials = session.get_credentials()
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        raise ConfigError(f"AWS configuration: {' '.join(str(exc).split())}: {FIX}") from None
    if credentials is None:
        raise ConfigError(NO_CREDENTIALS)
    region, _ = session_region(session, env)
    config = Config(
        connect_timeout=STS_TIMEOUT_SECONDS,
        read_timeout=STS_TIMEOUT_SECONDS,
        retries={"total_max_attempts": 1},
        user_agent_extra="deploy-check",
    )
    # STS answers in every region; us-east-1 is where the CDK CLI goes without one.
    sts = session.client("sts", region_name=region or "us-east-1", config=config)
    try:
        return str(sts.get_caller_identity()["Account"])
    except ClientError as exc:
        error = exc.response.get("Error", {})
        why = " ".join(f"{error.get('Code', '?')}: {error.get('Message', '')}".split())
        raise ConfigError(f"AWS refused the credentials ({why}): {FIX}") from None
    except BotoCoreError as exc:  # an expired SSO token, no network, a proxy in the way
        raise ConfigError(f"could not check the AWS credentials ({' '.join(str(exc).split())}): {FIX}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy_check", description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=TARGETS, default="deploy", help="the make target this check is for")
    args, context = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    try:
        check(context, need_alerts=args.target == "deploy")
        check_credentials()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
