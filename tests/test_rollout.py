"""A rollout drops nothing: the readiness gate, the order the stack applies things in, the timing
bounds read from the synthesized template, and the simulation (tests/rollout_sim.py)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from cdk_app import rollout
from cdk_app.manifests import APP, SERVICE_PORT
from service import settings as svc
from tests import rollout_sim
from tests.infra import as_json, default_template, helm_charts, render, resources
from tests.test_paths import UPSTREAM

# What AWS gives no number for (docs/operations.md, "Rollouts"): how long the controller and ELB
# take to register or deregister a target, and for the ALB's routing to follow.
REGISTRATION = 5.0
PROPAGATION = 5.0


def _kube_resources() -> dict[str, dict[str, Any]]:
    """Each KubernetesManifest resource by logical id, with its objects and dependencies."""
    found = {}
    for logical_id, resource in resources(default_template(), "Custom::AWSCDK-EKS-KubernetesResource").items():
        found[logical_id] = {
            "objects": json.loads(render(resource["Properties"]["Manifest"])),
            "depends_on": set(resource.get("DependsOn", [])),
        }
    return found


def _holding(kind: str) -> str:
    """The logical id of the one KubernetesManifest resource that applies an object of this kind."""
    [logical_id] = [i for i, r in _kube_resources().items() if any(o["kind"] == kind for o in r["objects"])]
    return logical_id


def _objects(kind: str) -> list[dict[str, Any]]:
    return [o for r in _kube_resources().values() for o in r["objects"] if o["kind"] == kind]


def test_the_namespace_asks_the_controller_for_readiness_gates() -> None:
    [namespace] = _objects("Namespace")
    assert namespace["metadata"]["labels"][rollout.READINESS_GATE_LABEL] == "enabled"
    [deployment] = _objects("Deployment")
    assert deployment["metadata"]["namespace"] == namespace["metadata"]["name"]


def test_the_binding_exists_before_the_deployments_first_pods() -> None:
    """Namespace and Service, then the TargetGroupBinding, then the Deployment: the webhook
    injects the gate only into pods created after a binding names their Service."""
    namespace, binding, deployment = (_holding(k) for k in ("Namespace", "TargetGroupBinding", "Deployment"))
    assert len({namespace, binding, deployment}) == 3
    by_id = _kube_resources()
    assert binding in by_id[deployment]["depends_on"]
    assert namespace in by_id[binding]["depends_on"]
    [tgb] = by_id[binding]["objects"]
    assert tgb["spec"]["serviceRef"] == {"name": APP, "port": SERVICE_PORT}
    assert {"Service", "Namespace"} <= {o["kind"] for o in by_id[namespace]["objects"]}
    assert not {"Deployment", "Pod", "ReplicaSet"} & {o["kind"] for o in by_id[namespace]["objects"]}


def test_the_pod_webhook_fails_closed() -> None:
    """With failurePolicy Ignore a pod created while the controller is down starts without the gate."""
    values = helm_charts(default_template())["aws-load-balancer-controller"]["Values"]
    assert values["podMutatorWebhookConfig"]["failurePolicy"] == "Fail"


def test_a_drain_leaves_a_controller_replica_to_answer_the_webhook() -> None:
    """The chart renders its PodDisruptionBudget only with podDisruptionBudget set and more than
    one replica (templates/pdb.yaml at the chart's version, tests/data/upstream.json)."""
    values = helm_charts(default_template())["aws-load-balancer-controller"]["Values"]
    chart = UPSTREAM["aws_load_balancer_controller_chart"]["versions"]["3.2.2"]["pod_disruption_budget"]
    assert chart["rendered_when"] == "podDisruptionBudget set and replicaCount > 1"
    assert values.get("replicaCount", chart["replicaCount_default"]) > 1
    assert values["podDisruptionBudget"] == {"maxUnavailable": 1}


def template_timing() -> dict[str, Any]:
    """Every timing a rollout depends on, as the synthesized template holds it."""
    [deployment] = _objects("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: float(e["value"]) for e in container["env"]}
    [tg] = resources(default_template(), "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    props = tg["Properties"]
    attributes = {a["Key"]: a["Value"] for a in props["TargetGroupAttributes"]}
    startup, readiness = container["startupProbe"], container["readinessProbe"]
    return {
        "probes": rollout.Probes(
            startup_period=startup["periodSeconds"],
            startup_failures=startup["failureThreshold"],
            readiness_period=readiness["periodSeconds"],
            readiness_failures=readiness["failureThreshold"],
        ),
        "health": rollout.HealthCheck(
            interval=props["HealthCheckIntervalSeconds"],
            timeout=props["HealthCheckTimeoutSeconds"],
            healthy_threshold=props["HealthyThresholdCount"],
            unhealthy_threshold=props["UnhealthyThresholdCount"],
        ),
        "shutdown": dataclasses.replace(
            rollout.TIMING,
            pre_stop=container["lifecycle"]["preStop"]["sleep"]["seconds"],
            drain_delay=env["DRAIN_DELAY_SECONDS"],
            drain_timeout=env["DRAIN_TIMEOUT_SECONDS"],
        ),
        "deregistration_delay": float(attributes["deregistration_delay.timeout_seconds"]),
        "grace_period": pod["terminationGracePeriodSeconds"],
        "replicas": next(iter(_objects("HorizontalPodAutoscaler")))["spec"]["minReplicas"],
        "strategy": deployment["spec"]["strategy"],
        "health_path": props["HealthCheckPath"],
    }


def test_the_template_holds_the_timing_contract() -> None:
    t = template_timing()
    assert t["probes"] == rollout.PROBES and t["health"] == rollout.HEALTH_CHECK and t["shutdown"] == rollout.TIMING
    assert t["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert t["health_path"] == svc.READINESS_PATH


def _bounds(**change: Any) -> list[str]:
    t = template_timing()
    values = {k: t[k] for k in ("probes", "health", "shutdown", "deregistration_delay", "grace_period")}
    return rollout.broken_bounds(
        **(values | change), registration=REGISTRATION, stop_propagation=REGISTRATION + PROPAGATION
    )


def test_the_rollout_bounds_hold_on_the_template() -> None:
    assert _bounds() == []


def test_the_bounds_hold_at_their_edges() -> None:
    t = rollout.TIMING
    assert _bounds(deregistration_delay=t.accepting + t.drain_timeout) == []
    assert _bounds(grace_period=t.accepting + t.drain_timeout + 1) == []
    assert _bounds(grace_period=t.accepting + t.drain_timeout) != []


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"shutdown": dataclasses.replace(rollout.TIMING, pre_stop=2)}, "listener accepts for only"),
        ({"deregistration_delay": rollout.TIMING.accepting + rollout.TIMING.drain_timeout - 1}, "in-flight"),
        ({"grace_period": 25}, "terminationGracePeriodSeconds"),
        ({"health": dataclasses.replace(rollout.HEALTH_CHECK, healthy_threshold=10, interval=60)}, "progressDeadline"),
    ],
)
def test_each_rollout_bound_can_break(change: dict[str, Any], says: str) -> None:
    assert _bounds() == [] and any(says in line for line in _bounds(**change)), _bounds(**change)


