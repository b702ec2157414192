"""The EKS cluster: VPC over two AZs, control plane, and a managed node group."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_app.config import AppConfig
from cdk_app.versions import EKS_VERSION, KubectlLayer


class HelloCluster(Construct):
    def __init__(self, scope: Construct, id: str, *, config: AppConfig) -> None:
        super().__init__(scope, id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20),
            ],
        )
        # Whoever may assume this role administers the cluster (kubectl); the stack outputs
        # the `aws eks update-kubeconfig` command that uses it.
        self.admin_role = iam.Role(
            self,
            "AdminRole",
            assumed_by=iam.AccountRootPrincipal(),
            description="kubectl access to the Hello World EKS cluster",
        )
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            version=EKS_VERSION,
            vpc=self.vpc,
            vpc_subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,
            kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=KubectlLayer(self, "KubectlLayer")),
            output_config_command=False,
        )
        self.cluster.grant_cluster_admin("Admin", self.admin_role.role_arn)
        self.nodegroup = self.cluster.add_nodegroup_capacity(
            "Nodes",
            instance_types=[ec2.InstanceType(config.node_instance_type)],
            ami_type=(
                eks.NodegroupAmiType.AL2023_ARM_64_STANDARD
                if config.node_arm64
                else eks.NodegroupAmiType.AL2023_X86_64_STANDARD
            ),
            min_size=config.node_count,
            desired_size=config.node_count,
            max_size=config.node_count,
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        )
        region = Stack.of(self).region
        CfnOutput(
            self,
            "KubeconfigCommand",
            description="Configure kubectl for this cluster",
            value=(
                f"aws eks update-kubeconfig --name {self.cluster.cluster_name} --region {region} "
                f"--role-arn {self.admin_role.role_arn}"
            ),
        ).override_logical_id("KubeconfigCommand")
