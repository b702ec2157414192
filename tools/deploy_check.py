"""The first step of `make deploy`, `make diff`, `make bootstrap` and `make destroy`: the
configuration is valid, alarms have somewhere to go (deploy only), and there are AWS
credentials that AWS accepts. Under two seconds, before the CDK synthesizes anything: without
it a new user waits ~10 s for the CDK's generic "Unable to resolve AWS account".

Reads cdk.json's context and the `-c key=value` options the Makefile passes to the CDK (from
ALERT_EMAIL and CONTEXT), and validates them exactly as the app does. Then the credentials:
none found is said without calling AWS; found ones are shown to STS (GetCallerIdentity, one
short attempt), which also catches an expired SSO session. One line and exit 2 when something
is wrong.

`--fill` (make deploy and make diff): who reaches and administers the cluster, filled in at
deploy time, never at synth. API_CIDRS and ADMIN_PRINCIPALS are added to the configured
apiCidrs and adminPrincipals; `me` in them is this machine's public address (`<ip>/32`, from
checkip.amazonaws.com) and the IAM principal of the credentials (STS). Prints what it filled in
on stderr, and the CDK context options on stdout, one argument a line.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
import urllib.request
from pathlib import Path
from typing import Any

from cdk_app.config import WORLD, AppConfig, ConfigError
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

# Email is how the notifier's own failures and its undelivered pages reach someone (docs/notifications.md).
LAST_RESORT = (
    "warning: alertChannels without alertEmail: a page no channel takes waits in the undelivered-alerts queue "
    "and its alarm emails nobody; set ALERT_EMAIL=you@example.com too"
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
    if need_alerts and config.alert_channels and not config.alert_email:
        print(LAST_RESORT, file=sys.stderr)
    return config


def check_credentials(env: Any = os.environ) -> str:
    """The account the credentials belong to; ConfigError (one line) when there are none, or AWS
    refuses them. No AWS call when none are found."""
    return caller_identity(env)["Account"]


def caller_identity(env: Any = os.environ) -> dict[str, str]:
    """STS GetCallerIdentity of the credentials, as check_credentials checks them."""
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
        found = sts.get_caller_identity()
        return {"Account": str(found["Account"]), "Arn": str(found["Arn"])}
    except ClientError as exc:
        error = exc.response.get("Error", {})
        why = " ".join(f"{error.get('Code', '?')}: {error.get('Message', '')}".split())
        raise ConfigError(f"AWS refused the credentials ({why}): {FIX}") from None
    except BotoCoreError as exc:  # an expired SSO token, no network, a proxy in the way
        raise ConfigError(f"could not check the AWS credentials ({' '.join(str(exc).split())}): {FIX}") from None


# Where `me` in API_CIDRS is looked up: AWS's own service, which answers with the caller's address.
CHECKIP_URL = "https://checkip.amazonaws.com"
CHECKIP_TIMEOUT_SECONDS = 5


def my_address(url: str | None = None) -> str:
    """This machine's public IPv4 address as `<ip>/32`; ConfigError (one line) when it cannot be had."""
    url = url or os.environ.get("CHECKIP_URL", CHECKIP_URL)  # tests point it at a local server
    try:
        if not url.startswith(("https://", "http://")):
            raise ValueError("not an http(s) URL")
        with urllib.request.urlopen(url, timeout=CHECKIP_TIMEOUT_SECONDS) as answer:  # noqa: S310  # nosec B310 (scheme checked)
            text = answer.read(64).decode("ascii", "replace").strip()
        return f"{ipaddress.IPv4Address(text)}/32"
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"API_CIDRS: 'me' needs this machine's public address, and {url} gave none ({exc}); "
            'allowed is API_CIDRS="203.0.113.0/24 ...", or API_CIDRS= for a private endpoint'
        ) from None


_CALLER = re.compile(r"^arn:(aws[\w-]*):(?:sts|iam)::(\d{12}):(user|assumed-role)/(.+)$")


def my_principals(arn: str) -> list[str]:
    """The IAM principal behind an STS caller ARN, as adminPrincipals entries. An assumed role's
    ARN lacks the role's path (an SSO role's is /aws-reserved/sso.amazonaws.com/<region>/), so
    it is named with and without one: an ArnLike pattern, exact but for the path."""
    found = _CALLER.match(arn)
    if not found:
        raise ConfigError(
            f"ADMIN_PRINCIPALS: 'me' is {arn}, which cannot assume a role; allowed is an IAM user or role, "
            "e.g. ADMIN_PRINCIPALS=arn:aws:iam::123456789012:role/Admin, or ADMIN_PRINCIPALS= for none"
        )
    partition, account, kind, name = found.groups()
    if kind == "user":
        return [f"arn:{partition}:iam::{account}:user/{name}"]
    role = name.split("/", 1)[0]
    return [f"arn:{partition}:iam::{account}:role/{role}", f"arn:{partition}:iam::{account}:role/*/{role}"]


def fill(argv: list[str], api_cidrs: str, admin_principals: str, env: Any = os.environ) -> list[str]:
    """The context options that give the deployer kubectl: apiCidrs and adminPrincipals, each the
    configured list plus what the make variable adds. Says what it filled in on stderr."""
    config = check(argv, need_alerts=False)
    cidrs = list(config.api_cidrs)
    for word in api_cidrs.split():
        if config.api_cidrs == (WORLD,):
            break  # already open to all; adding to it would be refused
        cidrs.append(my_address() if word == "me" else word)
    principals = list(config.admin_principals)
    for word in admin_principals.split():
        principals += my_principals(caller_identity(env)["Arn"]) if word == "me" else [word]
    options = ["-c", f"apiCidrs={json.dumps(cidrs, separators=(',', ':'))}"]
    options += ["-c", f"adminPrincipals={json.dumps(principals, separators=(',', ':'))}"]
    filled = check([*argv, *options], need_alerts=False)  # the same one-line errors as synth
    endpoint = (
        "private only (no public endpoint)"
        if not filled.api_cidrs
        else "public for the whole internet, and private"
        if filled.api_cidrs == (WORLD,)
        else f"public for {', '.join(filled.api_cidrs)}, and private"
    )
    admins = ", ".join(filled.admin_principals) or "no one (no AdminRole; ADMIN_PRINCIPALS=me to be one)"
    print(f"Kubernetes API endpoint: {endpoint} (API_CIDRS={api_cidrs!r})", file=sys.stderr)
    print(f"kubectl as cluster admin (AdminRole): {admins} (ADMIN_PRINCIPALS={admin_principals!r})", file=sys.stderr)
    return options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy_check", description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=TARGETS, default="deploy", help="the make target this check is for")
    parser.add_argument("--fill", action="store_true", help="print the apiCidrs and adminPrincipals to deploy with")
    parser.add_argument("--api-cidrs", default="me", help="API_CIDRS: CIDRs (and `me`) to add to apiCidrs")
    parser.add_argument("--admin-principals", default="me", help="ADMIN_PRINCIPALS: ARNs (and `me`) to add")
    args, context = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.fill:
            print("\n".join(fill(context, args.api_cidrs, args.admin_principals)))
            return 0
        check(context, need_alerts=args.target == "deploy")
        check_credentials()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
