"""The deployed stacks' outputs, as `make status` and `make drill` read them.

From the file `make deploy` writes (cdk-outputs.json) or, when it is absent (a stack deployed
by CI or from another machine), from CloudFormation in the home region: the cluster stack's
outputs (HelloUrl, LoadBalancerArn, ...; no such stack in a checker-only deploy) and the
health stack's (AlertTopicArn, DashboardUrl, ServiceDownAlarmName, DrillAlarmName, FirstRun),
merged. Each checker stack in another region says what its first run saw, under its own name:
`FirstRun <stack>` (the file has them; CloudFormation in the home region does not).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cdk_app.config import MONITORING_STACK_NAME, STACK_NAME

FIRST_RUN = "FirstRun"  # the output each stack with a checker has (cdk_app/stack.py)
HOME_STACKS = (STACK_NAME, MONITORING_STACK_NAME)
# What each home stack must have once deployed: a deploy under way, or a first one that failed, has none.
NEEDED = {STACK_NAME: ("HelloUrl",), MONITORING_STACK_NAME: ("AlertTopicArn",)}


class OutputsError(Exception):
    """One line for the user: what is missing and how to give it."""


def _merge(into: dict[str, str], outputs: dict[str, Any], where: str) -> None:
    for key, value in outputs.items():
        if key in into and into[key] != str(value):
            raise OutputsError(f"output {key} has two values ({into[key]!r}, {value!r}) in {where}: keep one stack")
        into[str(key)] = str(value)


def from_file(path: Path) -> dict[str, str] | None:
    """The outputs in the file `make deploy` wrote; None when it is absent or holds neither home stack."""
    if not path.exists():
        return None
    try:
        written = json.loads(path.read_text())
    except ValueError as exc:
        raise OutputsError(f"{path} is not valid JSON ({exc}): delete it to read the outputs from AWS") from None
    if not isinstance(written, dict) or not any(isinstance(written.get(n), dict) for n in HOME_STACKS):
        return None
    merged: dict[str, str] = {}
    for name in HOME_STACKS:
        if isinstance(written.get(name), dict):
            _merge(merged, written[name], f"{path} (stacks {' and '.join(HOME_STACKS)})")
    for name, outputs in written.items():
        if name not in HOME_STACKS and isinstance(outputs, dict) and FIRST_RUN in outputs:
            merged[f"{FIRST_RUN} {name}"] = str(outputs[FIRST_RUN])
    return merged


def from_cloudformation(cloudformation: Any, region: str, command: str) -> dict[str, str]:
    """The home stacks' outputs from CloudFormation in `region` (the cluster stack may be absent:
    a checker-only deploy). `command` (make status, make drill) is named in the one-line errors."""
    from botocore.exceptions import ClientError

    merged: dict[str, str] = {}
    for name in HOME_STACKS:
        try:
            [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            if "does not exist" not in str(exc):
                raise
            if name == STACK_NAME:  # a checker-only deploy
                continue
            raise OutputsError(
                f"no stack {name} in {region}: deploy it (make deploy), or name its region: "
                f"{command} ARGS='--region <region>'"
            ) from None
        found = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        missing = [k for k in NEEDED[name] if k not in found]
        if missing:
            raise OutputsError(
                f"stack {name} in {region} is {stack.get('StackStatus', 'in an unknown state')} and has no "
                f"{', '.join(missing)} output yet: wait for the deploy, or read its events"
            )
        _merge(merged, found, f"stacks {' and '.join(HOME_STACKS)} in {region}")
    return merged


def region_of(outputs: dict[str, str]) -> str | None:
    """The home region, read from the outputs: the topic ARN, else the dashboard URL."""
    arn = outputs.get("AlertTopicArn", "").split(":")
    if len(arn) > 3 and arn[3]:
        return arn[3]
    m = re.search(r"[?&]region=([a-z0-9-]+)", outputs.get("DashboardUrl", ""))
    return m.group(1) if m else None
