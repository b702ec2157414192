"""What runs in the cluster besides the service, one function per add-on.

Each takes the construct scope it adds to (the cluster construct, so logical IDs stay put), the
cluster, and what it must come after (the node group: add-ons need nodes to schedule on).
Versions that must move with Kubernetes are in versions.py.
"""

from __future__ import annotations

import json

from aws_cdk import Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from cdk_app import nag
from cdk_app.logs import AdoptedLogGroup
from cdk_app.versions import CLUSTER_AUTOSCALER_CHART

# Where the amazon-cloudwatch-observability add-on's Fluent Bit and agent write
# (/aws/containerinsights/<cluster>/<group>; tests/data/upstream.json has the source). All four
# are written on AL2023 nodes, so none stays empty: application (containers), dataplane (the
# aws-node and kube-proxy containers on every node, and the kubelet's journal), host (the
# journal), performance (the agent's metrics as EMF).
CONTAINER_INSIGHTS_LOG_GROUPS = ("application", "dataplane", "host", "performance")
# Application Signals auto-monitoring off (docs/decisions.md, "Application Signals"): left on,
# the add-on's operator injects OpenTelemetry Python into every Deployment a Service selects at
# its next pod-template change: four init containers, an agent on PYTHONPATH inside hello's
# 128 Mi, and Application Signals charges. The key is the chart's
# manager.applicationSignals.autoMonitor (aws-observability/helm-charts, chart 4.0.0 to 6.4.0).
OBSERVABILITY_CONFIGURATION = {"manager": {"applicationSignals": {"autoMonitor": {"monitorAllServices": False}}}}
CLUSTER_AUTOSCALER_ACCOUNT = "cluster-autoscaler"


def _after_pod_identity_agent(dependent: IConstruct, cluster: eks.Cluster) -> None:
    """Pods with a Pod Identity association get credentials from the agent add-on, so they
    start after it (not merely after the node group, which usually takes longer)."""
    agent = cluster.eks_pod_identity_agent
    if agent is not None:
        dependent.node.add_dependency(agent)


def vpc_cni(scope: Construct, cluster: eks.Cluster) -> eks.CfnAddon:
    """VPC CNI, taken over from the self-managed install, with NetworkPolicy enforcement on, and
    its own EKS Pod Identity role (AmazonEKS_CNI_Policy is not on the node role, where every pod
    that reached the node's credentials would have it). Created before the node group, as the
    Pod Identity agent is: a DaemonSet is healthy with no nodes, and the nodes' aws-node pods
    need these credentials to give pods addresses (terraform-aws-eks `before_compute`)."""
    role = iam.Role(
        scope,
        "VpcCniRole",
        assumed_by=iam.ServicePrincipal("pods.eks.amazonaws.com").with_session_tags(),
        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEKS_CNI_Policy")],
        description="VPC CNI (aws-node, EKS Pod Identity)",
    )
    addon = eks.CfnAddon(
        scope,
        "VpcCni",
        addon_name="vpc-cni",
        cluster_name=cluster.cluster_name,
        resolve_conflicts="OVERWRITE",
        configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
        pod_identity_associations=[
            eks.CfnAddon.PodIdentityAssociationProperty(service_account="aws-node", role_arn=role.role_arn)
        ],
    )
    addon.node.add_dependency(cluster.eks_pod_identity_agent)
    nag.acknowledge_managed_policies(
        role, "The AWS-managed policy EKS documents for the VPC CNI's own role (IPv4).", "AmazonEKS_CNI_Policy"
    )
    return addon


def metrics_server(scope: Construct, cluster: eks.Cluster, *, after: IConstruct) -> eks.CfnAddon:
    """Resource metrics for the HorizontalPodAutoscaler."""
    addon = eks.CfnAddon(scope, "MetricsServer", addon_name="metrics-server", cluster_name=cluster.cluster_name)
    addon.node.add_dependency(after)
    return addon


