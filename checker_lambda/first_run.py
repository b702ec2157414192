"""The checker's first run during a deploy: a CloudFormation custom resource (cdk_app/checker.py
FirstRun) whose Lambda invokes the checker once, synchronously, before the alarms that read
its metrics are created or updated (docs/decisions.md §3).

Create and Update: invoke the checker with a first-run event (one round of probes, published;
checker_lambda/handler.py FIRST_RUN). What each probe found becomes the resource's `Summary`,
which the stack outputs. A target found down is data, not a failure: the verdict is reported and
the availability alarm pages as it should, so a deploy can still fix a broken service. A checker
that cannot run (its code, its role, its settings, the URL parameter) fails the resource with
one line naming why, and CloudFormation rolls the deploy back. In the alarms' stack the answer
waits until the heartbeat datapoints of every location can be read back (`Heartbeats`). Delete,
and an Update sent while the stack rolls back: nothing to do (a run that failed then would leave
the stack in UPDATE_ROLLBACK_FAILED).

Standard library and boto3 only (the Lambda runtime's), and nothing else from this package: a
checker whose code does not import must still be reported, not hang the deploy.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

FIRST_RUN_EVENT = {"first_run": True}  # handler.FIRST_RUN, spelled here so as not to import it
REASON_LIMIT = 1000  # CloudFormation shows the reason in the stack's events: one line, bounded
SUMMARY_LIMIT = 2000  # a response body is at most 4096 bytes
# What the invoke may take at most, retries included: the checker's first round (a probe at its
# slowest, a URL read, a publish) is seconds; past this the checker is stuck.
INVOKE_SECONDS = 240
# Roles and policies made in the same deploy take a while to apply (IAM is eventually
# consistent): an access denial is tried again for this long before it fails the deploy.
ACCESS_RETRY_SECONDS = 90
ACCESS_DENIED = re.compile(r"AccessDenied|not authorized|is not authorized to perform", re.IGNORECASE)
MINUTE = 60  # the heartbeat alarm's period
# How long the alarms' stack waits for its heartbeat datapoints to be readable (a new metric may
# take a couple of minutes, CloudWatch documents) and for their minute to end.
VISIBLE_SECONDS = 180
# Kept back from the Lambda's time for the answer: a PUT with its timeouts, and a margin.
ANSWER_SECONDS = 30 + 10 + 5
TIMEOUT = INVOKE_SECONDS + VISIBLE_SECONDS + ANSWER_SECONDS  # the Lambda's timeout

Invoke = Callable[[str, bytes, float], tuple[Any, str | None]]
Respond = Callable[[str, dict[str, Any]], None]
Visible = Callable[[list[dict[str, str]]], bool]  # every listed heartbeat metric has a datapoint
StackStatus = Callable[[str], str]


class FirstRunFailed(Exception):
    """The checker could not run: the one line CloudFormation shows."""


def lambda_invoke(function: str, payload: bytes, seconds: float) -> tuple[Any, str | None]:
    """Invoke `function` and wait for it: (its returned or error payload, Lambda's FunctionError).
    One attempt: botocore's retry of a read timeout would run the checker twice."""
    import boto3
    from botocore.config import Config

    config = Config(read_timeout=seconds, connect_timeout=10, retries={"total_max_attempts": 1, "mode": "standard"})
    answer = boto3.client("lambda", config=config).invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=payload
    )
    body = answer["Payload"].read()
    return (json.loads(body) if body else {}), answer.get("FunctionError")


def heartbeats_visible(dimensions: list[dict[str, str]]) -> bool:
    """Each heartbeat metric (Availability of the first target, per location) can be read back."""
    import boto3

    cloudwatch = boto3.client("cloudwatch")
    now = datetime.now(UTC)
    for dims in dimensions:
        points = cloudwatch.get_metric_statistics(
            Namespace=dims["Namespace"],
            MetricName=dims["MetricName"],
            Dimensions=[{"Name": k, "Value": v} for k, v in dims.items() if k not in ("Namespace", "MetricName")],
            StartTime=now - timedelta(minutes=10),
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=["SampleCount"],
        )["Datapoints"]
        if not points:
            return False
    return True


def stack_status(stack_id: str) -> str:
    import boto3

    [stack] = boto3.client("cloudformation").describe_stacks(StackName=stack_id)["Stacks"]
    return str(stack["StackStatus"])


def put_response(url: str, body: dict[str, Any]) -> None:
    """CloudFormation's pre-signed S3 URL: a PUT with no content type (the signature has none).
    Plain http is accepted for the tests' local stand-in; CloudFormation's is https."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"ResponseURL {url[:40]!r}: not an http(s) URL")
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": ""})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310  # nosec B310 (scheme checked)
        answer.read()


def summary(location: str, result: Mapping[str, Any]) -> str:
    """One line for the deploy output: what each target's probe found, and what follows."""
    probed: Mapping[str, str] = result["probed"]
    down = [t for t, found in probed.items() if found != "up"]
    line = f"{location}: " + ", ".join(f"{t} {found}" for t, found in probed.items())
    if down:
        line += f"; the availability alarm pages if {', '.join(down)} stays down"
    return line[:SUMMARY_LIMIT]


