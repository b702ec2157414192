"""Kubernetes manifests: valid for the cluster's version, restricted, and timed consistently."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import pytest

from cdk_app import manifests
from cdk_app.versions import KUBERNETES_VERSION
from service import settings as svc
from tests.infra import default_template, resources

WORKLOAD = manifests.Workload(namespace="hello", image="123456789012.dkr.ecr.us-east-1.amazonaws.com/x:abc")


def _flatten(raw: Any) -> str:
    """A manifest property as text: Fn::Join parts joined, tokens (image URI, ARNs) as their source."""
    if isinstance(raw, str):
        return raw
    return "".join(p if isinstance(p, str) else p.get("Fn::Sub", "TOKEN") for p in raw["Fn::Join"][1])


def all_synthesized_manifests() -> list[dict[str, Any]]:
    """Every Kubernetes object the stack hands to kubectl, in every KubernetesManifest."""
    found = []
    for resource in resources(default_template(), "Custom::AWSCDK-EKS-KubernetesResource").values():
        found += json.loads(_flatten(resource["Properties"]["Manifest"]))
    return found


def synthesized_manifests() -> list[dict[str, Any]]:
    """The service's own manifests (every KubernetesManifest but the TargetGroupBinding's), in
    the order the stack applies them (tests/test_rollout.py checks that order)."""
    every = all_synthesized_manifests()
    [namespace] = [o for o in every if o["kind"] == "Namespace"]
    name = namespace["metadata"]["name"]
    found = [namespace] + [
        o for o in every if o["metadata"].get("namespace") == name and o["kind"] != "TargetGroupBinding"
    ]
    first = [o for o in found if o["kind"] in ("Namespace", "Service")]
    return first + [o for o in found if o not in first]


def test_stack_applies_exactly_the_manifests_built_here() -> None:
    kinds = [m["kind"] for m in synthesized_manifests()]
    assert kinds == [
        "Namespace",
        "Service",
        "ServiceAccount",
        "Deployment",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "NetworkPolicy",
        "NetworkPolicy",
    ]


@pytest.mark.parametrize(
    "manifest", manifests.all_manifests(WORKLOAD), ids=lambda m: f"{m['kind']}-{m['metadata']['name']}"
)
def test_manifest_is_valid_for_the_cluster_version_in_strict_mode(manifest: dict[str, Any]) -> None:
    import kubernetes_validate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kubernetes_validate.validate(manifest, f"{KUBERNETES_VERSION}.0", strict=True)


def test_strict_validation_catches_a_typo() -> None:
    import kubernetes_validate

    broken = manifests.deployment(WORKLOAD)
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, f"{KUBERNETES_VERSION}.0", strict=True)


def pod_specs(all_manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        m["spec"]["template"]["spec"]
        for m in all_manifests
        if m["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    ]


def test_every_pod_passes_the_restricted_pod_security_profile() -> None:
    all_manifests = synthesized_manifests()
    [ns] = [m for m in all_manifests if m["kind"] == "Namespace"]
    for mode in ("enforce", "audit", "warn"):
        assert ns["metadata"]["labels"][f"pod-security.kubernetes.io/{mode}"] == "restricted"
    specs = pod_specs(all_synthesized_manifests())
    assert specs
    for spec in specs:
        pod_ctx = spec["securityContext"]
        assert pod_ctx["runAsNonRoot"] is True and pod_ctx["runAsUser"] >= 10000
        assert pod_ctx["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False and spec["serviceAccountName"] != "default"
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
        for volume in spec.get("volumes", []):
            assert set(volume) - {"name"} <= {"emptyDir", "configMap", "secret", "projected", "persistentVolumeClaim"}
        for c in spec["containers"]:
            ctx = c["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["capabilities"]["drop"] == ["ALL"] and not ctx["capabilities"].get("add")
            assert ctx.get("privileged") is not True
            assert c["resources"]["requests"] and c["resources"]["limits"]
            assert c["livenessProbe"] and c["readinessProbe"]
            # The CDK asset's content hash as the tag: immutable, never `latest`.
            assert re.search(r"\.dkr\.ecr\..+:[0-9a-f]{64}$", c["image"]), c["image"]


def test_probes_ports_and_paths_come_from_the_service_contract() -> None:
    [container] = manifests.deployment(WORKLOAD)["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": svc.PORT, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["path"] == svc.READINESS_PATH
    assert container["livenessProbe"]["httpGet"]["path"] == svc.LIVENESS_PATH
    assert {"name": "PORT", "value": str(svc.PORT)} in container["env"]


def test_shutdown_timing_adds_up() -> None:
    t = manifests.TIMING
    spec = manifests.deployment(WORKLOAD)["spec"]
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: float(e["value"]) for e in container["env"]}
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] == t.pre_stop
    assert env["DRAIN_DELAY_SECONDS"] == t.drain_delay and env["DRAIN_TIMEOUT_SECONDS"] == t.drain_timeout
    # SIGKILL only after preStop + the service's whole drain.
    assert pod["terminationGracePeriodSeconds"] > t.pre_stop + t.drain_delay + t.drain_timeout
    # The load balancer lets go of the pod before its listener closes.
    assert t.accepting + t.drain_timeout <= t.deregistration_delay < pod["terminationGracePeriodSeconds"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_replicas_spread_and_disruption_budget() -> None:
    spec = manifests.deployment(WORKLOAD)["spec"]
    assert "replicas" not in spec  # the autoscaler's: a deploy must not reset a scaled-out count
    assert manifests.autoscaler(WORKLOAD)["spec"]["minReplicas"] >= 2
    keys = {c["topologyKey"] for c in spec["template"]["spec"]["topologySpreadConstraints"]}
    assert "topology.kubernetes.io/zone" in keys
    pdb = manifests.disruption_budget(WORKLOAD)
    assert (
        pdb["spec"]["minAvailable"] == 1 and pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    )


def test_network_policy_denies_all_then_allows_only_the_load_balancer_and_dns() -> None:
    by_name = {m["metadata"]["name"]: m for m in synthesized_manifests() if m["kind"] == "NetworkPolicy"}
    deny = by_name["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    [rule] = by_name["allow-load-balancer"]["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": svc.PORT}]
    public_cidrs = sorted(
        r["Properties"]["CidrBlock"]
        for r in resources(default_template(), "AWS::EC2::Subnet").values()
        if r["Properties"].get("MapPublicIpOnLaunch")
    )
    assert sorted(peer["ipBlock"]["cidr"] for peer in rule["from"]) == public_cidrs
    [egress] = by_name["allow-dns"]["spec"]["egress"]
    assert {p["port"] for p in egress["ports"]} == {53}


def test_target_group_binding_points_the_alb_at_the_service() -> None:
    bindings = [m for m in all_synthesized_manifests() if m["kind"] == "TargetGroupBinding"]
    [binding] = bindings
    assert binding["spec"]["serviceRef"] == {"name": manifests.APP, "port": manifests.SERVICE_PORT}
    assert binding["spec"]["targetType"] == "ip"
