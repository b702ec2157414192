"""The command: the session and its clients as the CDK CLI resolves them, every check at once under one
deadline, one line each."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError

from cdk_app.config import (
    ConfigError,
)
from checker_lambda.aws_env import resolve_region, session_region
from tools.preflight.account import REGION_CALL, Preflight
from tools.preflight.checks import CHECKS
from tools.preflight.results import Check, Result
from tools.preflight.sources import ROOT, parse_context, read_config

DEADLINE_SECONDS = 20.0
CLIENTS = ("sts", "ssm", "ec2", "eks", "service-quotas", "cloudformation", "secretsmanager")


def run_all(
    preflight: Preflight, deadline: float = DEADLINE_SECONDS, out: Any = None, checks: Sequence[Check] = CHECKS
) -> list[Result]:
    """Every check at once; each line printed in order as soon as it is known. A check still
    running at the deadline is a FAIL (its thread is a daemon: it cannot hold the exit)."""
    out = out or sys.stdout
    results: dict[str, Result] = {}
    threads = []
    for check in checks:

        def work(check: Check = check) -> None:
            results[check.name] = preflight.run(check)

        thread = threading.Thread(target=work, name=f"preflight-{check.name}", daemon=True)
        thread.start()
        threads.append((check.name, thread))
    end = time.monotonic() + deadline
    ordered = []
    for name, thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
        result = results.get(name) or Result("FAIL", name, f"no answer within {deadline:g} s: check the network")
        print(result.line(), file=out, flush=True)
        ordered.append(result)
    return ordered


def build(context: Mapping[str, Any], env: Mapping[str, str]) -> Preflight:
    """The real thing: a boto3 session as the CDK CLI would resolve it, short timeouts."""
    import boto3

    config = read_config(context)
    qualifier = str(
        {**json.loads((ROOT / "cdk.json").read_text())["context"], **context}.get(
            "@aws-cdk/core:bootstrapQualifier", "hnb659fds"
        )
    )
    botocore_config = Config(
        connect_timeout=3, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"}, user_agent_extra="preflight"
    )
    try:
        session = boto3.Session()
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        region, source = resolve_region(env, None, None)
        return Preflight(
            config, {}, region=region, region_source=source, session_error=exc, bootstrap_qualifier=qualifier
        )
    region, source = session_region(session, env)
    if config.home_region:  # every stack is pinned: the shell's region does not matter
        region, source = config.home_region, "checkerRegions[0], where the stacks are pinned"
    clients = {
        # STS answers without a region (global endpoint), so credentials are checked either way.
        name: session.client(name, region_name=region, config=botocore_config)  # type: ignore[call-overload]
        for name in (CLIENTS if region else ("sts",))
    }
    return Preflight(
        config,
        clients,
        region=region,
        region_source=source,
        known_regions=frozenset(session.get_available_regions("eks")),
        bootstrap_qualifier=qualifier,
        regional=lambda service, region: session.client(  # type: ignore[call-overload]
            service, region_name=region, config=REGION_CALL
        ),
        # The other checkerRegions get a checker stack each: each must be bootstrapped too.
        other_ssm={
            other: session.client("ssm", region_name=other, config=botocore_config)
            for other in config.checker_regions[1:]
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.preflight", description="Check an AWS account, region and machine before `make deploy`."
    )
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="as cdk -c")
    parser.add_argument("--deadline", type=float, default=DEADLINE_SECONDS, help="seconds for all checks together")
    args = parser.parse_args(argv)
    try:
        preflight = build(parse_context(args.context), os.environ)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = run_all(preflight, args.deadline)
    return 1 if any(r.status == "FAIL" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