def _simulated(gate: bool) -> list[rollout_sim.Result]:
    t = template_timing()
    return [
        rollout_sim.simulate(
            rollout_sim.Scenario(
                gate=gate,
                start=start,
                registration=reg,
                propagation=PROPAGATION,
                check_phase=phase,
                replicas=t["replicas"],
                health=t["health"],
                shutdown=t["shutdown"],
            )
        )
        for start in (2.0, t["probes"].worst_time_to_ready())
        for reg in (1.0, REGISTRATION)
        for phase in (0.5, t["health"].interval / 2, t["health"].interval)
    ]


def test_a_rolling_update_with_the_gate_drops_nothing_and_always_has_a_healthy_target() -> None:
    results = _simulated(gate=True)
    for r in results:
        assert r.dropped == [], r.scenario
        assert r.fewest_healthy >= 1, r.scenario
        assert all(h <= r.duration for h in r.healthy_at)  # every new target healthy before the rollout ends


def test_the_same_rolling_update_without_the_gate_drops_requests() -> None:
    """Upstream's condition for the outage: pods turn Ready faster than their targets turn healthy
    (here every pod that starts in 2 s). A pod that takes longer to start than its predecessor's
    target takes to turn healthy closes the gap by luck, which the gate makes a rule."""
    results = _simulated(gate=False)
    fast = [r for r in results if r.scenario.start == 2.0]
    assert fast and all(r.dropped and r.fewest_healthy == 0 for r in fast)
    assert {why for r in results for _, _, why in r.dropped} == {"503: no healthy target"}


