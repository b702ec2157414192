"""The rollout timing contract: every timing a pod's start and stop depend on, and the bounds.

The manifests (cdk_app/manifests.py) and the target group (cdk_app/workload.py) take their
values from here; tests/test_rollout.py checks the bounds on the synthesized template, and
tests/rollout_sim.py walks a rolling update through the AWS Load Balancer Controller's target
states with them (`python -m tests.rollout_sim`). Sources are in tests/data/upstream.json
(`rollout`).

A pod starting (Deployment strategy maxSurge 1, maxUnavailable 0, so an old pod goes only when
a new one is Ready):

1. The container starts; the startup probe passes, then the readiness probe (`Probes`).
2. The controller registers the pod's IP in the target group: the target is `initial`.
3. The ALB health-checks it every `interval`; after `healthy_threshold` passes it is `healthy`
   and the ALB sends it requests.
4. The pod's readiness gate (`target-health.elbv2.k8s.aws/<binding>`, injected because the
   namespace carries READINESS_GATE_LABEL) turns True at the controller's next look at target
   health, at most `controller_requeue` later. Only then is the pod Ready, and only then does
   the Deployment stop an old pod. Without the gate the pod is Ready at step 1, while its target
   is still `initial`: with two replicas both old targets can be draining before any new one is
   healthy, and the ALB has nothing to send to (upstream's pod_readiness_gate.md).

A pod stopping (ShutdownTiming): the controller deregisters it (`draining`: the ALB sends no new
requests once that reaches it); the pod keeps serving through preStop and the service's drain
delay, then closes its listener and finishes in-flight requests; SIGKILL only after all of that.
"""

from __future__ import annotations

from dataclasses import dataclass

from service import settings as svc

# Namespace label that makes the controller's pod webhook inject the readiness gate.
READINESS_GATE_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"
# The controller re-reads target health this often while any gate is not True
# (--targetgroupbinding-requeue-duration, default 15 s in v3.2.2 pkg/config/controller_config.go).
CONTROLLER_REQUEUE = 15.0
# Kubernetes' default Deployment spec.progressDeadlineSeconds: a rollout that makes no progress
# (no new pod Ready) for this long is reported failed (the manifests leave it at the default).
PROGRESS_DEADLINE = 600


@dataclass(frozen=True)
class HealthCheck:
    """The target group's health check (seconds, counts)."""

    interval: int = 10
    timeout: int = 5
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2

    def worst_time_to_healthy(self) -> float:
        """From registration to `healthy`: the first check within one interval, then
        healthy_threshold - 1 more, the last answering within the timeout."""
        return self.healthy_threshold * self.interval + self.timeout


@dataclass(frozen=True)
class Probes:
    """The container's startup and readiness probes (seconds, counts)."""

    startup_period: int = 2
    startup_failures: int = 15
    readiness_period: int = 5
    readiness_failures: int = 2

    def worst_time_to_ready(self) -> float:
        """From container start to the readiness probe's first pass, for a pod that starts."""
        return self.startup_period * self.startup_failures + self.readiness_period


@dataclass(frozen=True)
class ShutdownTiming:
    """What happens, in order, when a pod is told to stop (rollout, scale-in, node drain).

    1. The pod is removed from the Service endpoints; the load balancer starts deregistering it.
       Meanwhile the preStop hook sleeps, so the container keeps serving whatever still arrives.
    2. SIGTERM: the service answers not-ready and keeps serving for drain_delay, then closes its
       listener and finishes in-flight requests for at most drain_timeout.
    3. terminationGracePeriodSeconds covers all of that plus a margin; only then SIGKILL.
    The load balancer's deregistration delay is how long it waits for the target's in-flight
    requests (ALB user guide, "Deregistration delay"; it completes at once when there are none).
    A request the ALB sent just before deregistration reached it may run until the listener has
    closed and the drain timeout passed, so the delay covers preStop + drain delay + drain timeout
    whatever the propagation time: then only the service's own budget ends a request.
    """

    pre_stop: int = 10
    drain_delay: float = svc.DRAIN_DELAY_SECONDS
    drain_timeout: float = svc.DRAIN_TIMEOUT_SECONDS
    margin: int = 5

    @property
    def accepting(self) -> float:
        """How long after the pod is told to stop its listener still accepts."""
        return self.pre_stop + self.drain_delay

    @property
    def termination_grace_period(self) -> int:
        return int(self.pre_stop + self.drain_delay + self.drain_timeout + self.margin)

    @property
    def deregistration_delay(self) -> int:
        return int(self.accepting + self.drain_timeout)


HEALTH_CHECK = HealthCheck()
PROBES = Probes()
TIMING = ShutdownTiming()


def worst_pod_start(probes: Probes, health: HealthCheck, *, registration: float) -> float:
    """From a new pod's creation to its readiness gate turning True (the rollout moves on)."""
    return probes.worst_time_to_ready() + registration + health.worst_time_to_healthy() + CONTROLLER_REQUEUE


def broken_bounds(
    *,
    probes: Probes,
    health: HealthCheck,
    shutdown: ShutdownTiming,
    deregistration_delay: float,
    grace_period: float,
    registration: float,
    stop_propagation: float,
) -> list[str]:
    """Every rollout bound these values break, one line each (empty when all hold).

    `registration` is the time from a pod's readiness to its target being registered;
    `stop_propagation` from a pod's deletion to the ALB sending it no new request. AWS documents
    neither as a number; tests/test_rollout.py uses the assumptions docs/operations.md states.
    """
    broken = []
    if stop_propagation >= shutdown.accepting:
        broken.append(
            f"the ALB may still send {stop_propagation:g} s after a pod is told to stop, "
            f"but its listener accepts for only {shutdown.accepting:g} s (preStop + drain delay)"
        )
    if deregistration_delay < shutdown.accepting + shutdown.drain_timeout:
        broken.append(
            f"deregistration delay {deregistration_delay:g} s ends before an in-flight request may "
            f"(preStop + drain delay + drain timeout: {shutdown.accepting + shutdown.drain_timeout:g} s): "
            "the ALB stops waiting for it"
        )
    if grace_period <= shutdown.accepting + shutdown.drain_timeout:
        broken.append(
            f"terminationGracePeriodSeconds {grace_period:g} s does not cover preStop + drain delay + "
            f"drain timeout ({shutdown.accepting + shutdown.drain_timeout:g} s)"
        )
    # The deadline is for progress, and each new pod turning Ready is progress (Kubernetes'
    # "Deployments", Progress Deadline Seconds): with maxSurge 1 one pod's start is one step.
    step = worst_pod_start(probes, health, registration=registration)
    if step >= PROGRESS_DEADLINE:
        broken.append(
            f"one new pod may take {step:g} s to be Ready, past progressDeadlineSeconds ({PROGRESS_DEADLINE} s)"
        )
    return broken
