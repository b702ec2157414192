"""The EKS cluster and everything it runs on: VPC, control plane, nodes, cluster add-ons."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import cast

from aws_cdk import CfnOutput, CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app import addons, nag
from cdk_app.config import WORLD, AppConfig
from cdk_app.logs import AdoptedLogGroup, retained_logs
from cdk_app.versions import ALB_CONTROLLER_VALUES, ALB_CONTROLLER_VERSION, EKS_VERSION, KubectlLayer

PRIVATE = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)


@dataclass(frozen=True)
class ClusterView:
    """What the cluster, its VPC and its nodes take from the configuration (AppConfig's names)."""

    cluster_name: str
    log_retention_days: int
    admin_principals: tuple[str, ...]
    api_cidrs: tuple[str, ...]
    availability_zones: tuple[str, ...]
    nat_gateways: int
    vpc_endpoints: bool
    node_instance_type: str
    node_arm64: bool
    node_capacity_type: str
    node_count: int
    node_max_count: int

    @classmethod
    def of(cls, config: AppConfig) -> ClusterView:
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})


class HelloCluster(Construct):
    def __init__(self, scope: Construct, id: str, *, config: ClusterView) -> None:
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
        self.admin_role = self._admin_role(config)
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
            # No hidden cluster-admin: the CloudFormation execution role that creates the cluster
            # gets no access entry. Who administers it is in the template: the kubectl provider's
            # role (aws-cdk-lib adds its entry) and AdminRole (docs/security.md).
            bootstrap_cluster_creator_admin_permissions=False,
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
        if self.admin_role is not None:
            self.cluster.grant_cluster_admin("Admin", self.admin_role.role_arn)
        self._nodes_and_addons(config)
        self._acknowledge()
        self._kubeconfig_output()

    def _nodes_and_addons(self, config: ClusterView) -> None:
        # The VPC CNI before the nodes: they become Ready only once it has its own credentials.
        cni = addons.vpc_cni(self, self.cluster)
        self.nodegroup = self._nodes(config)
        self.nodegroup.node.add_dependency(cni)
        addons.metrics_server(self, self.cluster, after=self.nodegroup)
        addons.container_insights(
            self,
            self.cluster,
            after=self.nodegroup,
            cluster_name=config.cluster_name,
            retention_days=config.log_retention_days,
        )
        self.autoscaler = addons.cluster_autoscaler(
            self, self.cluster, after=self.nodegroup, cluster_name=config.cluster_name
        )

    def _kubeconfig_output(self) -> None:
        region = Stack.of(self).region
        CfnOutput(
            self,
            "KubeconfigCommand",
            description="Configure kubectl for this cluster",
            value=(
                f"aws eks update-kubeconfig --name {self.cluster.cluster_name} --region {region} "
                f"--role-arn {self.admin_role.role_arn}"
                if self.admin_role is not None
                else "none: no one may use kubectl; deploy with adminPrincipals (make deploy sets you)"
            ),
        ).override_logical_id("KubeconfigCommand")

    def _admin_role(self, config: ClusterView) -> iam.Role | None:
        """kubectl access for the principals named in adminPrincipals, and no one else; none named,
        no role. Each is matched by an ArnLike condition on aws:PrincipalArn, the accounts being the
        Principal: a Principal cannot hold wildcards, and IAM refuses a trust policy naming a role
        that does not exist ("Invalid principal"), which an ARN read off an assumed-role session
        may be (its path is not in it), failing the deploy. The principals' own policies must allow
        sts:AssumeRole on the role (an administrator's do)."""
        if not config.admin_principals:
            return None
        accounts = sorted({p.split(":")[4] for p in config.admin_principals})
        trusted = iam.PrincipalWithConditions(
            iam.CompositePrincipal(*(iam.AccountPrincipal(a) for a in accounts)),
            {"ArnLike": {"aws:PrincipalArn": list(config.admin_principals)}},
        )
        return iam.Role(
            self, "AdminRole", assumed_by=trusted, description="kubectl access to the Hello World EKS cluster"
        )

    def _kubectl_provider_outside_the_vpc(self, config: ClusterView) -> None:
        """Run the kubectl provider's Lambdas outside the VPC when they can reach the API publicly.

        aws-cdk-lib puts them in the private subnets whenever the private endpoint is on. A VPC
        Lambda holds network interfaces that Lambda releases on its own schedule after the
        function is deleted, and while they exist the subnets and the cluster security group
        cannot be deleted: `cdk destroy` can stall or fail. With the public endpoint open to
        all, the provider reaches the API as kubectl on a laptop does (IAM-authenticated), and
        there is nothing to release. A private or CIDR-restricted endpoint needs the VPC: the
        provider stays there (docs/decisions.md).
        """
        if config.api_cidrs != (WORLD,):
            return
        for function in nag.kubectl_provider_functions(self.cluster):
            cast(CfnResource, function.node.default_child).add_property_deletion_override("VpcConfig")

    def _acknowledge(self) -> None:
        """cdk-nag findings on what aws-cdk-lib and EKS create for us, each with its reason."""
        nag.acknowledge_managed_policies(
            self.cluster.role, "EKS requires this AWS-managed policy on the cluster role.", "AmazonEKSClusterPolicy"
        )
        nag.acknowledge_managed_policies(
            self.nodegroup.role,
            "The AWS-managed policies EKS documents for managed node groups (kubelet, image pulls).",
            "AmazonEKSWorkerNodePolicy",
            "AmazonEC2ContainerRegistryReadOnly",
        )
        nag.acknowledge_kubectl_provider(self.cluster)
        if self.cluster.alb_controller is not None:
            nag.acknowledge_alb_controller(self.cluster.alb_controller)

    def _vpc(self, config: ClusterView) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            # Chosen zones, or the region's first two. EKS refuses some zones (by zone ID);
            # docs/configuration.md (`availabilityZones`) shows how to list the IDs behind your zone names.
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
    def _endpoint_access(config: ClusterView) -> eks.EndpointAccess:
        """Private by default; the public endpoint only for the CIDRs in apiCidrs (docs/decisions.md §7)."""
        if not config.api_cidrs:
            return eks.EndpointAccess.PRIVATE
        if config.api_cidrs == (WORLD,):
            return eks.EndpointAccess.PUBLIC_AND_PRIVATE
        return eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*config.api_cidrs)

    def _nodes(self, config: ClusterView) -> eks.Nodegroup:
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
            # aws-cdk-lib's default node role also holds AmazonEKS_CNI_Policy; the VPC CNI has its own.
            node_role=iam.Role(
                self,
                "NodeRole",
                assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
                managed_policies=[
                    iam.ManagedPolicy.from_aws_managed_policy_name(name)
                    for name in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly")
                ],
            ),
        )