def first_run(
    properties: Mapping[str, Any],
    invoke: Invoke,
    seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Invoke the checker until it has probed and published, within `seconds`; its summary."""
    function = str(properties["Function"])
    location = str(properties.get("Location") or "this region")
    end = clock() + seconds
    denied_until = clock() + ACCESS_RETRY_SECONDS
    attempt = 0
    while True:
        attempt += 1
        try:
            result, error = invoke(function, json.dumps(FIRST_RUN_EVENT).encode(), max(1.0, end - clock()))
        except Exception as exc:  # noqa: BLE001  # the call itself: permissions, a missing function, a timeout
            why = f"could not invoke the health checker {function}: {type(exc).__name__}: {exc}"
        else:
            if error:
                payload = result if isinstance(result, dict) else {}
                detail = f"{payload.get('errorType', error)}: {payload.get('errorMessage', result)}".strip(": ")
                why = f"the health checker in {location} cannot run: {detail}"
            elif isinstance(result, dict) and result.get("probed"):
                return summary(location, result)
            elif isinstance(result, dict) and "probed" in result:  # no slot could be probed in time
                why = f"the health checker in {location} ran but probed nothing before its deadline"
            else:
                why = f"the health checker in {location} returned no summary: {str(result)[:200]}"
        # An access denial right after the roles were made is IAM catching up; a run that probed
        # nothing (a late start) is tried once more. Anything else is the answer.
        retry = (ACCESS_DENIED.search(why) and clock() < denied_until) or ("probed nothing" in why and attempt == 1)
        if not retry or clock() + 5 >= end:
            raise FirstRunFailed(why)
        sleep(min(5.0 * attempt, 15.0))


def settle(
    heartbeats: list[dict[str, str]],
    visible: Visible,
    seconds: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> str:
    """Wait until every heartbeat metric can be read back (a new metric may take a while), and
    its minute is over: whether an alarm's evaluation range ends with the open minute or the last
    complete one AWS does not document; the heartbeat alarm created next holds a datapoint either
    way. Past `seconds`, a note for the summary instead of a failure: the checkers did publish."""
    end = clock() + seconds
    minute_over = clock() - clock() % MINUTE + MINUTE + 1
    while not visible(heartbeats):
        if clock() + 5 > end:
            return "; its datapoints were not readable yet: the heartbeat may page once"
        sleep(5)
    if clock() < minute_over:
        sleep(minute_over - clock())
    return ""


def on_event(
    event: Mapping[str, Any],
    context: Any,
    invoke: Invoke = lambda_invoke,
    respond: Respond = put_response,
    visible: Visible = heartbeats_visible,
    status_of: StackStatus = stack_status,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """The custom resource's handler. It always answers CloudFormation, or the deploy would wait
    for the resource's timeout."""
    physical = str(event.get("PhysicalResourceId") or f"first-run-{event.get('LogicalResourceId', 'checker')}")
    data: dict[str, str] = {}
    status, reason = "SUCCESS", ""
    try:
        kind = event["RequestType"]
        if kind == "Update" and rolling_back(status_of, str(event["StackId"])):
            data["Summary"] = "not run: the stack is rolling back"
        elif kind in ("Create", "Update"):
            properties = event["ResourceProperties"]
            left = context.get_remaining_time_in_millis() / 1000 - ANSWER_SECONDS
            invoke_for = max(1.0, min(INVOKE_SECONDS, left - VISIBLE_SECONDS))
            data["Summary"] = first_run(properties, invoke, invoke_for, clock, sleep)
            heartbeats = json.loads(properties.get("Heartbeats") or "[]")
            if heartbeats:
                left = context.get_remaining_time_in_millis() / 1000 - ANSWER_SECONDS
                data["Summary"] += settle(heartbeats, visible, max(1.0, min(VISIBLE_SECONDS, left)), clock, sleep)
            print(json.dumps({"type": "first_run", "summary": data["Summary"], "time": time.time()}))
    except Exception as exc:  # noqa: BLE001  # whatever went wrong, CloudFormation is told
        status, reason = "FAILED", " ".join(str(exc).split())[:REASON_LIMIT]
        print(json.dumps({"type": "first_run_failed", "why": reason}))
    respond(
        str(event["ResponseURL"]),
        {
            "Status": status,
            "Reason": reason or "ok",
            "PhysicalResourceId": physical,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        },
    )


def rolling_back(status_of: StackStatus, stack_id: str) -> bool:
    """On a rollback CloudFormation sends an Update with the old properties; a run that failed
    then would leave the stack in UPDATE_ROLLBACK_FAILED. Unknown (no answer): not rolling back."""
    try:
        return status_of(stack_id).endswith("ROLLBACK_IN_PROGRESS")
    except Exception:  # noqa: BLE001  # the run goes on, as on any Update
        return False
