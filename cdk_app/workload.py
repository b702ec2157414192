"""The Hello World service on the cluster: image asset, manifests, public address."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from aws_cdk import Duration
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from cdk_app import manifests
from cdk_app.config import AppConfig
from service import settings as svc

REPO_ROOT = Path(__file__).resolve().parent.parent


class HelloWorkload(Construct):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.Cluster, config: AppConfig) -> None:
        super().__init__(scope, id)
        kube = cast(eks.ICluster, cluster)  # jsii's generated ICluster protocol lags Cluster
        # Built from the repository's Dockerfile at deploy time and pushed to the CDK
        # bootstrap ECR repository under a content-hash tag (immutable, never `latest`).
        self.image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(REPO_ROOT),
            platform=ecr_assets.Platform.LINUX_ARM64 if config.node_arm64 else ecr_assets.Platform.LINUX_AMD64,
        )
        self.workload = manifests.Workload(
            namespace=config.namespace, image=self.image.image_uri, arm64=config.node_arm64
        )
        self.manifest = eks.KubernetesManifest(
            self, "Manifests", cluster=kube, manifest=manifests.all_manifests(self.workload)
        )
        # Waits at deploy time until Kubernetes has given the Service its load balancer.
        address = eks.KubernetesObjectValue(
            self,
            "LoadBalancerAddress",
            cluster=kube,
            object_type="service",
            object_name=manifests.APP,
            object_namespace=config.namespace,
            json_path=".status.loadBalancer.ingress[0].hostname",
            timeout=Duration.minutes(10),
        )
        address.node.add_dependency(self.manifest)
        self.load_balancer_host = address.value
        self.hello_url = f"http://{self.load_balancer_host}{svc.HELLO_PATH}"
