"""Versions that must move together with the cluster's Kubernetes version."""

from aws_cdk import aws_eks_v2 as eks
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer

KUBERNETES_VERSION = "1.35"  # in EKS standard support; kubernetes-validate uses the same
EKS_VERSION = eks.KubernetesVersion.V1_35
KubectlLayer = KubectlV35Layer
ALB_CONTROLLER_VERSION = eks.AlbControllerVersion.V3_2_2
# Cluster Autoscaler's minor version must match Kubernetes'.
CLUSTER_AUTOSCALER = {"chart": "9.52.1", "image": "v1.35.0"}
