"""The EKS cluster and everything it runs on: VPC, control plane, nodes, cluster add-ons."""

from __future__ import annotations

import json
from typing import cast

from aws_cdk import CfnElement, CfnOutput, CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app import nag
from cdk_app.config import AppConfig
from cdk_app.logs import AdoptedLogGroup, retained_logs
from cdk_app.versions import (
    ALB_CONTROLLER_VALUES,
    ALB_CONTROLLER_VERSION,
    CLUSTER_AUTOSCALER_CHART,
    EKS_VERSION,
    KubectlLayer,
)

PRIVATE = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
CONTAINER_INSIGHTS_LOG_GROUPS = ("application", "dataplane", "host", "performance")


class HelloCluster(Construct):
    def __init__(self, scope: Construct, id: str, *, config: AppConfig) -> None:
        super().__init__(scope, id)
        self.config = config
        self.vpc = self._vpc(config)

        self.secrets_key = kms.Key(
            self,
            "SecretsKey",
            description=f"Envelope encryption of Kubernetes secrets in {config.cluster_name}",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # EKS writes control-plane logs here; created first so it has our retention.
        self.control_plane_logs = AdoptedLogGroup(
            self,
            "ControlPlaneLogs",
            name=f"/aws/eks/{config.cluster_name}/cluster",
            retention_days=config.log_retention_days,
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
            cluster_name=config.cluster_name,
            version=EKS_VERSION,
            vpc=self.vpc,
            vpc_subnets=[PRIVATE],
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,
            endpoint_access=self._endpoint_access(config),
            secrets_encryption_key=self.secrets_key,
            cluster_logging=[
                eks.ClusterLoggingTypes.API,
                eks.ClusterLoggingTypes.AUDIT,
                eks.ClusterLoggingTypes.AUTHENTICATOR,
            ],
            kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=KubectlLayer(self, "KubectlLayer")),
            alb_controller=eks.AlbControllerOptions(
                version=ALB_CONTROLLER_VERSION, additional_helm_chart_values=ALB_CONTROLLER_VALUES
            ),
            output_config_command=False,
        )
        self.cluster.node.add_dependency(self.control_plane_logs)
        self._kubectl_provider_outside_the_vpc(config)
        self.cluster.grant_cluster_admin("Admin", self.admin_role.role_arn)
        self.nodegroup = self._nodes(config)
        self._addons(config)
        self.autoscaler = self._cluster_autoscaler(config)
        self._acknowledge()

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

    def _kubectl_provider_outside_the_vpc(self, config: AppConfig) -> None:
        """Run the kubectl provider's Lambdas outside the VPC when they can reach the API publicly.

        aws-cdk-lib puts them in the private subnets whenever the private endpoint is on. A VPC
        Lambda holds network interfaces that Lambda releases on its own schedule after the
        function is deleted, and while they exist the subnets and the cluster security group
        cannot be deleted: `cdk destroy` can stall or fail. With the public endpoint open to
        all, the provider reaches the API as kubectl on a laptop does (IAM-authenticated), and
        there is nothing to release. A private or CIDR-restricted endpoint needs the VPC: the
        provider stays there (docs/decisions.md).
        """
        if config.endpoint_access == "private" or config.endpoint_allow_cidrs:
            return
        provider = self.cluster.node.find_child("KubectlProvider")
        for function in nag.kubectl_provider_functions(provider):
            cast(CfnResource, function.node.default_child).add_property_deletion_override("VpcConfig")

    def _acknowledge(self) -> None:
        """cdk-nag findings on what aws-cdk-lib and EKS create for us, each with its reason."""
        nag.acknowledge_managed_policies(
            self.cluster.role, "EKS requires this AWS-managed policy on the cluster role.", "AmazonEKSClusterPolicy"
        )
        nag.acknowledge_managed_policies(
            self.nodegroup.role,
            "The AWS-managed policies EKS documents for managed node groups (kubelet, VPC CNI, image pulls).",
            "AmazonEKSWorkerNodePolicy",
            "AmazonEKS_CNI_Policy",
            "AmazonEC2ContainerRegistryReadOnly",
        )
        provider = self.cluster.node.find_child("KubectlProvider")
        reason = "aws-cdk-lib's kubectl provider (a CDK-managed custom resource), not configurable here."
        nag.acknowledge_managed_policies(
            provider,
            reason,
            "AmazonEC2ContainerRegistryReadOnly",
            "service-role/AWSLambdaBasicExecutionRole",
            "service-role/AWSLambdaVPCAccessExecutionRole",
        )
        handler = provider.node.find_child("Handler")
        stack = Stack.of(self)
        has_ecr_public = stack.get_logical_id(cast(CfnElement, handler.node.find_child("HasEcrPublic")))
        nag.acknowledge(
            provider,
            "IAM4[Policy::"
            '{"Fn::If":["' + has_ecr_public + '",'
            '{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},'
            '{"Ref":"AWS::NoValue"}]}]',
            reason,
        )
        nag.acknowledge(
            provider,
            f"IAM5[Resource::<{stack.get_logical_id(cast(CfnElement, handler.node.default_child))}.Arn>:*]",
            reason + " It may invoke any version of its own handler.",
        )
        nag.acknowledge(provider, "L1", reason + " Its runtime is pinned by aws-cdk-lib.")
        if self.cluster.alb_controller is not None:
            for resource in (
                "*",
                "arn:<AWS::Partition>:ec2:*:*:security-group/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:loadbalancer/app/*/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:loadbalancer/net/*/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:targetgroup/*/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:listener-rule/app/*/*/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:listener-rule/net/*/*/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:listener/app/*/*/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:listener/net/*/*/*",
            ):
                nag.acknowledge(
                    self.cluster.alb_controller,
                    f"IAM5[Resource::{resource}]",
                    "The AWS Load Balancer Controller's published IAM policy, scoped by the "
                    "elbv2.k8s.aws/cluster resource tag conditions it carries.",
                )

    def _vpc(self, config: AppConfig) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            # Chosen zones, or the region's first two. EKS refuses some zones (by zone ID);
            # README "Configuration" shows how to list the IDs behind your zone names.
            **(
                {"availability_zones": list(config.availability_zones)} if config.availability_zones else {"max_azs": 2}
            ),
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20),
            ],
        )
        flow_logs_role = iam.Role(self, "FlowLogsRole", assumed_by=iam.ServicePrincipal("vpc-flow-logs.amazonaws.com"))
        vpc.add_flow_log(
            "FlowLogs",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                retained_logs(self, "FlowLogsGroup", config.log_retention_days), flow_logs_role
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        if config.vpc_endpoints:
            # Nodes pull images privately: ECR's API and registry, and S3 where the layers live.
            vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[PRIVATE])
            for name, service in (
                ("EcrApi", ec2.InterfaceVpcEndpointAwsService.ECR),
                ("EcrDocker", ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER),
            ):
                endpoint = vpc.add_interface_endpoint(name, service=service, subnets=PRIVATE, private_dns_enabled=True)
                nag.acknowledge(
                    endpoint,
                    "EC23",
                    "The endpoint accepts 443 from the VPC's own CIDR only; cdk-nag cannot evaluate that token.",
                )
        return vpc

    @staticmethod
    def _endpoint_access(config: AppConfig) -> eks.EndpointAccess:
        access = {
            "public": eks.EndpointAccess.PUBLIC,
            "private": eks.EndpointAccess.PRIVATE,
            "public-and-private": eks.EndpointAccess.PUBLIC_AND_PRIVATE,
        }[config.endpoint_access]
        return access.only_from(*config.endpoint_allow_cidrs) if config.endpoint_allow_cidrs else access

    def _nodes(self, config: AppConfig) -> eks.Nodegroup:
        # IMDSv2 only, one hop: pods cannot reach the node's instance credentials.
        template = ec2.LaunchTemplate(
            self,
            "NodeTemplate",
            require_imdsv2=True,
            http_tokens=ec2.LaunchTemplateHttpTokens.REQUIRED,
            http_put_response_hop_limit=1,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(20, volume_type=ec2.EbsDeviceVolumeType.GP3, encrypted=True),
                )
            ],
        )
        return self.cluster.add_nodegroup_capacity(
            "Nodes",
            instance_types=[ec2.InstanceType(config.node_instance_type)],
            ami_type=(
                eks.NodegroupAmiType.AL2023_ARM_64_STANDARD
                if config.node_arm64
                else eks.NodegroupAmiType.AL2023_X86_64_STANDARD
            ),
            capacity_type=eks.CapacityType(config.node_capacity_type),
            min_size=config.node_count,
            desired_size=config.node_count,
            max_size=config.node_max_count,
            subnets=PRIVATE,
            launch_template_spec=eks.LaunchTemplateSpec(
                id=template.launch_template_id or "", version=template.latest_version_number
            ),
            enable_node_auto_repair=True,
        )

    def _addons(self, config: AppConfig) -> None:
        cluster_name = self.cluster.cluster_name
        # VPC CNI, taken over from the self-managed install, with NetworkPolicy enforcement on.
        eks.CfnAddon(
            self,
            "VpcCni",
            addon_name="vpc-cni",
            cluster_name=cluster_name,
            resolve_conflicts="OVERWRITE",
            configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
        ).node.add_dependency(self.nodegroup)
        # Resource metrics for the HorizontalPodAutoscaler.
        eks.CfnAddon(self, "MetricsServer", addon_name="metrics-server", cluster_name=cluster_name).node.add_dependency(
            self.nodegroup
        )
        # Container Insights: node/pod/container metrics and container logs into CloudWatch.
        agent_role = iam.Role(
            self,
            "CloudWatchAgentRole",
            assumed_by=iam.ServicePrincipal("pods.eks.amazonaws.com").with_session_tags(),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("CloudWatchAgentServerPolicy")],
            description="Container Insights agent (EKS Pod Identity)",
        )
        observability = eks.CfnAddon(
            self,
            "Observability",
            addon_name="amazon-cloudwatch-observability",
            cluster_name=cluster_name,
            pod_identity_associations=[
                eks.CfnAddon.PodIdentityAssociationProperty(
                    service_account="cloudwatch-agent", role_arn=agent_role.role_arn
                )
            ],
        )
        observability.node.add_dependency(self.nodegroup)
        nag.acknowledge_managed_policies(
            agent_role,
            "The AWS-managed policy the amazon-cloudwatch-observability add-on documents for its agent.",
            "CloudWatchAgentServerPolicy",
        )
        for group in CONTAINER_INSIGHTS_LOG_GROUPS:
            log_group = AdoptedLogGroup(
                self,
                f"ContainerInsights-{group}",
                name=f"/aws/containerinsights/{config.cluster_name}/{group}",
                retention_days=config.log_retention_days,
            )
            observability.node.add_dependency(log_group)

    def _cluster_autoscaler(self, config: AppConfig) -> eks.HelmChart:
        account = eks.ServiceAccount(
            self,
            "ClusterAutoscalerAccount",
            cluster=self.cluster,  # type: ignore[arg-type]  # jsii's ICluster protocol lags Cluster
            name="cluster-autoscaler",
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
                conditions={
                    "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{config.cluster_name}": "owned"}
                },
            )
        )
        chart = self.cluster.add_helm_chart(
            "ClusterAutoscaler",
            chart="cluster-autoscaler",
            repository="https://kubernetes.github.io/autoscaler",
            version=CLUSTER_AUTOSCALER_CHART,  # its own image: see versions.py
            namespace="kube-system",
            release="cluster-autoscaler",
            values={
                "cloudProvider": "aws",
                "awsRegion": Stack.of(self).region,
                "autoDiscovery": {"clusterName": config.cluster_name},
                "rbac": {"serviceAccount": {"create": False, "name": "cluster-autoscaler"}},
                "extraArgs": {"balance-similar-node-groups": True, "skip-nodes-with-system-pods": False},
            },
        )
        chart.node.add_dependency(account)
        chart.node.add_dependency(self.nodegroup)
        nag.acknowledge(
            account,
            "IAM5[Resource::*]",
            "Autoscaling/EC2 Describe* actions take no resource ARNs; the two mutating actions are limited "
            "to this cluster's node groups by the k8s.io/cluster-autoscaler/<cluster> tag condition.",
        )
        return chart
