"""The load balancer's listener in outage mode: found from the outputs, its actions saved to the undo
file, the drill's 503 put in their place, and put back on every exit."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from tools.drill.errors import DrillError, Stopped

DRILL_BODY = "Planned outage drill (make drill MODE=outage): back within minutes."


# --- the listener (outage mode) --------------------------------------------------------------


def find_listener(elbv2: Any, outputs: dict[str, str], region: str) -> dict[str, Any]:
    url = outputs.get("HelloUrl")
    if not url:
        raise DrillError("the stack has no HelloUrl output: is the deploy finished? (make status)")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    arn = outputs.get("LoadBalancerArn")
    if not arn:
        if not re.search(r"\.elb\.amazonaws\.com(\.cn)?$", host):
            raise DrillError(
                f"{host} is a custom domain and the stack has no LoadBalancerArn output, so the drill cannot "
                "tell which load balancer serves it: deploy the current stack, or use the default mode"
            )
        for page in elbv2.get_paginator("describe_load_balancers").paginate():
            for lb in page.get("LoadBalancers", []):
                if lb["DNSName"].lower() in (host, host.removeprefix("dualstack.")):
                    arn = lb["LoadBalancerArn"]
        if not arn:
            raise DrillError(f"no load balancer in {region} has the DNS name {host} (HelloUrl {url})")
    listeners = elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]
    listener = next((x for x in listeners if x["Port"] == port), None)
    if listener is None:
        raise DrillError(f"the load balancer {arn} has no listener on port {port} (HelloUrl {url})")
    return dict(listener)


FIXED_503 = {
    "Type": "fixed-response",
    "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain", "MessageBody": DRILL_BODY},
}


def _essence(actions: list[dict[str, Any]]) -> list[Any]:
    """What an action does, without the fields AWS may add or reorder when it echoes one back."""
    out = []
    for a in actions:
        forward = a.get("ForwardConfig", {}).get("TargetGroups", [])
        groups = {g["TargetGroupArn"] for g in forward} | ({a["TargetGroupArn"]} if "TargetGroupArn" in a else set())
        fixed = a.get("FixedResponseConfig") or {}
        out.append(
            [a["Type"], sorted(groups), a.get("RedirectConfig"), fixed.get("StatusCode"), fixed.get("MessageBody")]
        )
    return out


def is_drill(actions: list[dict[str, Any]]) -> bool:
    return _essence(actions) == _essence([FIXED_503])


def write_undo(path: Path, record: dict[str, Any]) -> None:
    """Before anything changes; refuses to overwrite: an earlier file may hold the only copy
    of the real actions. Flushed to disk, so a machine that dies still leaves it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise DrillError(
            f"{path} exists: an earlier outage drill did not finish restoring; run make drill-undo first"
        ) from None
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=2)
        f.flush()
        os.fsync(f.fileno())


def restore(
    elbv2: Any, listener_arn: str, actions: list[dict[str, Any]], only_over_the_drill: str | None = None
) -> dict[str, Any] | None:
    """Put the saved default actions back, and check. The ModifyListener response (its Date is
    when the outage ended, by AWS's clock), or None when they were already there.
    `only_over_the_drill` (the undo file's name): replace only the drill's own 503, never actions
    someone (or a deploy) put there since the drill saved its copy."""
    [current] = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"]
    if _essence(current["DefaultActions"]) == _essence(actions):
        return None
    if only_over_the_drill and not is_drill(current["DefaultActions"]):
        raise DrillError(
            f"listener {listener_arn} no longer answers the drill's 503 and differs from {only_over_the_drill}: "
            f"not overwriting it; compare by hand, then delete {only_over_the_drill}"
        )
    response: dict[str, Any] = elbv2.modify_listener(ListenerArn=listener_arn, DefaultActions=actions)
    [current] = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"]
    if _essence(current["DefaultActions"]) != _essence(actions):
        raise RuntimeError(f"listener {listener_arn} still does not have its saved actions after ModifyListener")
    return response


@contextlib.contextmanager
def signals_raise(backstop: float | None = None) -> Iterator[Callable[[bool], None]]:
    """SIGTERM and SIGHUP raise Stopped (SIGINT already raises KeyboardInterrupt), so `finally`
    blocks run. The yielded function shields a restore: a signal then waits until it is done.
    `backstop`: a real-time SIGALRM after that many seconds, should the polling loop itself hang
    (its calls have timeouts; this holds the cap even if they did not)."""
    shielded = False
    pending: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if shielded:
            pending.append(signum)
            return
        raise Stopped(signum)

    def shield(on: bool) -> None:
        nonlocal shielded
        shielded = on
        if not on and pending:  # a signal that came during the restore: honoured now
            raise Stopped(pending.pop())

    # SIGALRM only with a backstop: otherwise it may be someone else's (pytest-timeout's, say).
    caught = (signal.SIGTERM, signal.SIGHUP, *((signal.SIGALRM,) if backstop else ()))
    previous = {s: signal.signal(s, handler) for s in caught}
    if backstop:
        signal.setitimer(signal.ITIMER_REAL, backstop)
    try:
        yield shield
    finally:
        if backstop:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for s, h in previous.items():
            signal.signal(s, h)
    if pending:
        raise Stopped(pending[0])


def undo(elbv2_for: Callable[[str], Any], path: Path, out: Any = None) -> int:
    out = out or sys.stdout
    if not path.exists():
        print(
            f"nothing to undo: no {path} (an outage drill writes it before changing the listener and "
            "removes it after restoring)",
            file=out,
        )
        return 0
    try:
        record = json.loads(path.read_text())
        arn, actions = record["listener_arn"], record["default_actions"]
        region = record.get("region") or arn.split(":")[3]
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise DrillError(f"{path} is unreadable ({exc}): restore the listener's default action by hand") from None
    changed = restore(elbv2_for(region), arn, actions, only_over_the_drill=path.name) is not None
    path.unlink(missing_ok=True)
    print(f"{'restored' if changed else 'already restored'}: listener {arn}; removed {path.name}", file=out)
    return 0
