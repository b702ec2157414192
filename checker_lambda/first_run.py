"""The checker's first run during a deploy: a CloudFormation custom resource (cdk_app/checker.py
FirstRun) whose Lambda invokes the checker once, synchronously, before the alarms that read
its metrics are created or updated (docs/decisions.md §3).

Create and Update: invoke the checker with a first-run event (one round of probes, published;
checker_lambda/handler.py FIRST_RUN). Its summary becomes the resource's `Summary`, which the
stack outputs. A target found down is data, not a failure: the verdict is reported and the
availability alarm pages as it should, so a deploy can still fix a broken service. A checker
that cannot run (its code, its role, its settings, the URL parameter) fails the resource with
one line naming why, and CloudFormation rolls the deploy back. Delete: nothing to undo.

Standard library and boto3 only (the Lambda runtime's), and nothing else from this package: a
checker whose code does not import must still be reported, not hang the deploy.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

FIRST_RUN_EVENT = {"first_run": True}  # handler.FIRST_RUN, spelled here so as not to import it
REASON_LIMIT = 1000  # CloudFormation shows the reason in the stack's events: one line, bounded
# What the invoke may take at most: the checker's first round (a probe at its slowest, a URL
# read, a publish) is seconds; past this the checker is stuck, and the deploy is told so.
INVOKE_SECONDS = 240
MINUTE = 60  # the heartbeat alarm's period

Invoke = Callable[[str, bytes, float], tuple[dict[str, Any], str | None]]
Respond = Callable[[str, dict[str, Any]], None]


class FirstRunFailed(Exception):
    """The checker could not run: the one line CloudFormation shows."""


def lambda_invoke(function: str, payload: bytes, seconds: float) -> tuple[dict[str, Any], str | None]:
    """Invoke `function` and wait for it: (its returned or error payload, Lambda's FunctionError)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "lambda", config=Config(read_timeout=seconds, connect_timeout=10, retries={"max_attempts": 1})
    )
    answer = client.invoke(FunctionName=function, InvocationType="RequestResponse", Payload=payload)
    body = answer["Payload"].read()
    return (json.loads(body) if body else {}), answer.get("FunctionError")


def put_response(url: str, body: dict[str, Any]) -> None:
    """CloudFormation's pre-signed S3 URL: a PUT with no content type (the signature has none)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"ResponseURL {url[:40]!r}: not an http(s) URL")
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": ""})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310  # nosec B310 (scheme checked)
        answer.read()


def summary(location: str, result: Mapping[str, Any]) -> str:
    """One line for the deploy output: what each target's probe found, and what follows."""
    probed: Mapping[str, str] = result.get("probed") or {}
    down = [t for t, found in probed.items() if found != "up"]
    line = f"{location}: " + (", ".join(f"{t} {found}" for t, found in probed.items()) or "no probe ran")
    if down:
        line += f"; the availability alarm pages if {', '.join(down)} stays down"
    return line


def first_run(properties: Mapping[str, Any], invoke: Invoke, seconds: float) -> str:
    function = str(properties["Function"])
    location = str(properties.get("Location") or "this region")
    try:
        result, error = invoke(function, json.dumps(FIRST_RUN_EVENT).encode(), seconds)
    except Exception as exc:  # the call itself: permissions, a missing function, a timeout
        raise FirstRunFailed(f"could not invoke the health checker {function}: {type(exc).__name__}: {exc}") from exc
    if error:
        why = f"{result.get('errorType', error)}: {result.get('errorMessage', '')}".strip(": ")
        raise FirstRunFailed(f"the health checker in {location} cannot run: {why}")
    if not isinstance(result, dict) or "probed" not in result:
        raise FirstRunFailed(f"the health checker in {location} returned no summary: {str(result)[:200]}")
    return summary(location, result)


def settle(clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
    """Wait for the minute of the datapoints just published to end (and a second more). Whether
    an alarm's evaluation range ends with the current, open period or with the last complete one
    AWS does not document: created after this, the heartbeat alarm finds a datapoint either way."""
    sleep(MINUTE + 1 - clock() % MINUTE)


def on_event(
    event: Mapping[str, Any],
    context: Any,
    invoke: Invoke = lambda_invoke,
    respond: Respond = put_response,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """The custom resource's handler. It always answers CloudFormation, or the deploy would wait
    for the resource's timeout. `WaitForMinute` ("true" for the checker in the alarms' stack):
    settle() before answering."""
    physical = str(event.get("PhysicalResourceId") or f"first-run-{event.get('LogicalResourceId', 'checker')}")
    data: dict[str, str] = {}
    status, reason = "SUCCESS", ""
    try:
        if event["RequestType"] in ("Create", "Update"):
            # Kept for the settle (at most a minute) and to answer CloudFormation.
            left = context.get_remaining_time_in_millis() / 1000 - MINUTE - 15
            properties = event["ResourceProperties"]
            data["Summary"] = first_run(properties, invoke, max(1.0, min(INVOKE_SECONDS, left)))
            if properties.get("WaitForMinute") == "true":
                settle(clock, sleep)
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
