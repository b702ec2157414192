"""Everything external this app pins, with where each fact comes from and how to refresh it.

Moving to the next Kubernetes minor is one edit here: KUBERNETES_VERSION, plus a RELEASES entry
with the facts below, each read at the source FACTS names. Synth refuses a version whose facts
are missing (`check()`, called by cdk_app/stack.py's build), listing each one and where to read
it. The facts the tests check the app against (chart -> image, RBAC, CRD schema) are recorded
in tests/data/upstream.json with their sources; tests/test_paths.py fails when a pin here and
those facts disagree. The upgrade procedure (control plane, node group, add-ons, charts) is in
docs/operations.md, "Upgrading Kubernetes".

Never override the Cluster Autoscaler chart's image: its RBAC is written for the image it ships
(chart 9.52.1 with image v1.35.0 lacked resource.k8s.io and blocked in cache sync while its
health check answered 200).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_eks_v2 as eks

from cdk_app.config import ConfigError

KUBERNETES_VERSION = "1.35"  # in EKS standard support; kubernetes-validate uses the same


# The EKS add-ons the stack runs (cdk_app/addons.py; aws_eks_v2 adds eks-pod-identity-agent).
STACK_ADDONS = ("vpc-cni", "eks-pod-identity-agent", "metrics-server", "amazon-cloudwatch-observability")


@dataclass(frozen=True)
class Release:
    """What one Kubernetes minor needs, each fact read at the source FACTS names."""

    cluster_autoscaler_chart: str  # its values.yaml image.tag has the same minor
    alb_controller: str  # an eks.AlbControllerVersion member, e.g. "V3_2_2"
    addons: tuple[str, ...]  # the EKS add-ons the stack installs, each offered for this minor


RELEASES: dict[str, Release] = {
    # Cluster Autoscaler chart 9.59.0 ships autoscaler v1.35.0 with resource.k8s.io RBAC (tag
    # cluster-autoscaler-chart-9.59.0, commit 5a0b98e45f896e98132737240ac131a519d3b33d).
    # AWS Load Balancer Controller v3.2.2, chart 3.2.2 (aws-cdk-lib maps the version to the chart
    # and ships its IAM policy; chart source kubernetes-sigs/aws-load-balancer-controller v3.2.2).
    "1.35": Release(
        cluster_autoscaler_chart="9.59.0",
        alb_controller="V3_2_2",
        # Each offered for 1.35 (tests/data/upstream.json, eks_addons): written out, not
        # STACK_ADDONS, so that a new release lists what was checked for it and synth notices a gap.
        addons=("vpc-cni", "eks-pod-identity-agent", "metrics-server", "amazon-cloudwatch-observability"),
    ),
}

# Each fact a Kubernetes minor needs, and where to read it ({v}: the minor, {m}: its number after "1.").
FACTS = {
    "EKS support": "EKS User Guide, 'Understand the Kubernetes version lifecycle on EKS': {v} in standard "
    "support; aws-cdk-lib (requirements.txt) must have aws_eks_v2.KubernetesVersion.V1_{m}",
    "kubectl layer": "PyPI package aws-cdk.lambda-layer-kubectl-v{m} in requirements.txt "
    "(module aws_cdk.lambda_layer_kubectl_v{m}, class KubectlV{m}Layer)",
    "autoscaler chart": "github.com/kubernetes/autoscaler: the newest tag cluster-autoscaler-chart-<x> whose "
    "charts/cluster-autoscaler/values.yaml image.tag is v{v}.*; record appVersion, image.tag and "
    "resource.k8s.io RBAC in tests/data/upstream.json; RELEASES['{v}'].cluster_autoscaler_chart",
    "load balancer controller": "github.com/kubernetes-sigs/aws-load-balancer-controller releases (supported "
    "Kubernetes versions) and aws-cdk-lib's aws_eks_v2.AlbControllerVersion; RELEASES['{v}'].alb_controller",
    "add-ons": "aws eks describe-addon-versions --kubernetes-version {v} --addon-name <name> for vpc-cni, "
    "eks-pod-identity-agent, metrics-server, amazon-cloudwatch-observability (make preflight asks per "
    "region); RELEASES['{v}'].addons",
}


def missing_facts(version: str) -> list[str]:
    """Each fact `version` lacks, as "<fact>: <where to read it>" (empty when it has them all)."""
    minor = version.split(".", 1)[1] if version.count(".") == 1 else version
    where = {fact: text.format(v=version, m=minor) for fact, text in FACTS.items()}
    missing = []
    if not hasattr(eks.KubernetesVersion, f"V1_{minor}"):
        missing.append("EKS support")
    try:
        getattr(importlib.import_module(f"aws_cdk.lambda_layer_kubectl_v{minor}"), f"KubectlV{minor}Layer")
    except (ImportError, AttributeError):
        missing.append("kubectl layer")
    release = RELEASES.get(version)
    if release is None:
        missing += ["autoscaler chart", "load balancer controller", "add-ons"]
    else:
        if not release.cluster_autoscaler_chart:
            missing.append("autoscaler chart")
        if not hasattr(eks.AlbControllerVersion, release.alb_controller):
            missing.append("load balancer controller")
        if not set(STACK_ADDONS) <= set(release.addons):
            missing.append("add-ons")
    return [f"{fact}: {where[fact]}" for fact in missing]


def check(version: str | None = None) -> None:
    """Refuses a Kubernetes version (KUBERNETES_VERSION unless given) without all its facts,
    in one line naming each missing fact and where to read it."""
    version = version or KUBERNETES_VERSION
    missing = missing_facts(version)
    if missing:
        raise ConfigError(
            f"cdk_app/versions.py: KUBERNETES_VERSION {version} lacks {len(missing)} fact(s); " + "; ".join(missing)
        )


def _resolved(version: str) -> tuple[Any, Any, Any, str]:
    """The pins for `version`, or placeholders when facts are missing (check() then refuses)."""
    if missing_facts(version):
        return None, None, None, ""
    minor = version.split(".")[1]
    release = RELEASES[version]
    layer = getattr(importlib.import_module(f"aws_cdk.lambda_layer_kubectl_v{minor}"), f"KubectlV{minor}Layer")
    return (
        getattr(eks.KubernetesVersion, f"V1_{minor}"),
        layer,
        getattr(eks.AlbControllerVersion, release.alb_controller),
        release.cluster_autoscaler_chart,
    )


EKS_VERSION, KubectlLayer, ALB_CONTROLLER_VERSION, CLUSTER_AUTOSCALER_CHART = _resolved(KUBERNETES_VERSION)
# The controller's image tag is its version: "V3_2_2" -> "v3.2.2" (the chart's appVersion).
CONTROLLER_TAG = (
    "v" + RELEASES[KUBERNETES_VERSION].alb_controller[1:].replace("_", ".") if ALB_CONTROLLER_VERSION else ""
)

ALB_CONTROLLER_VALUES = {
    # The image the chart itself names (values.yaml image at the controller's tag; tests/data/upstream.json).
    # aws-cdk-lib would set 602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon/aws-load-balancer-controller,
    # a private registry whose tags cannot be listed without an account; the chart's default is the
    # one its release publishes, read at the source.
    "image": {"repository": "public.ecr.aws/eks/aws-load-balancer-controller", "tag": CONTROLLER_TAG},
    # The chart's Service mutator webhook (templates/webhook.yaml, `mservice.elbv2.k8s.aws`,
    # failurePolicy Fail) intercepts every Service create; while the controller is not ready,
    # Services from charts and add-ons are rejected. This stack creates no LoadBalancer Service
    # (the ALB is the stack's, bound by a TargetGroupBinding), so it has no use for it.
    "enableServiceMutatorWebhook": False,
    # The pod webhook injects the readiness gate (cdk_app/rollout.py). Its chart default, Ignore,
    # lets a pod in the labelled namespace start without the gate while the controller is down,
    # and a rollout then drops requests; Fail, as upstream's pod_readiness_gate.md recommends,
    # holds such pods back until the controller answers. Only the labelled namespace is affected.
    "podMutatorWebhookConfig": {"failurePolicy": "Fail"},
    # And so a node drain must not take both controller replicas (chart default replicaCount 2) at
    # once: with none left, every pod in the namespace waits on the webhook. The chart renders its
    # PodDisruptionBudget only when this is set and replicaCount > 1 (templates/pdb.yaml).
    "podDisruptionBudget": {"maxUnavailable": 1},
}
