"""The running cluster's versions against cdk_app/versions.py: what a deploy would move, and what
the user moves after it (docs/operations.md, "Upgrading Kubernetes").

EKS upgrades the control plane one minor at a time and never down ("Update existing cluster to new
Kubernetes version"); a kubelet may be at most three minors older than the API server (Kubernetes'
version skew policy, since 1.28). The stack's node group and add-ons name no version, so they stay
where they are until moved by hand: an add-on version not offered for the new minor must move.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from tools.preflight.account import Preflight
from tools.preflight.results import Fail, Warn
from tools.preflight.sources import kubernetes_version

KUBELET_SKEW = 3  # minors a kubelet may lag the API server
GUIDE = "docs/operations.md#upgrading-kubernetes"


def _minor(version: str) -> int:
    return int(version.split(".")[1])


def _behind(eks: Any, cluster: str, target: str) -> tuple[list[str], list[str]]:
    """(what must move after the control plane, what the new control plane would refuse)."""
    behind, refused = [], []
    for group in eks.list_nodegroups(clusterName=cluster)["nodegroups"]:
        version = eks.describe_nodegroup(clusterName=cluster, nodegroupName=group)["nodegroup"]["version"]
        if version != target:
            behind.append(f"node group {group} ({version})")
        if _minor(target) - _minor(version) > KUBELET_SKEW:
            refused.append(f"node group {group} runs {version}, more than {KUBELET_SKEW} minors behind {target}")
    for addon in eks.list_addons(clusterName=cluster)["addons"]:
        installed = eks.describe_addon(clusterName=cluster, addonName=addon)["addon"]["addonVersion"]
        offered = eks.describe_addon_versions(addonName=addon, kubernetesVersion=target)["addons"]
        if installed not in {v["addonVersion"] for a in offered for v in a.get("addonVersions", [])}:
            behind.append(f"add-on {addon} ({installed}, not offered for {target})")
    return behind, refused


def upgrade(p: Preflight) -> str:
    eks = p.aws("eks")
    target, name = kubernetes_version(), p.config.cluster_name
    try:
        current = eks.describe_cluster(name=name)["cluster"]["version"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return f"no cluster {name} yet: deploy creates it at Kubernetes {target}"
        raise
    step = _minor(target) - _minor(current)
    if step < 0:
        raise Fail(f"cluster {name} runs Kubernetes {current}, cdk_app/versions.py asks {target}: EKS cannot downgrade")
    if step > 1:
        raise Fail(
            f"cluster {name} runs Kubernetes {current}, cdk_app/versions.py asks {target}: EKS upgrades one minor "
            f"at a time, so deploy 1.{_minor(current) + 1} first ({GUIDE})"
        )
    behind, refused = _behind(eks, name, target)
    if refused:
        raise Fail("; ".join(refused) + f": upgrade the node group first ({GUIDE})")
    if step == 1:
        after = f"; then move {', '.join(behind)}" if behind else ""
        raise Warn(f"deploy upgrades cluster {name} from Kubernetes {current} to {target}{after} ({GUIDE})")
    if behind:
        raise Warn(f"cluster {name} runs Kubernetes {target}; still to move: {', '.join(behind)} ({GUIDE})")
    return f"cluster {name}, its node groups and add-ons are at Kubernetes {target}"
