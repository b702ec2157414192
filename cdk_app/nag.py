"""cdk-nag (AWS Solutions checks) on every synth, and the one way we acknowledge a finding.

Every acknowledgement sits next to the resource it concerns, names one finding, and says why.
"""

from __future__ import annotations

from typing import cast

from aws_cdk import Acknowledgment, App, CfnElement, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def enable(app: App) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding (e.g. 'IAM5[Resource::*]') on one construct."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions-{finding}", reason=reason))


def managed_policy(policy_name: str) -> str:
    return f"IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy_name}]"


def acknowledge_managed_policies(role: IConstruct, reason: str, *policies: str) -> None:
    for policy in policies:
        acknowledge(role, managed_policy(policy), reason)


# aws-cdk-lib's AwsCustomResource runs every call through one Lambda per stack, under this
# construct id (aws-cdk-lib custom-resources/lib/aws-custom-resource, `AWS679f53fac002430cb0da5b7982bd2287`).
# Re-check the id when upgrading aws-cdk-lib: a changed id makes cdk-nag fail synth, not pass silently.
AWS_CUSTOM_RESOURCE_PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"


def acknowledge_aws_custom_resource_provider(stack: Stack) -> None:
    provider = stack.node.try_find_child(AWS_CUSTOM_RESOURCE_PROVIDER_ID)
    if provider is not None:
        acknowledge_managed_policies(
            provider,
            "aws-cdk-lib's AwsCustomResource provider; writes only its own logs with this policy.",
            "service-role/AWSLambdaBasicExecutionRole",
        )


# --- what aws-cdk-lib's EKS constructs create for us ----------------------------------------
# These reach into aws-cdk-lib's internal child ids (aws-eks-v2 cluster.js and
# kubectl-provider.js, 2.275.0): `KubectlProvider`, its `Handler` (with the `HasEcrPublic`
# condition) and `Provider/framework-onEvent`. Re-check them on every aws-cdk-lib upgrade; a
# renamed child raises at synth (find_child), it cannot pass silently.


def kubectl_provider_functions(cluster: IConstruct) -> list[IConstruct]:
    """The kubectl provider's two Lambdas: its handler and the custom-resource framework's."""
    provider = cluster.node.find_child("KubectlProvider")
    return [
        provider.node.find_child("Handler"),
        provider.node.find_child("Provider").node.find_child("framework-onEvent"),
    ]


def acknowledge_kubectl_provider(cluster: IConstruct) -> None:
    provider = cluster.node.find_child("KubectlProvider")
    reason = "aws-cdk-lib's kubectl provider (a CDK-managed custom resource), not configurable here."
    acknowledge_managed_policies(
        provider,
        reason,
        "AmazonEC2ContainerRegistryReadOnly",
        "service-role/AWSLambdaBasicExecutionRole",
        "service-role/AWSLambdaVPCAccessExecutionRole",
    )
    handler = provider.node.find_child("Handler")
    stack = Stack.of(cluster)
    has_ecr_public = stack.get_logical_id(cast(CfnElement, handler.node.find_child("HasEcrPublic")))
    acknowledge(
        provider,
        "IAM4[Policy::"
        '{"Fn::If":["' + has_ecr_public + '",'
        '{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},'
        '{"Ref":"AWS::NoValue"}]}]',
        reason,
    )
    acknowledge(
        provider,
        f"IAM5[Resource::<{stack.get_logical_id(cast(CfnElement, handler.node.default_child))}.Arn>:*]",
        reason + " It may invoke any version of its own handler.",
    )
    acknowledge(provider, "L1", reason + " Its runtime is pinned by aws-cdk-lib.")


# The AWS Load Balancer Controller's published IAM policy (aws-cdk-lib ships it per version).
ALB_CONTROLLER_POLICY_RESOURCES = (
    "*",
    "arn:<AWS::Partition>:ec2:*:*:security-group/*",
    "arn:<AWS::Partition>:elasticloadbalancing:*:*:loadbalancer/app/*/*",
    "arn:<AWS::Partition>:elasticloadbalancing:*:*:loadbalancer/net/*/*",
    "arn:<AWS::Partition>:elasticloadbalancing:*:*:targetgroup/*/*",
    "arn:<AWS::Partition>:elasticloadbalancing:*:*:listener-rule/app/*/*/*",
    "arn:<AWS::Partition>:elasticloadbalancing:*:*:listener-rule/net/*/*/*",
    "arn:<AWS::Partition>:elasticloadbalancing:*:*:listener/app/*/*/*",
    "arn:<AWS::Partition>:elasticloadbalancing:*:*:listener/net/*/*/*",
)


def acknowledge_alb_controller(controller: IConstruct) -> None:
    for resource in ALB_CONTROLLER_POLICY_RESOURCES:
        acknowledge(
            controller,
            f"IAM5[Resource::{resource}]",
            "The AWS Load Balancer Controller's published IAM policy, scoped by the "
            "elbv2.k8s.aws/cluster resource tag conditions it carries.",
        )
