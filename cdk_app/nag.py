"""cdk-nag (AWS Solutions checks) on every synth, and the one way we acknowledge a finding.

Every acknowledgement sits next to the resource it concerns, names one finding, and says why.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
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
