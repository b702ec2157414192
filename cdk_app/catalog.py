"""What each alarm means to the notifier, read from the alarm plan: its verdict, target,
location and window, for the alarms whose notifications the notifier can receive. No CDK:
cdk_app/notifier.py writes it into the function's environment, tools/channels.py (the light
install) previews messages from it."""

from __future__ import annotations

from cdk_app import alarm_plan as ap
from checker_lambda import contract


def catalog(plan: ap.Plan) -> list[tuple[str, str, str, str, int]]:
    """What each alarm whose notification the notifier can receive means, from the alarm plan:
    (plan id, verdict, target, location, window seconds). Alarms with actions, and the members of
    a composite with actions whose members mean different things (service-down: a composite
    speaks for the child that triggered it); no more, as Lambda's environment holds 4 KB."""
    with_actions = [a for a in plan.alarms if a.actions]
    mixed = [
        a for a in with_actions if isinstance(a, ap.Composite) and len({plan[m].verdict for m in a.rule.members()}) > 1
    ]
    wanted = {a.id for a in with_actions} | {m for a in mixed for m in a.rule.members()}

    def dims(a: ap.Alarm | ap.Composite, name: str) -> set[str]:
        if isinstance(a, ap.Composite):
            return set().union(*(dims(plan[m], name) for m in a.rule.members()))
        return {m.dims[name] for m in a.metrics() if name in m.dims}

    def window(a: ap.Alarm | ap.Composite) -> int:
        if isinstance(a, ap.Composite):
            return max(window(plan[m]) for m in a.rule.members())
        return a.periods * a.metric.period

    rows = []
    for a in plan.alarms:
        if a.id in wanted:
            targets, locations = dims(a, contract.TARGET), dims(a, contract.LOCATION)
            one = lambda values: next(iter(values)) if len(values) == 1 else ""  # noqa: E731
            rows.append((a.id, a.verdict.value, one(targets), one(locations), window(a)))
    return rows
