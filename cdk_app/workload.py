"""The Hello World service on the cluster: image, manifests, and the public load balancer.

The Application Load Balancer belongs to the stack (not to a Kubernetes Ingress): its name,
metrics dimensions, listeners, certificate and deletion are all CloudFormation's, and the
AWS Load Balancer Controller only keeps its target group in step with the pods through a
TargetGroupBinding. docs/decisions.md says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from constructs import Construct

from cdk_app import manifests, nag, rollout
from service import settings as svc

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Domain:
    """The HTTPS listener's name, and the Route 53 zone its certificate is validated and its
    record published in."""

    name: str
    zone_id: str
    zone_name: str


class HelloWorkload(Construct):
    """The service on the cluster behind its load balancer: `arm64` images for the nodes,
    `namespace`, `min_replicas`..`max_replicas` pods, HTTPS on `domain` when given."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: eks.Cluster,
        vpc: ec2.IVpc,
        arm64: bool,
        namespace: str,
        min_replicas: int,
        max_replicas: int,
        domain: Domain | None,
    ) -> None:
        super().__init__(scope, id)
        kube = cast(eks.ICluster, cluster)  # jsii's generated ICluster protocol lags Cluster
        self._manifests(kube, vpc, arm64=arm64, namespace=namespace, replicas=(min_replicas, max_replicas))
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            security_group=ec2.SecurityGroup(
                self,
                "LoadBalancerGroup",
                vpc=vpc,
                allow_all_outbound=False,
                description="The hello ALB: in from the internet, out only to the service port on the pods",
            ),
            internet_facing=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            drop_invalid_header_fields=True,
            idle_timeout=Duration.seconds(svc.LOAD_BALANCER_IDLE_TIMEOUT_SECONDS),
        )
        self.target_group = self._target_group(vpc)
        self._only_to_the_pods(cluster)
        self.url = self._listeners(domain)
        nag.acknowledge(
            self.load_balancer.connections.security_groups[0],
            "EC23",
            "The service is public by design: anyone may reach /hello on 80 (and 443 with a domain).",
        )
        nag.acknowledge(
            self.load_balancer,
            "ELB2",
            "Per-request records come from the service's own JSON access log, collected by Container "
            "Insights into the application log group; ALB access logs would duplicate them in S3.",
        )

        self.binding = self._bind(kube, cluster)

    def _manifests(
        self, kube: eks.ICluster, vpc: ec2.IVpc, *, arm64: bool, namespace: str, replicas: tuple[int, int]
    ) -> None:
        """The image, and the manifests that run it (the binding comes between them: _bind)."""
        # Built from the repository's Dockerfile at deploy time and pushed to the CDK
        # bootstrap ECR repository under a content-hash tag (immutable, never `latest`).
        self.image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(REPO_ROOT),
            platform=ecr_assets.Platform.LINUX_ARM64 if arm64 else ecr_assets.Platform.LINUX_AMD64,
        )
        public = vpc.select_subnets(subnet_type=ec2.SubnetType.PUBLIC)
        low, high = replicas
        self.workload = manifests.Workload(
            namespace=namespace,
            image=self.image.image_uri,
            arm64=arm64,
            min_replicas=low,
            max_replicas=high,
            load_balancer_cidrs=tuple(s.ipv4_cidr_block for s in public.subnets),
        )
        # Three steps, in this order: the namespace (labelled for the readiness gate) and the
        # Service; the TargetGroupBinding; then the Deployment, so that even its first pods get
        # the gate (cdk_app/rollout.py). The pods keep the construct id "Manifests" they had;
        # the namespace and Service move to a new resource. On a stack deployed before, they
        # exist: `overwrite` applies them (the kubectl handler creates with `kubectl create`
        # otherwise, which fails on AlreadyExists), taking them over from "Manifests" (apply's
        # three-way merge drops that resource's prune label), before "Manifests" is updated, so
        # that update's prune finds nothing of theirs to delete. Retained: a rollback of that
        # update deletes the new resource, and deleting it would delete the namespace, pods and all.
        self.foundation = eks.KubernetesManifest(
            self,
            "Namespace",
            cluster=kube,
            manifest=manifests.before_binding(self.workload),
            overwrite=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.manifest = eks.KubernetesManifest(
            self, "Manifests", cluster=kube, manifest=manifests.after_binding(self.workload)
        )
        self.manifest.node.add_dependency(self.foundation)

    def _target_group(self, vpc: ec2.IVpc) -> elbv2.ApplicationTargetGroup:
        """IP targets on the service port, checked on the readiness path (cdk_app/rollout.py's timing)."""
        return elbv2.ApplicationTargetGroup(
            self,
            "Targets",
            vpc=vpc,
            target_type=elbv2.TargetType.IP,
            protocol=elbv2.ApplicationProtocol.HTTP,
            port=svc.PORT,
            deregistration_delay=Duration.seconds(rollout.TIMING.deregistration_delay),
            health_check=elbv2.HealthCheck(
                path=svc.READINESS_PATH,
                healthy_http_codes="200",
                interval=Duration.seconds(rollout.HEALTH_CHECK.interval),
                timeout=Duration.seconds(rollout.HEALTH_CHECK.timeout),
                healthy_threshold_count=rollout.HEALTH_CHECK.healthy_threshold,
                unhealthy_threshold_count=rollout.HEALTH_CHECK.unhealthy_threshold,
            ),
        )

    def _bind(self, kube: eks.ICluster, cluster: eks.Cluster) -> eks.KubernetesManifest:
        """The TargetGroupBinding: after the namespace and Service, before the Deployment."""
        binding = eks.KubernetesManifest(
            self,
            "TargetGroupBinding",
            cluster=kube,
            manifest=[manifests.target_group_binding(self.workload, self.target_group.target_group_arn)],
        )
        binding.node.add_dependency(self.foundation)
        self.manifest.node.add_dependency(binding)
        if cluster.alb_controller is not None:
            # Created after the controller (it installs the CRD) and deleted before it, so
            # the controller is still there to remove its finalizer.
            binding.node.add_dependency(cluster.alb_controller)
        return binding

    def _only_to_the_pods(self, cluster: eks.Cluster) -> None:
        """The ALB reaches pods on the cluster security group, on the service port, and nothing else.

        Both ends: ingress on the pods' group, and the ALB group's only egress rule, written into
        the group itself. aws-cdk-lib writes an egress rule to another group as a separate
        AWS::EC2::SecurityGroupEgress and drops its no-traffic placeholder from the group; a group
        created without egress rules keeps EC2's default allow-all, so that rule would add to
        "everything" instead of replacing it. A group created with egress rules has only those.
        The group is new (LoadBalancerGroup), not the one the ALB used to create for itself, so
        an update creates it whole and moves the ALB onto it: turning the old group's separate
        rule into an inline one would have CloudFormation revoke the same rule while it deletes
        the separate resource, after the update.
        """
        group = self.load_balancer.connections.security_groups[0]
        pods = cluster.cluster_security_group
        before = set(pods.node.children)
        pods.add_ingress_rule(group, ec2.Port.tcp(svc.PORT), "ALB to hello pods", remote_rule=True)
        # The ALB moves onto its group only once the pods' group admits that group: otherwise an
        # update could send from the new group before the pods accept it, and drop requests.
        # (In one stack, aws-cdk-lib puts the rule under the pods' group: determineRuleScope.)
        [ingress] = [c for c in pods.node.children if c not in before]
        cast(elbv2.CfnLoadBalancer, self.load_balancer.node.default_child).add_resource_dependency(
            cast(ec2.CfnSecurityGroupIngress, ingress)
        )
        cast(ec2.CfnSecurityGroup, group.node.default_child).add_property_override(
            "SecurityGroupEgress",
            [
                {
                    "IpProtocol": "tcp",
                    "FromPort": svc.PORT,
                    "ToPort": svc.PORT,
                    "DestinationSecurityGroupId": cluster.cluster_security_group.security_group_id,
                    "Description": "ALB to hello pods",
                }
            ],
        )

    def _listeners(self, https: Domain | None) -> str:
        if https is None:
            self.load_balancer.add_listener("Http", port=80, open=True, default_target_groups=[self.target_group])
            return f"http://{self.load_balancer.load_balancer_dns_name}{svc.HELLO_PATH}"
        domain = https.name
        zone = route53.HostedZone.from_hosted_zone_attributes(
            self, "Zone", hosted_zone_id=https.zone_id, zone_name=https.zone_name
        )
        certificate = acm.Certificate(
            self, "Certificate", domain_name=domain, validation=acm.CertificateValidation.from_dns(zone)
        )
        self.load_balancer.add_listener(
            "Https",
            port=443,
            open=True,
            certificates=[certificate],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            default_target_groups=[self.target_group],
        )
        # Port 80 redirects. Its construct id (so its logical id) is the released one: a new id on
        # a port in use is created before the old listener goes, which ELBv2 refuses
        # (DuplicateListener), failing the upgrade. The same holds when a domain is turned on or
        # off (Http <-> Redirect80To443): a known limit (docs/configuration.md, `domainName`).
        self.load_balancer.add_redirect(source_port=80, target_port=443)
        route53.ARecord(
            self,
            "Alias",
            zone=zone,
            record_name=domain,
            target=route53.RecordTarget.from_alias(route53_targets.LoadBalancerTarget(self.load_balancer)),
        )
        return f"https://{domain}{svc.HELLO_PATH}"
