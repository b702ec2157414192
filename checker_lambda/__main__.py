"""`python -m checker_lambda URL [URL ...]`: the checker as a plain health-check script.

Prints one line per probe and exits 1 when any target's last probe failed, 0 otherwise,
2 on bad arguments or a broken environment (no region or credentials for --publish, a CA
bundle that cannot be read, CloudWatch refusing the metrics). No AWS needed unless --publish.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from checker_lambda.aws_env import session_region
from checker_lambda.probe import Prober, ProbeResult
from checker_lambda.settings import MAX_BODY_BYTES, SettingsError, Target

if TYPE_CHECKING:  # boto3 only for --publish: probing and --help run on a bare Python
    from checker_lambda.metrics import CloudWatchPublisher

# The CLI options behind each Target key, to name in an error what the user typed.
OPTIONS = {
    "url": "URL",
    "expect_status": "--expect-status",
    "expect_body": "--expect-body",
    "expect_regex": "--expect-regex",
    "timeout": "--timeout",
    "max_body_bytes": "--max-body-bytes",
}
WHERE = "\x00"  # Target.parse's label, replaced by the option's name in its messages


def describe(r: ProbeResult) -> str:
    when = datetime.fromtimestamp(r.started_at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    phases = ", ".join(f"{k.replace('_', ' ')} {v:.1f}" for k, v in r.phases.items() if k != "total")
    head = f"{when}  {'UP  ' if r.ok else 'DOWN'}  {r.target}  {r.status or '-'}  {r.phases['total']:.1f} ms"
    tail = f" ({phases})" if phases else ""
    if r.cert_days_remaining is not None:
        tail += f"  cert {r.cert_days_remaining:.0f} days"
    if not r.ok:
        tail += f"  reason={r.reason.value if r.reason else '?'}: {r.detail}"
    elif r.detail:  # e.g. the body was longer than the limit
        tail += f"  ({r.detail})"
    return head + tail


def cloudwatch_publisher(*, high_resolution: bool) -> CloudWatchPublisher:
    """A publisher for this shell's AWS account; SettingsError (one line) when no region or
    credentials are configured, found before any probe runs. Looks only at local config."""
    try:
        import boto3
        from botocore.exceptions import NoRegionError

        from checker_lambda.metrics import CloudWatchPublisher
    except ModuleNotFoundError as exc:
        raise SettingsError(
            f"needs boto3 ({exc}): pip install -r requirements-local.txt, or run with .venv/bin/python (make local)"
        ) from None

    session = boto3.Session()
    if session.get_credentials() is None:
        raise SettingsError(
            "needs AWS credentials and none were found: run `aws configure` (or `aws sso login`), "
            "or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    region, _ = session_region(session, os.environ)
    try:
        client = session.client("cloudwatch", region_name=region)
    except NoRegionError:
        raise SettingsError("needs an AWS region: export AWS_REGION=<region>, or set one in your AWS profile") from None
    return CloudWatchPublisher(client, high_resolution=high_resolution)


def for_the_cli(message: str) -> str:
    """Target's message in the CLI's words: `--timeout 99.0 must be ...`, not `x.timeout=99.0 ...`."""
    for key, option in OPTIONS.items():
        message = message.replace(f"{WHERE}.{key}=", f"{option} ").replace(f"{WHERE}.{key}", option)
        if key != "url" and message.startswith(f"{WHERE}:"):  # "give expect_body or expect_regex, not both"
            message = message.replace(key, option)
    message = message.removeprefix(f"{WHERE}: ")
    if message.startswith("URL ") and "://" not in message.split()[1]:  # 127.0.0.1:8765/hello
        url = message.split()[1].strip("'")
        message += f" (did you mean http://{url}?)"
    return message


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m checker_lambda", description=__doc__.splitlines()[0])
    p.add_argument("urls", nargs="+", metavar="URL")
    p.add_argument("--expect-status", type=int, default=200, help="HTTP status a healthy answer has (default 200)")
    p.add_argument("--expect-body", help="substring the body must contain")
    p.add_argument("--expect-regex", help="regular expression the body must match")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per probe (default 5)")
    p.add_argument(
        "--max-body-bytes", type=int, default=MAX_BODY_BYTES, help=f"body bytes to read (default {MAX_BODY_BYTES})"
    )
    p.add_argument("--watch", action="store_true", help="keep probing until interrupted")
    p.add_argument("--count", type=int, default=1, help="probes per URL without --watch (default 1)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between probes (default 10)")
    p.add_argument("--ca-bundle", help="PEM file of extra CA certificates for HTTPS")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    p.add_argument("--publish", action="store_true", help="also publish metrics to CloudWatch")
    return p.parse_args(argv)


def targets_of(args: argparse.Namespace) -> tuple[Target, ...]:
    """One target per URL, validated as the Lambda validates its settings (SettingsError)."""
    targets = tuple(
        Target.parse(
            {
                "url": url,
                "expect_status": args.expect_status,
                "timeout": args.timeout,
                "max_body_bytes": args.max_body_bytes,
                **({"expect_body": args.expect_body} if args.expect_body is not None else {}),
                **({"expect_regex": args.expect_regex} if args.expect_regex is not None else {}),
            },
            WHERE,
        )
        for url in args.urls
    )
    if len({t.name for t in targets}) != len(targets):
        raise SettingsError("each URL must be different")
    if args.count < 1 or args.interval <= 0:
        raise SettingsError("--count must be >= 1 and --interval > 0")
    return targets


def publisher_of(args: argparse.Namespace) -> tuple[CloudWatchPublisher | None, tuple[type[Exception], ...]]:
    """With --publish, the publisher and the AWS errors it may raise; SettingsError names the option."""
    if not args.publish:
        return None, ()
    try:
        publisher = cloudwatch_publisher(high_resolution=args.interval < 60)
    except SettingsError as exc:
        raise SettingsError(f"--publish {exc}") from None
    except Exception as exc:
        # botocore is importable here: cloudwatch_publisher found boto3 before it could fail
        from botocore.exceptions import BotoCoreError, ClientError

        if not isinstance(exc, BotoCoreError | ClientError):
            raise
        # e.g. AWS_PROFILE names a profile that does not exist
        raise SettingsError(f"--publish: {one_line(exc)}") from None
    from botocore.exceptions import BotoCoreError, ClientError

    return publisher, (BotoCoreError, ClientError)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        targets = targets_of(args)
    except SettingsError as exc:
        print(f"error: {for_the_cli(str(exc))}", file=sys.stderr)
        return 2
    try:
        context = ssl.create_default_context(cafile=args.ca_bundle) if args.ca_bundle else None
    except (OSError, ssl.SSLError) as exc:
        print(
            f"error: --ca-bundle {args.ca_bundle}: {exc.strerror or exc} (a PEM file of CA certificates)",
            file=sys.stderr,
        )
        return 2
    try:
        publisher, aws_errors = publisher_of(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    prober = Prober(ssl_context=context)
    last: dict[str, bool] = {}
    rounds = 0
    try:
        while args.watch or rounds < args.count:
            if rounds:
                time.sleep(args.interval)
            results = [prober.probe(t) for t in targets]
            for r in results:
                print(json.dumps(r.as_log()) if args.json else describe(r), flush=True)
                last[r.target] = r.ok
            if publisher is not None:
                try:
                    publisher.publish(results)
                except aws_errors as exc:
                    print(f"error: publishing to CloudWatch failed: {one_line(exc)}", file=sys.stderr)
                    return 2
            rounds += 1
    except KeyboardInterrupt:
        pass
    return 0 if last and all(last.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
