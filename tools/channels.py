"""The alert channels (alertChannels) from a terminal, for make local and make drill (make
preflight checks their secrets: its line 'alert channels', tools/preflight/checks.py):

  python -m tools.channels preview [-c key=value ...] [--type slack ...]   what each channel would receive
  python -m tools.channels deliveries --since EPOCH [--bound 120]          did each channel take the drill's page

The logic is the notifier's own (notifier/report.py); this reads the configuration and the
deployed stack's outputs. Exit 0 when nothing failed, 1 when something did, 2 on bad input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from cdk_app import alarm_plan
from cdk_app.config import MONITORING_STACK_NAME, AppConfig, ConfigError
from tools.deploy_check import check as read_config

OUTPUTS = Path(__file__).resolve().parent.parent / "cdk-outputs.json"


def sample_notifications(config: AppConfig) -> tuple[list[Any], Any]:
    """The alarms make local shows (the first target's paging alarm, and service-down tripped by it,
    then recovered), as the notifier would receive them, and its context read from the plan."""
    from cdk_app.catalog import catalog
    from notifier.alarm import Notification
    from notifier.page import Context, Entry

    plan = alarm_plan.plan(config)
    rows = catalog(plan)
    names = {i: plan[i].name or i for i, *_ in rows}
    ctx = Context(
        service=config.name_prefix,
        alarms={names[i]: Entry(alarm_plan.Verdict(v), t, loc, w) for i, v, t, loc, w in rows},
        locations=plan.locations,
        dashboard=f"https://console.aws.amazon.com/cloudwatch/home#dashboards:name={config.name_prefix}-health",
        runbook=config.runbook_url or "",
    )
    now = dt.datetime.now(dt.UTC)
    child = names[plan.drill[plan.targets[0]]]
    down = names[alarm_plan.SERVICE_DOWN]

    def notification(name: str, state: str, *, composite: bool, description: str) -> Notification:
        return Notification(
            name=name,
            arn=f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}",
            state=state,
            old_state="OK" if state == "ALARM" else "ALARM",
            reason="",
            description=description,
            changed=now,
            region="us-east-1",
            composite=composite,
            children=(child,) if composite else (),
        )

    return [
        notification(child, "ALARM", composite=False, description=plan[plan.drill[plan.targets[0]]].description),
        notification(down, "ALARM", composite=True, description=plan[alarm_plan.SERVICE_DOWN].description),
        notification(down, "OK", composite=True, description=plan[alarm_plan.SERVICE_DOWN].description),
    ], ctx


def preview(config: AppConfig, kinds: list[str]) -> int:
    from notifier import report

    kinds = kinds or [c.type for c in config.alert_channels]
    if not kinds:
        print(
            "alertChannels is empty: no channel would receive a message (docs/notifications.md); "
            "python -m tools.channels preview --type slack shows one"
        )
        return 0
    notifications, ctx = sample_notifications(config)
    print("\n".join(report.preview(dict.fromkeys(kinds), notifications, ctx)))
    print("(failure reasons and counts are read from CloudWatch once deployed; here there are none)")
    return 0


def _clients(region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            made[service] = boto3.client(service, region_name=region, config=config)  # type: ignore[call-overload]
        return made[service]

    return client


def deliveries(config: AppConfig, region: str | None, since: float, bound: float, path: Path = OUTPUTS) -> int:
    from notifier import report

    if not config.alert_channels:
        return 0
    from tools import outputs

    try:
        out = outputs.from_file(path)
        region = region or (out and outputs.region_of(out)) or config.home_region
        clients = _clients(region)
        out = out or outputs.from_cloudformation(clients("cloudformation"), region or "", "make drill")
    except outputs.OutputsError as exc:
        print(f"FAIL  alertChannels: {exc}")
        return 1
    if "NotifierLogGroup" not in out:
        print(f"FAIL  alertChannels: the deployed {MONITORING_STACK_NAME} has no notifier: deploy with alertChannels")
        return 1
    print(f"Each channel's delivery of the page and the recovery, from the notifier's log (at most {bound:g} s):")
    ok, lines = report.wait_for_deliveries(
        clients("logs"),
        out["NotifierLogGroup"],
        since=dt.datetime.fromtimestamp(since, dt.UTC),
        channels_=config.alert_channels,
        alarm_name=out["ServiceDownAlarmName"],
        bound=bound,
    )
    print("\n".join(lines))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.channels", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("preview", "deliveries"))
    parser.add_argument("--type", action="append", default=[], choices=alarm_plan.notifier.TYPES, dest="kinds")
    parser.add_argument("--region")
    parser.add_argument("--outputs", type=Path, default=OUTPUTS, help="deliveries: default cdk-outputs.json")
    parser.add_argument("--since", type=float, help="deliveries: Unix time the drill started")
    parser.add_argument("--bound", type=float, default=120.0, help="deliveries: seconds to wait for the log lines")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="as cdk -c")
    # The drill's other options (make drill passes its ARGS here too) are not this tool's.
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    try:
        config = read_config([a for pair in args.context for a in ("-c", pair)], need_alerts=False)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.action == "preview":
        return preview(config, args.kinds)
    if args.since is None:
        print("error: deliveries needs --since (the Unix time the drill started)", file=sys.stderr)
        return 2
    return deliveries(config, args.region, args.since, args.bound, args.outputs)


if __name__ == "__main__":
    raise SystemExit(main())
