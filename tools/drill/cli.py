"""The command: arguments, the session and region, the outputs, then a drill or an undo."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from checker_lambda.aws_env import NO_CREDENTIALS, session_region
from tools.drill import __doc__ as drill_doc
from tools.drill.alarms import find_alarms, ready, subscription_warnings
from tools.drill.errors import DrillError, Stopped, one_line
from tools.drill.limits import MAX_SECONDS, Clock, bounds
from tools.drill.listener import find_listener, undo
from tools.drill.modes import Drill, drill_alarm_mode, drill_outage_mode
from tools.outputs import OutputsError, from_cloudformation, from_file, region_of

ROOT = Path(__file__).resolve().parents[2]
UNDO_FILE = ROOT / ".drill-undo.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.drill", description=drill_doc.splitlines()[0])
    p.add_argument("--mode", choices=["alarm", "outage"], default="alarm", help="alarm (default, safe) or outage")
    p.add_argument("--undo", action="store_true", help="restore the listener from the undo file, and stop")
    p.add_argument("--max-seconds", type=float, default=MAX_SECONDS, help="outage mode: the longest outage")
    p.add_argument("--region", help="the stack's region (default: from the outputs, else your AWS configuration)")
    p.add_argument("--outputs", type=Path, default=ROOT / "cdk-outputs.json", help="default cdk-outputs.json")
    p.add_argument("--undo-file", type=Path, default=UNDO_FILE, help=argparse.SUPPRESS)
    p.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="as cdk -c")
    args = p.parse_args(argv)
    if not 1 <= args.max_seconds <= 900:
        p.error("--max-seconds must be between 1 and 900")
    return args


def session_and_region(args: argparse.Namespace, outputs: dict[str, str] | None) -> tuple[Any, str]:
    import boto3

    session = boto3.Session()
    region = args.region or (region_of(outputs) if outputs else None) or session_region(session, os.environ)[0]
    if not region:
        raise DrillError("no AWS region: export AWS_REGION=<region>, or make drill ARGS='--region <region>'")
    if session.get_credentials() is None:
        raise DrillError(NO_CREDENTIALS)
    return session, region


def run(args: argparse.Namespace, clock: Clock) -> int:
    from botocore.config import Config

    config = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})
    if args.undo:
        import boto3

        if not args.undo_file.exists():
            return undo(lambda region: None, args.undo_file)
        session = boto3.Session()
        if session.get_credentials() is None:
            raise DrillError(NO_CREDENTIALS)
        return undo(lambda region: session.client("elbv2", region_name=region, config=config), args.undo_file)

    from tools.preflight.sources import parse_context, read_config

    app = read_config(parse_context(args.context))
    outputs = from_file(args.outputs)
    session, region = session_and_region(args, outputs)

    def client(name: str) -> Any:
        return session.client(name, region_name=region, config=config)

    if outputs is None:
        outputs = from_cloudformation(client("cloudformation"), region, "make drill")
    cloudwatch = client("cloudwatch")
    alarms = find_alarms(cloudwatch, outputs, app.name_prefix)
    listener = find_listener(client("elbv2"), outputs, region) if args.mode == "outage" else None
    problems = ready(alarms)
    if problems:
        raise DrillError(problems[0])
    b = bounds(
        args.mode,
        period=float(alarms.drill.get("Period", app.probe_interval_seconds)),
        confirm=int(alarms.drill.get("DatapointsToAlarm", app.confirm_probes)),
        timeout=float(app.probe_timeout_seconds),
        schedule=float(app.schedule_minutes * 60),
    )
    d = Drill(cloudwatch, alarms, b, clock)
    for warning in subscription_warnings(client("sns"), alarms):
        d.say(f"warning: {warning}")
    if listener is None:
        return drill_alarm_mode(d)
    # The backstop: the cap plus the longest a poll can take (3 attempts of 3 s connect + 10 s read).
    backstop = args.max_seconds + 45
    return drill_outage_mode(d, client("elbv2"), listener, args.undo_file, args.max_seconds, region, backstop)


def main(argv: list[str] | None = None, clock: Clock | None = None) -> int:
    args = parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    from cdk_app.config import ConfigError

    try:
        return run(args, clock or Clock())
    except (DrillError, OutputsError, ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"error: AWS: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  # anything else is still one line, not a traceback
        print(f"error: {type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except Stopped as stop:
        if stop.signum == signal.SIGALRM:
            print(
                f"error: --max-seconds {args.max_seconds:g} passed while AWS did not answer; stopped", file=sys.stderr
            )
            return 1
        print(f"stopped by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return 128 + stop.signum


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
