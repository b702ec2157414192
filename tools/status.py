"""`make status`: is the deployed stack healthy, and is anyone going to get the emails?

Reads the stack's outputs from cdk-outputs.json (written by `make deploy`), then asks AWS for
the alert topic's subscriptions (an email subscription does nothing until confirmed), the
alarms' states, and probes the public URL once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cdk_app.config import STACK_NAME

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    outputs_file = Path(argv[0]) if argv else ROOT / "cdk-outputs.json"
    if not outputs_file.exists():
        print("No cdk-outputs.json: run `make deploy ALERT_EMAIL=...` first.", file=sys.stderr)
        return 2
    outputs = json.loads(outputs_file.read_text())[STACK_NAME]
    import boto3

    sns = boto3.client("sns")
    cloudwatch = boto3.client("cloudwatch")
    topic = outputs["AlertTopicArn"]
    print(f"alert topic {topic}")
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    if not subscriptions:
        print("  no subscriptions: alarms notify nobody (set ALERT_EMAIL)")
    for sub in subscriptions:
        state = (
            "PENDING CONFIRMATION: click the link in the email"
            if sub["SubscriptionArn"] == "PendingConfirmation"
            else "confirmed"
        )
        print(f"  {sub['Protocol']} {sub['Endpoint']}: {state}")
    # CloudFormation names alarms "<stack>-<id>-<suffix>"; the composites carry the name prefix.
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    for page in pages:
        for alarm in page["MetricAlarms"] + page["CompositeAlarms"]:
            name = alarm["AlarmName"]
            if name.startswith(f"{STACK_NAME}-") or name.endswith("-service-down"):
                print(f"  alarm {name}: {alarm['StateValue']}")

    from checker_lambda.__main__ import main as check

    print(f"probing {outputs['HelloUrl']}")
    return check([outputs["HelloUrl"], "--expect-body", "Hello World"])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
