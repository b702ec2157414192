"""Everything external this app pins, with where each fact comes from and how to refresh it.

The facts the tests check the app against (chart -> image, RBAC, CRD schema) are recorded in
tests/data/upstream.json, each with its source; tests/test_paths.py fails when a pin here and those facts disagree.

Moving to a new Kubernetes minor (e.g. 1.36):
1. KUBERNETES_VERSION, EKS_VERSION and KubectlLayer (package aws-cdk.lambda-layer-kubectl-v36
   in requirements.txt) together; the version must be in EKS standard support
   (EKS User Guide, "Understand the Kubernetes version lifecycle on EKS").
2. CLUSTER_AUTOSCALER_CHART: the newest chart of github.com/kubernetes/autoscaler whose
   values.yaml image.tag has the same minor (`git tag | grep cluster-autoscaler-chart`, then
   `git show cluster-autoscaler-chart-<v>:cluster-autoscaler/charts/cluster-autoscaler/values.yaml`);
   record its appVersion, image.tag and whether templates/clusterrole.yaml grants
   resource.k8s.io in tests/data/upstream.json. Never override the chart's image: its RBAC is
   written for the image it ships (chart 9.52.1 with image v1.35.0 lacked resource.k8s.io and
   blocked in cache sync while its health check answered 200).
3. kubernetes-validate in requirements-dev.txt validates manifests for KUBERNETES_VERSION.
"""

from aws_cdk import aws_eks_v2 as eks
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer

KUBERNETES_VERSION = "1.35"  # in EKS standard support; kubernetes-validate uses the same
EKS_VERSION = eks.KubernetesVersion.V1_35
KubectlLayer = KubectlV35Layer

# AWS Load Balancer Controller v3.2.2, Helm chart 3.2.2 from https://aws.github.io/eks-charts
# (aws-cdk-lib maps the version to the chart and ships its IAM policy). Source of the chart:
# github.com/kubernetes-sigs/aws-load-balancer-controller tag v3.2.2, helm/aws-load-balancer-controller.
ALB_CONTROLLER_VERSION = eks.AlbControllerVersion.V3_2_2
ALB_CONTROLLER_VALUES = {
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
}

# Cluster Autoscaler chart from https://kubernetes.github.io/autoscaler; 9.59.0 ships
# autoscaler v1.35.0 (values.yaml image.tag) with resource.k8s.io RBAC (tag
# cluster-autoscaler-chart-9.59.0, commit 5a0b98e45f896e98132737240ac131a519d3b33d).
CLUSTER_AUTOSCALER_CHART = "9.59.0"
