"""A rolling update of 2 -> 2 pods walked through the load balancer controller's target states.

The Deployment controller (maxSurge 1, maxUnavailable 0) stops an old pod only when a new one is
Ready. A target is `initial` from registration until `healthy_threshold` health checks pass,
then `healthy`; a stopped pod's target is `draining`, and the ALB sends no new request to it
once that takes effect. The ALB sends only to healthy targets; with only `initial` and
`draining` ones it has none and answers 503 (upstream's docs/deploy/pod_readiness_gate.md).
With the readiness gate a new pod is Ready only once the controller has seen its target
healthy (it looks every CONTROLLER_REQUEUE seconds); without it, at the readiness probe's pass.

A request goes every 0.2 s, round robin over the healthy targets; it is dropped when there is
none (503) or when the pod it reaches has closed its listener (502). Timings come from
cdk_app/rollout.py, which the template's values are checked against (tests/test_rollout.py).
What AWS documents no number for (how long registration and deregistration take to reach the
ALB) is swept. `python -m tests.rollout_sim` prints the sweep with and without the gate.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from cdk_app import rollout

STEP = 0.05  # the simulation's clock tick, seconds
REQUEST_EVERY = 0.2  # 5 requests a second, as `make rollout-check` probes


@dataclass(frozen=True)
class Scenario:
    gate: bool = True
    start: float = 3.0  # container start to the readiness probe's first pass
    registration: float = 2.0  # endpoint change to target registered / deregistered
    propagation: float = 2.0  # target state change to the ALB's routing following it
    check_phase: float = 5.0  # first health check this long after registration, in (0, interval]
    replicas: int = 2
    health: rollout.HealthCheck = rollout.HEALTH_CHECK
    shutdown: rollout.ShutdownTiming = rollout.TIMING
    requeue: float = rollout.CONTROLLER_REQUEUE
    deregistration_delay: float = rollout.TIMING.deregistration_delay


@dataclass
class Pod:
    name: str
    ready: float  # when the Deployment counts it Ready
    healthy: float  # when its target turns healthy
    deleted: float = math.inf
    replaced: bool = False  # a new pod whose readiness has let an old one go

    def routable(self, s: Scenario, t: float) -> bool:
        return self.healthy <= t < self.deleted + s.registration + s.propagation

    def target_healthy(self, s: Scenario, t: float) -> bool:
        """Healthy and not draining, in the controller's view."""
        return self.healthy <= t < self.deleted + s.registration

    def accepting(self, s: Scenario, t: float) -> bool:
        return t < self.deleted + s.shutdown.accepting

    def state(self, s: Scenario, t: float) -> str:
        """The target's state in the controller's words, at time t."""
        registered = self.healthy - s.check_phase - (s.health.healthy_threshold - 1) * s.health.interval
        if t >= self.deleted + s.registration + s.deregistration_delay:
            return "unused"
        if t >= self.deleted + s.registration:
            return "draining"
        if t >= self.healthy:
            return "healthy"
        return "initial" if t >= registered else "-"


@dataclass
class Result:
    scenario: Scenario
    requests: int = 0
    dropped: list[tuple[float, str, str]] = field(default_factory=list)  # (time, pod or "-", why)
    fewest_healthy: int = 99  # the fewest healthy targets at any instant during the rollout
    duration: float = 0.0  # until the last new pod is Ready
    healthy_at: list[float] = field(default_factory=list)  # when each new target turned healthy
    pods: list[Pod] = field(default_factory=list)


def transitions(result: Result) -> list[str]:
    """Each target's state changes over the rollout, in order: the walk through the states."""
    s = result.scenario
    seen: dict[str, str] = {}
    lines: list[str] = []
    t = 0.0
    while t <= result.duration + s.shutdown.termination_grace_period:
        states = {p.name: p.state(s, t) for p in result.pods}
        for name, state in states.items():
            if seen.get(name, "-") != state:
                lines.append(f"{t:6.1f} s  {name:6}  {seen.get(name, '-')} -> {state}")
                seen[name] = state
        t = round(t + STEP, 6)
    return lines


