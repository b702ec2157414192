"""cdk-nag (AWS Solutions checks) on every synth, and the one way we acknowledge a finding.

Every acknowledgement sits next to the resource it concerns, names one finding, and says why.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Stack, Validations
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


def kubectl_provider_functions(provider: IConstruct) -> list[IConstruct]:
    """The kubectl provider's two Lambdas, by aws-cdk-lib's internal child ids (aws-eks-v2
    kubectl-provider: `Handler`, and the custom-resource framework's `Provider/framework-onEvent`).
    Re-check on upgrades: a renamed child raises here, at synth, rather than passing silently."""
    return [
        provider.node.find_child("Handler"),
        provider.node.find_child("Provider").node.find_child("framework-onEvent"),
    ]
