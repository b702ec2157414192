"""`make status`: is the deployed stack healthy, and is anyone going to get the emails?

Reads the stack's outputs from cdk-outputs.json (written by `make deploy`) or, when that file
is absent (a stack deployed by CI or from another machine), from CloudFormation. Then asks AWS
for the alert topic's subscriptions (an email subscription does nothing until confirmed), each
alarm's state and its changes over the last 24 hours (a false alarm shows there), and probes
the public URL once. Without a region or credentials it stops with one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cdk_app.config import MONITORING_STACK_NAME, STACK_NAME
from checker_lambda.aws_env import NO_CREDENTIALS, session_region
from tools.outputs import FIRST_RUN, OutputsError, from_cloudformation, from_file, region_of

ROOT = Path(__file__).resolve().parent.parent
HISTORY_HOURS = 24
HISTORY_SHOWN = 10  # changes per alarm; a flapping alarm says how many more there were
ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]


class StatusError(Exception):
    """One line for the user: what is missing and how to give it."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="make status", description=__doc__.splitlines()[0])
    p.add_argument(
        "--outputs",
        type=Path,
        default=ROOT / "cdk-outputs.json",
        help="the outputs file `make deploy` wrote (default cdk-outputs.json); without it, CloudFormation",
    )
    p.add_argument("--region", help="the stack's region (default: from the outputs, else your AWS configuration)")
    return p.parse_args(argv)


def ours(name: str) -> bool:
    # CloudFormation names alarms "<stack>-<id>-<suffix>"; the composites carry the name prefix.
    return name.startswith(f"{MONITORING_STACK_NAME}-") or name.endswith("-service-down")


def _change(item: dict[str, Any]) -> str:
    when = item["Timestamp"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    try:
        data = json.loads(item.get("HistoryData") or "{}")
        change = f"{data['oldState']['stateValue']} -> {data['newState']['stateValue']}"
        reason = " ".join(str(data["newState"].get("stateReason", "")).split())
    except (ValueError, KeyError, TypeError):
        change, reason = item.get("HistorySummary", "state changed"), ""
    if len(reason) > 120:
        reason = reason[:119] + "…"
    return f"      {when}  {change}" + (f": {reason}" if reason else "")


def alarm_lines(cloudwatch: Any, *, now: datetime) -> list[str]:
    """Each of the stack's alarms: its state, then its changes over the last 24 hours."""
    from botocore.exceptions import BotoCoreError, ClientError

    states: dict[str, str] = {}
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=ALARM_TYPES):
        for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
            if ours(alarm["AlarmName"]):
                states[alarm["AlarmName"]] = alarm["StateValue"]
    changes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    history_error = None
    try:
        pages = cloudwatch.get_paginator("describe_alarm_history").paginate(
            HistoryItemType="StateUpdate",
            AlarmTypes=ALARM_TYPES,
            StartDate=now - timedelta(hours=HISTORY_HOURS),
            EndDate=now,
            ScanBy="TimestampDescending",
        )
        for page in pages:
            for item in page.get("AlarmHistoryItems", []):
                if item.get("AlarmName") in states:
                    changes[item["AlarmName"]].append(item)
    except (BotoCoreError, ClientError) as exc:
        history_error = " ".join(str(exc).split())

    lines = []
    if history_error:
        lines.append(
            f"  (no alarm history: {history_error}; it needs cloudwatch:DescribeAlarmHistory, states only below)"
        )
    for name in sorted(states):
        if history_error:
            lines.append(f"  alarm {name}: {states[name]}")
            continue
        items = changes.get(name, [])
        if not items:
            lines.append(f"  alarm {name}: {states[name]}, no changes in the last {HISTORY_HOURS} h")
            continue
        lines.append(f"  alarm {name}: {states[name]}, {len(items)} changes in the last {HISTORY_HOURS} h:")
        if len(items) > HISTORY_SHOWN:
            lines.append(f"      ({len(items) - HISTORY_SHOWN} earlier changes not shown)")
        lines += [_change(item) for item in reversed(items[:HISTORY_SHOWN])]  # oldest first
    return lines


def report(args: argparse.Namespace) -> int:
    import boto3

    outputs = from_file(args.outputs)
    missing = [k for k in ("AlertTopicArn",) if outputs is not None and k not in outputs]
    if missing:
        raise StatusError(f"{args.outputs} has no {', '.join(missing)}: delete it to read the outputs from AWS")
    session = boto3.Session()
    region = args.region or (region_of(outputs) if outputs else None) or session_region(session, os.environ)[0]
    if not region:
        raise StatusError(
            f"no AWS region to find stack {MONITORING_STACK_NAME} in: export AWS_REGION=<region>, "
            "or make status ARGS='--region <region>'"
        )
    if session.get_credentials() is None:
        raise StatusError(NO_CREDENTIALS)

    def client(service: str) -> Any:
        return session.client(service, region_name=region)

    if outputs is None:
        outputs = from_cloudformation(client("cloudformation"), region, "make status")
        print(
            f"outputs of stacks {STACK_NAME} and {MONITORING_STACK_NAME} in {region}, from CloudFormation "
            f"(no {args.outputs.name} here)"
        )
    sns, cloudwatch = client("sns"), client("cloudwatch")
    topic = outputs["AlertTopicArn"]
    print(f"alert topic {topic}")
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    if not subscriptions:
        print("  no subscriptions: alarms notify nobody (set ALERT_EMAIL or alertWebhooks)")
    for sub in subscriptions:
        state = (
            "PENDING CONFIRMATION: click the link in the email"
            if sub["SubscriptionArn"] == "PendingConfirmation"
            else "confirmed"
        )
        print(f"  {sub['Protocol']} {sub['Endpoint']}: {state}")
    runs = [v for k, v in sorted(outputs.items()) if k.split(" ")[0] == FIRST_RUN]
    if runs:  # the stacks' FirstRun outputs (checker_lambda/first_run.py)
        print("first run of each checker during the last deploy that changed it, before its alarms:")
        for run in runs:
            print(f"  {run}")
    print(f"alarms: state, and changes in the last {HISTORY_HOURS} h")
    for line in alarm_lines(cloudwatch, now=datetime.now(UTC)):
        print(line)

    from checker_lambda.__main__ import main as check

    if "HelloUrl" not in outputs:  # a checker-only deploy: its targets are the user's own
        print(f"no stack {STACK_NAME} (checker only): nothing to probe here")
        return 0
    print(f"probing {outputs['HelloUrl']}", flush=True)
    return check([outputs["HelloUrl"], "--expect-body", "Hello World"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return report(args)
    except (StatusError, OutputsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except (BotoCoreError, ClientError) as exc:
        print(f"error: AWS: {' '.join(str(exc).split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
