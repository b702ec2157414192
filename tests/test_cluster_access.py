"""Who can reach and administer the cluster (issue 24): the API endpoint private unless CIDRs are
given, no hidden cluster-admin, AdminRole only for named principals, the VPC CNI's own role."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cdk_app.config import AppConfig, ConfigError
from tests.infra import DEFAULTS, default_template, logical_id_of, render, resources, synth

SSO = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_Admin_*"
ADMIN = "arn:aws:iam::123456789012:role/Admin"


def _cluster(t: Any) -> dict[str, Any]:
    [cluster] = resources(t, "AWS::EKS::Cluster").values()
    return cluster["Properties"]


def _kubectl_functions(t: Any) -> tuple[str, str]:
    """The kubectl provider: the framework Lambda the manifests call, and the handler it invokes."""
    functions = resources(t, "AWS::Lambda::Function")
    [framework] = {
        logical_id_of(render(r["Properties"]["ServiceToken"]))
        for r in resources(t, "Custom::AWSCDK-EKS-KubernetesResource").values()
    }
    handler = logical_id_of(
        render(functions[framework]["Properties"])["Environment"]["Variables"]["USER_ON_EVENT_FUNCTION_ARN"]
    )
    return framework, handler


@pytest.mark.parametrize(
    ("context", "public", "cidrs"),
    [
        ({}, False, None),  # the default: no public endpoint at all
        ({"apiCidrs": ["203.0.113.7/32", "198.51.100.0/24"]}, True, ["203.0.113.7/32", "198.51.100.0/24"]),
        ({"apiCidrs": ["0.0.0.0/0"]}, True, None),  # the internet, only when written alone
    ],
)
def test_the_api_endpoint_is_private_unless_cidrs_are_given_and_kubectl_reaches_it(context, public, cidrs) -> None:
    t = synth(**context)
    vpc = _cluster(t)["ResourcesVpcConfig"]
    assert vpc["EndpointPublicAccess"] is public and vpc["EndpointPrivateAccess"] is True
    assert vpc.get("PublicAccessCidrs") == cidrs  # absent: EKS's default, anywhere
    functions = resources(t, "AWS::Lambda::Function")
    framework, handler = _kubectl_functions(t)
    open_to_all = public and cidrs is None
    # Outside the VPC only when the public endpoint is open to all; otherwise inside, in the
    # cluster's private subnets, the only place that reaches the API.
    assert {"VpcConfig" in functions[f]["Properties"] for f in (framework, handler)} == {not open_to_all}
    if not open_to_all:
        assert render(functions[handler]["Properties"]["VpcConfig"]["SubnetIds"]) == render(vpc["SubnetIds"])


def _access_entries(t: Any) -> dict[str, str]:
    """principal (rendered) -> access policy, of every access entry."""
    return {
        render(e["Properties"]["PrincipalArn"]): render(e["Properties"]["AccessPolicies"][0]["PolicyArn"])
        for e in resources(t, "AWS::EKS::AccessEntry").values()
    }


def test_by_default_the_only_cluster_admin_is_the_kubectl_provider_the_template_shows() -> None:
    t = default_template()
    access = _cluster(t)["AccessConfig"]
    assert access == {"AuthenticationMode": "API", "BootstrapClusterCreatorAdminPermissions": False}
    assert not [k for k in resources(t, "AWS::IAM::Role") if "AdminRole" in k]
    # The one entry is the role the kubectl provider's handler runs as: CloudFormation's
    # manifests and charts still reach the cluster.
    [(principal, policy)] = _access_entries(t).items()
    assert policy.endswith(":eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy")
    _, handler = _kubectl_functions(t)
    handler_role = render(resources(t, "AWS::Lambda::Function")[handler]["Properties"]["Role"])
    assert principal == handler_role
    outputs = json.dumps(t.to_json()["Outputs"]["KubeconfigCommand"])
    assert "adminPrincipals" in outputs and "--role-arn" not in outputs


def test_admin_role_trusts_exactly_the_named_principals_and_administers_the_cluster() -> None:
    t = synth(adminPrincipals=[ADMIN, SSO])
    [(role_id, role)] = [(k, r) for k, r in resources(t, "AWS::IAM::Role").items() if "AdminRole" in k]
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    # No role ARN as Principal: IAM refuses one that does not exist (an assumed-role session's
    # ARN lacks the role's path), so the account is the Principal and the ARNs a condition.
    assert render(trust["Principal"]["AWS"]) == "arn:${AWS::Partition}:iam::123456789012:root"
    assert trust["Condition"] == {"ArnLike": {"aws:PrincipalArn": [ADMIN, SSO]}}
    entries = _access_entries(t)
    assert entries[f"${{{role_id}.Arn}}"].endswith("/AmazonEKSClusterAdminPolicy")
    command = render(t.to_json()["Outputs"]["KubeconfigCommand"]["Value"])
    assert command.endswith(f"--role-arn ${{{role_id}.Arn}}")


def test_the_vpc_cni_has_its_own_pod_identity_role_and_the_nodes_do_not_hold_its_policy() -> None:
    t = default_template()
    roles = resources(t, "AWS::IAM::Role")

    def policies(role_id: str) -> set[str]:
        return {render(p).rsplit("/", 1)[1] for p in roles[role_id]["Properties"].get("ManagedPolicyArns", [])}

    [group] = resources(t, "AWS::EKS::Nodegroup").values()
    node_role = logical_id_of(render(group["Properties"]["NodeRole"]))
    assert policies(node_role) == {"AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly"}
    addons = resources(t, "AWS::EKS::Addon")
    [(cni_id, cni)] = [(k, a) for k, a in addons.items() if a["Properties"]["AddonName"] == "vpc-cni"]
    [association] = cni["Properties"]["PodIdentityAssociations"]
    assert association["ServiceAccount"] == "aws-node"
    cni_role = logical_id_of(render(association["RoleArn"]))
    assert policies(cni_role) == {"AmazonEKS_CNI_Policy"}
    [trust] = roles[cni_role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    # The CNI and the Pod Identity agent that serves its credentials exist before the nodes.
    [agent] = [k for k, a in addons.items() if a["Properties"]["AddonName"] == "eks-pod-identity-agent"]
    assert cni_id in group["DependsOn"] and agent in cni["DependsOn"]
    assert not [r for r in roles.values() if "AmazonEKS_CNI_Policy" in json.dumps(r) and r is not roles[cni_role]]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("apiCidrs", '["10.0.0.1/8"]', "context key 'apiCidrs'='10.0.0.1/8' is invalid: allowed is a list of IPv4"),
        ("apiCidrs", '["0.0.0.0/0", "203.0.113.7/32"]', 'or ["0.0.0.0/0"] alone (the internet)'),
        ("apiCidrs", json.dumps([f"10.0.{i}.0/24" for i in range(41)]), "1..40 CIDRs"),
        ("adminPrincipals", '["Admin"]', "context key 'adminPrincipals'='Admin' is invalid: allowed is a list of IAM"),
        ("adminPrincipals", '["arn:aws:sts::123456789012:assumed-role/A/s"]', "'adminPrincipals'='arn:aws:sts::"),
    ],
)
def test_bad_access_settings_stop_synth_with_one_line(key: str, value: str, message: str) -> None:
    context = {**DEFAULTS, key: value}
    with pytest.raises(ConfigError) as error:
        AppConfig.from_context(context.get, keys=context)
    assert message in str(error.value) and "\n" not in str(error.value), str(error.value)
