"""Versions that must move together: the cluster's Kubernetes version and its kubectl layer."""

from aws_cdk import aws_eks_v2 as eks
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer

KUBERNETES_VERSION = "1.35"  # in EKS standard support; kubernetes-validate uses the same
EKS_VERSION = eks.KubernetesVersion.V1_35
KubectlLayer = KubectlV35Layer