def container_insights(
    scope: Construct, cluster: eks.Cluster, *, after: IConstruct, cluster_name: str, retention_days: int
) -> eks.CfnAddon:
    """Node, pod and container metrics and container logs into CloudWatch (EKS Pod Identity)."""
    agent_role = iam.Role(
        scope,
        "CloudWatchAgentRole",
        assumed_by=iam.ServicePrincipal("pods.eks.amazonaws.com").with_session_tags(),
        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("CloudWatchAgentServerPolicy")],
        description="Container Insights agent (EKS Pod Identity)",
    )
    addon = eks.CfnAddon(
        scope,
        "Observability",
        addon_name="amazon-cloudwatch-observability",
        cluster_name=cluster.cluster_name,
        configuration_values=json.dumps(OBSERVABILITY_CONFIGURATION),
        pod_identity_associations=[
            # The agent's and Fluent Bit's service account.
            eks.CfnAddon.PodIdentityAssociationProperty(
                service_account="cloudwatch-agent", role_arn=agent_role.role_arn
            )
        ],
    )
    addon.node.add_dependency(after)
    _after_pod_identity_agent(addon, cluster)
    nag.acknowledge_managed_policies(
        agent_role,
        "The AWS-managed policy the amazon-cloudwatch-observability add-on documents for its agent.",
        "CloudWatchAgentServerPolicy",
    )
    for group in CONTAINER_INSIGHTS_LOG_GROUPS:
        log_group = AdoptedLogGroup(
            scope,
            f"ContainerInsights-{group}",
            name=f"/aws/containerinsights/{cluster_name}/{group}",
            retention_days=retention_days,
        )
        addon.node.add_dependency(log_group)  # the group first; the writer gone before it is deleted
    return addon


def cluster_autoscaler(
    scope: Construct, cluster: eks.Cluster, *, after: IConstruct, cluster_name: str
) -> eks.HelmChart:
    """Cluster Autoscaler for the managed node group (its chart's own image; versions.py)."""
    account = eks.ServiceAccount(
        scope,
        "ClusterAutoscalerAccount",
        cluster=cluster,  # type: ignore[arg-type]  # jsii's ICluster protocol lags Cluster
        name=CLUSTER_AUTOSCALER_ACCOUNT,
        namespace="kube-system",
        identity_type=eks.IdentityType.POD_IDENTITY,
    )
    # Read-only discovery anywhere; changes only to this cluster's node groups (by tag).
    account.add_to_principal_policy(
        iam.PolicyStatement(
            actions=[
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
                "eks:DescribeNodegroup",
            ],
            resources=["*"],  # Describe* actions take no resource ARNs
        )
    )
    account.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            resources=["*"],
            conditions={"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
        )
    )
    chart = cluster.add_helm_chart(
        "ClusterAutoscaler",
        chart="cluster-autoscaler",
        repository="https://kubernetes.github.io/autoscaler",
        version=CLUSTER_AUTOSCALER_CHART,  # runs the image its RBAC was written for: no override
        namespace="kube-system",
        release="cluster-autoscaler",
        values={
            "cloudProvider": "aws",
            "awsRegion": Stack.of(scope).region,
            "autoDiscovery": {"clusterName": cluster_name},
            "rbac": {"serviceAccount": {"create": False, "name": CLUSTER_AUTOSCALER_ACCOUNT}},
            "extraArgs": {"balance-similar-node-groups": True, "skip-nodes-with-system-pods": False},
        },
    )
    chart.node.add_dependency(account)  # pods get Pod Identity credentials only once associated
    chart.node.add_dependency(after)
    _after_pod_identity_agent(chart, cluster)
    nag.acknowledge(
        account,
        "IAM5[Resource::*]",
        "Autoscaling/EC2 Describe* actions take no resource ARNs; the two mutating actions are limited "
        "to this cluster's node groups by the k8s.io/cluster-autoscaler/<cluster> tag condition.",
    )
    return chart
