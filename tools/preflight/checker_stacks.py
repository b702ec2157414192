"""Checker stacks left in regions no longer in checkerRegions: the CDK never deletes a stack that
left the app, so such a checker keeps probing, publishing and costing until deleted by hand."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cdk_app.config import (
    CHECKER_STACK_PREFIX,
    checker_stack_home,
    checker_stack_name,
)
from tools.preflight.account import Preflight
from tools.preflight.results import Skip, Warn, explain


@dataclass
class Sweep:
    """What one call per region found by the end of the sweep's time."""

    regions: list[str]
    found: dict[str, str | None] = field(default_factory=dict)  # region -> the stack's status; None: none
    publishes_to: dict[str, str | None] = field(default_factory=dict)  # region -> the home its stack names
    refused: dict[str, BaseException] = field(default_factory=dict)

    def unread(self, seconds: float) -> dict[str, list[str]]:
        """Why -> the regions not read, for that reason."""
        out: dict[str, list[str]] = {}
        for region in self.regions:
            if region not in self.found:
                why = explain(self.refused[region]) if region in self.refused else f"no answer within {seconds:g} s"
                out.setdefault(why, []).append(region)
        return out


def sweep(p: Preflight, home: str, regional: Callable[[str, str], Any]) -> Sweep:
    """Every enabled region's checker stack, looked up by its exact name (every stack of this app is
    pinned to its region): one call per region, all at once, until the sweep's time is up."""
    end = p.clock() + p.sweep_seconds
    try:
        enabled = regional("ec2", home).describe_regions()["Regions"]  # the enabled ones only
    except (BotoCoreError, ClientError) as exc:  # nothing this deploy needs: worth knowing only
        raise Warn(f"could not list the enabled regions to look for them ({explain(exc)})") from exc
    result = Sweep(sorted(r["RegionName"] for r in enabled))
    clients = {r: regional("cloudformation", r) for r in result.regions}  # here: a session is not thread-safe

    def look(region: str) -> None:
        try:
            stacks = clients[region].describe_stacks(StackName=checker_stack_name(region))["Stacks"]
            result.publishes_to[region] = checker_stack_home(str(stacks[0].get("Description", "")))
            result.found[region] = str(stacks[0]["StackStatus"])
        except ClientError as exc:
            if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
                result.found[region] = None
            else:
                result.refused[region] = exc
        except BotoCoreError as exc:
            result.refused[region] = exc

    threads = [threading.Thread(target=look, args=(r,), name=f"preflight-{r}", daemon=True) for r in result.regions]
    for thread in threads:
        thread.start()
    for thread in threads:
        # A loop: on a test's clock the time may not have moved when the join gives up.
        while thread.is_alive() and (remaining := end - p.clock()) > 0:
            thread.join(remaining)
    # What was known at the end of the sweep: a late answer changes nothing read below.
    return replace(result, found=dict(result.found), refused=dict(result.refused))


def checker_stacks(p: Preflight) -> str:
    """HelloWorldChecker-<region> stacks this configuration no longer has: the CDK never deletes
    a stack that left the app, so a region dropped from checkerRegions keeps probing,
    publishing under its Location and costing, until deleted by hand."""
    home = p.ready()
    if p.regional is None:
        raise Skip("needs a client for every region")
    swept = sweep(p, home, p.regional)
    unread = swept.unread(p.sweep_seconds)
    not_read = "; ".join(f"not read in {', '.join(where)}: {why}" for why, where in unread.items())
    wanted = set(p.config.locations[1:])
    left = [
        (r, checker_stack_name(r), status)
        for r, status in sorted(swept.found.items())
        if status is not None and r not in wanted
    ]
    going = [name for _, name, status in left if status == "DELETE_IN_PROGRESS"]
    left = [stack for stack in left if stack[1] not in going]
    # A stack that says it publishes to another home region is a previous home's, or another
    # deployment's in this account (stack names are fixed): named apart, deleted only if yours.
    ours = [stack for stack in left if swept.publishes_to.get(stack[0]) in (home, None)]
    others = [stack for stack in left if stack not in ours]
    parts = []
    if ours:
        parts.append(
            f"{', '.join(f'{name} ({status})' for _, name, status in ours)} not in {p.checker_regions()}: "
            "still probing and billed; after make deploy with this list (it removes the alarms on that "
            "location: deleting first wakes its heartbeat alarm), delete: " + delete_command([r for r, _, _ in ours])
        )
    for region, name, status in others:
        parts.append(
            f"{name} ({status}) publishes to {swept.publishes_to.get(region)}, not {home}: a previous home's or "
            f"another deployment's; only if it is yours, delete: {delete_command([region])}"
        )
    if parts:
        raise Warn("; ".join(parts) + (f"; {not_read}" if not_read else ""))
    regions = swept.regions
    if unread:
        read = len(regions) - sum(len(where) for where in unread.values())
        raise Warn(f"none outside {p.checker_regions()} in {read} of {len(regions)} regions; {not_read}")
    tail = f" ({', '.join(going)} being deleted)" if going else ""
    return f"none outside {p.checker_regions()} in the {len(regions)} enabled regions{tail}"


def delete_command(regions: list[str]) -> str:
    """The command that deletes the checker stacks of these regions. Not `cdk destroy`: that needs
    the stack in the app, so the old checkerRegions list, which is not known here."""
    if len(regions) == 1:
        return f"aws cloudformation delete-stack --region {regions[0]} --stack-name {checker_stack_name(regions[0])}"
    return (
        f"for r in {' '.join(regions)}; do aws cloudformation delete-stack --region $r "
        f"--stack-name {CHECKER_STACK_PREFIX}-$r; done"
    )