def new_pod(s: Scenario, name: str, created: float) -> Pod:
    container_ready = created + s.start
    registered = container_ready + s.registration
    healthy = registered + s.check_phase + (s.health.healthy_threshold - 1) * s.health.interval
    if not s.gate:
        return Pod(name, ready=container_ready, healthy=healthy)
    # The controller requeues from the registration on, every `requeue`, while the gate is not True.
    looks = math.ceil((healthy - registered) / s.requeue)
    return Pod(name, ready=registered + looks * s.requeue, healthy=healthy)


def simulate(s: Scenario) -> Result:
    result = Result(s)
    pods = result.pods
    old = [Pod(f"old-{i}", ready=-math.inf, healthy=-math.inf) for i in range(s.replicas)]
    new = [new_pod(s, "new-0", 0.0)]
    pods += old + new
    turn = itertools.count()
    t, next_request = 0.0, 0.0
    while t < 600:
        # The Deployment: each Ready new pod lets one old pod go and (while any old remain) one more new.
        for pod in new:
            if pod.ready <= t and not pod.replaced:
                pod.replaced = True
                going = next(p for p in old if p.deleted == math.inf)
                going.deleted = t
                if len(new) < s.replicas:
                    new.append(new_pod(s, f"new-{len(new)}", t))
                    pods.append(new[-1])
        if t >= next_request:
            next_request += REQUEST_EVERY
            _request(s, pods, t, next(turn), result)
        result.fewest_healthy = min(result.fewest_healthy, sum(p.target_healthy(s, t) for p in pods))
        done = len(new) == s.replicas and all(max(p.ready, p.healthy) <= t for p in new)
        if done and all(not p.accepting(s, t) for p in old):
            break
        t = round(t + STEP, 6)
    result.duration = max(p.ready for p in new)
    result.healthy_at = [p.healthy for p in new]
    return result


def _request(s: Scenario, pods: list[Pod], t: float, turn: int, result: Result) -> None:
    result.requests += 1
    routable = [p for p in pods if p.routable(s, t)]
    if not routable:
        result.dropped.append((t, "-", "503: no healthy target"))
        return
    pod = routable[turn % len(routable)]
    if not pod.accepting(s, t):
        result.dropped.append((t, pod.name, "502: listener closed"))


def sweep(*, gate: bool) -> list[Result]:
    """Every combination of what AWS leaves open, within the bounds tests/test_rollout.py checks."""
    h = rollout.HEALTH_CHECK
    phases = [h.interval * f for f in (0.05, 0.5, 1.0)]
    return [
        simulate(Scenario(gate=gate, start=start, registration=reg, propagation=prop, check_phase=phase))
        for start, reg, prop, phase in itertools.product((2.0, 8.0), (1.0, 5.0), (1.0, 5.0), phases)
    ]


def main() -> None:
    for gate in (True, False):
        print(f"one rolling update, readiness gate {'on' if gate else 'off'}:")
        for line in transitions(simulate(Scenario(gate=gate))):
            print(f"  {line}")
    for gate in (True, False):
        results = sweep(gate=gate)
        worst = max(results, key=lambda r: len(r.dropped))
        dropped = sum(len(r.dropped) for r in results)
        requests = sum(r.requests for r in results)
        print(
            f"readiness gate {'on ' if gate else 'off'}: {len(results)} scenarios, {requests} requests, "
            f"{dropped} dropped; fewest healthy targets at any instant: "
            f"{min(r.fewest_healthy for r in results)}; longest rollout {max(r.duration for r in results):.1f} s"
        )
        if worst.dropped:
            first, last = worst.dropped[0], worst.dropped[-1]
            print(
                f"  worst: {len(worst.dropped)} dropped from {first[0]:.1f} s to {last[0]:.1f} s ({first[2]}) "
                f"(start {worst.scenario.start:g} s, registration {worst.scenario.registration:g} s, "
                f"propagation {worst.scenario.propagation:g} s, first check {worst.scenario.check_phase:g} s)"
            )


if __name__ == "__main__":
    main()