def test_the_simulation_sees_a_request_sent_to_a_closed_listener() -> None:
    """If the ALB kept sending longer than the pod accepts, the simulation reports 502s."""
    slow = rollout_sim.Scenario(registration=10.0, propagation=10.0)
    assert any(why.startswith("502") for _, _, why in rollout_sim.simulate(slow).dropped)


def test_the_walk_goes_through_the_controllers_states_in_order() -> None:
    """Each new target initial -> healthy, each old one healthy -> draining -> unused; with the
    gate, an old target starts draining only after a new one is healthy."""
    lines = rollout_sim.transitions(rollout_sim.simulate(rollout_sim.Scenario(gate=True)))
    walks: dict[str, list[str]] = {}
    for line in lines:
        _, _, name, before, _, after = line.split()
        walks.setdefault(name, [before]).append(after)
    assert walks["new-0"] == walks["new-1"] == ["-", "initial", "healthy"]
    assert walks["old-0"] == walks["old-1"] == ["-", "healthy", "draining", "unused"]
    order = [line.split()[2] + ":" + line.split()[5] for line in lines]
    assert order.index("new-0:healthy") < order.index("old-0:draining")
    assert order.index("new-1:healthy") < order.index("old-1:draining")


# What the released version (80ed03b) applied, by resource: (kind, namespace, name).
RELEASED_OBJECTS = {
    "WorkloadManifests08F63A82": {
        ("Namespace", None, "hello"),
        ("ServiceAccount", "hello", "hello"),
        ("Deployment", "hello", "hello"),
        ("Service", "hello", "hello"),
        ("PodDisruptionBudget", "hello", "hello"),
        ("HorizontalPodAutoscaler", "hello", "hello"),
        ("NetworkPolicy", "hello", "default-deny"),
        ("NetworkPolicy", "hello", "allow-load-balancer"),
        ("NetworkPolicy", "hello", "allow-dns"),
    },
    "WorkloadTargetGroupBindingE8897D31": {("TargetGroupBinding", "hello", "hello")},
}


def test_objects_moved_to_a_new_resource_are_taken_over_not_created_nor_deleted_on_rollback() -> None:
    """An object a stack deployed before already holds, applied by a resource with a new logical
    id: the kubectl handler's create is `kubectl create` unless Overwrite (AlreadyExists: the
    upgrade fails), and a rollback deletes the new resource, which deletes its objects unless
    Retain. The released ones keep their ids, so an update applies them as before."""
    template = as_json(default_template())["Resources"]
    released = set().union(*RELEASED_OBJECTS.values())
    moved = {}
    for logical_id, resource in resources(default_template(), "Custom::AWSCDK-EKS-KubernetesResource").items():
        held = {
            (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
            for o in json.loads(render(resource["Properties"]["Manifest"]))
        }
        if logical_id not in RELEASED_OBJECTS and held & released:
            moved[logical_id] = held & released
            assert resource["Properties"].get("Overwrite") is True, logical_id
            assert template[logical_id]["DeletionPolicy"] == "Retain", logical_id
    assert set(RELEASED_OBJECTS) <= set(template)
    assert moved == {"WorkloadNamespaceFFEE208E": {("Namespace", None, "hello"), ("Service", "hello", "hello")}}
    # taken over before the released resource's update prunes what it no longer holds
    assert "WorkloadNamespaceFFEE208E" in template["WorkloadManifests08F63A82"]["DependsOn"]
