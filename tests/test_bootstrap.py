"""make bootstrap: the CDK's CloudFormation execution role gets tools/execution-policy.json, not
AdministratorAccess, and that policy allows what deploying these stacks does; ECR scans pushed
images. The policy is checked against CloudFormation's own resource schemas (the handler
permissions cfn-lint ships); the IAM and ECR calls run against a moto server."""

from __future__ import annotations

import fnmatch
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import cfnlint
import pytest

from tests.infra import assembly, render
from tests.test_infra import RICHEST
from tools.bootstrap import ASSET_REPOSITORIES, POLICY_FILE, POLICY_NAME, ensure_policy, ensure_scan_on_push

POLICY = json.loads(POLICY_FILE.read_text())
SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
# The IAM service prefix of each CloudFormation namespace the stacks use. A resource of a new
# namespace fails test_the_policy_allows_every_resource_the_stacks_create until its service is
# here and in tools/execution-policy.json (docs/security.md, "Widening the execution policy").
SERVICE_OF = {
    "CertificateManager": "acm",
    "CloudWatch": "cloudwatch",
    "EC2": "ec2",
    "EKS": "eks",
    "ElasticLoadBalancingV2": "elasticloadbalancing",
    "Events": "events",
    "IAM": "iam",
    "KMS": "kms",
    "Lambda": "lambda",
    "Logs": "logs",
    "Route53": "route53",
    "SNS": "sns",
    "SQS": "sqs",  # the notifier's dead-letter queue (alertChannels)
    "SSM": "ssm",
}
# IAM actions a handler lists for what these stacks never have: users, groups, instance
# profiles (EKS Auto Mode's). Asserted absent below, so leaving them out is not a guess.
NOT_OURS = re.compile(r"^iam:\w*(User|Group|InstanceProfile)\w*$")
# The defaults, every optional part on, and the notifier's channels on top (a dead-letter queue).
CONFIGURATIONS = {
    "default": {},
    "richest": RICHEST,
    "channels": {**RICHEST, "alertChannels": json.dumps([{"type": "slack", "secret": "hello/slack"}])},
}


def templates(configuration: str) -> dict[str, dict[str, Any]]:
    path = assembly(**CONFIGURATIONS[configuration])
    artifacts = json.loads((path / "manifest.json").read_text())["artifacts"]
    return {
        a["properties"].get("stackName", name): json.loads((path / a["properties"]["templateFile"]).read_text())
        for name, a in artifacts.items()
        if a["type"] == "aws:cloudformation:stack"
    }


def statements(effect: str = "Allow") -> list[dict[str, Any]]:
    return [s for s in POLICY["Statement"] if s["Effect"] == effect]


def _matches(action: str, effect: str) -> bool:
    actions = [a for s in statements(effect) for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions)


def allows(action: str) -> bool:
    """Allowed and not denied (an explicit Deny wins in IAM)."""
    return _matches(action, "Allow") and not _matches(action, "Deny")


def test_commands_on_the_accounts_instances_are_denied_whatever_a_template_asks() -> None:
    assert not allows("ssm:SendCommand") and not allows("ssm:StartSession") and allows("ssm:PutParameter")


@cache
def handler_permissions(resource_type: str) -> frozenset[str]:
    index = json.loads((SCHEMAS / "providers" / "us-east-1.json").read_text())
    schema = json.loads((SCHEMAS / "resources" / f"{index[resource_type]}.json").read_text())
    return frozenset(
        a for h in ("create", "update", "delete") for a in schema.get("handlers", {}).get(h, {}).get("permissions", [])
    )


def required(resource_type: str) -> set[str]:
    """What CloudFormation does, with the execution role, to create, update and delete one."""
    if resource_type.startswith("Custom::"):
        return {"lambda:InvokeFunction"}  # CloudFormation invokes the provider's Lambda
    services = set(SERVICE_OF.values())
    needed = {a for a in handler_permissions(resource_type) if a.split(":")[0] in services and not NOT_OURS.match(a)}
    if resource_type.startswith("AWS::Lambda::"):  # the code, from the CDK's bootstrap bucket
        needed |= {a for a in handler_permissions(resource_type) if a.startswith("s3:GetObject")}
    return needed


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_the_policy_allows_every_resource_the_stacks_create(configuration: str) -> None:
    types = {r["Type"] for t in templates(configuration).values() for r in t["Resources"].values()}
    types.discard("AWS::CDK::Metadata")
    for resource_type in sorted(types):
        if resource_type.startswith("AWS::"):
            service = resource_type.split("::")[1]
            assert service in SERVICE_OF, f"{resource_type}: widen tools/execution-policy.json (and SERVICE_OF)"
            assert allows(f"{SERVICE_OF[service]}:CreateSomething") or service == "IAM", resource_type
        refused = sorted(a for a in required(resource_type) if not allows(a))
        assert not refused, f"{resource_type} needs {refused}: widen tools/execution-policy.json"
    assert not types & {"AWS::IAM::User", "AWS::IAM::Group", "AWS::IAM::InstanceProfile", "AWS::IAM::ManagedPolicy"}


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_roles_and_managed_policies_stay_inside_what_the_iam_statements_allow(configuration: str) -> None:
    [roles] = [s for s in statements() if s["Sid"] == "TheRolesOfTheseStacks"]
    [attach] = [s for s in statements() if s["Sid"] == "OnlyTheManagedPoliciesTheseStacksAttach"]
    attachable = attach["Condition"]["ArnLike"]["iam:PolicyARN"]
    for stack, template in templates(configuration).items():
        # CloudFormation names a role without RoleName <stack name>-<logical id>-<suffix>.
        assert fnmatch.fnmatchcase(f"arn:aws:iam::123456789012:role/{stack}-X-Y", roles["Resource"]), stack
        for role in (r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"):
            assert "RoleName" not in role["Properties"]
            for arn in role["Properties"].get("ManagedPolicyArns", []):
                rendered = json.dumps(render(arn))
                [name] = re.findall(r"iam::aws:policy/([\w/+=,.@-]+)", rendered)
                assert any(fnmatch.fnmatchcase(f"arn:aws:iam::aws:policy/{name}", p) for p in attachable), name
    # Nothing in IAM beyond these stacks' roles, but reading roles (a handler may look at a
    # service-linked role before creating it) and the service-linked roles of their services.
    for s in statements():
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        if any(a.startswith("iam:") for a in actions) and s["Resource"] == "*":
            if all(a.startswith(("iam:Get", "iam:List")) for a in actions):
                continue
            assert actions == ["iam:CreateServiceLinkedRole"]
            assert set(s["Condition"]["StringEquals"]["iam:AWSServiceName"]) <= {
                "eks.amazonaws.com",
                "eks-nodegroup.amazonaws.com",
                "elasticloadbalancing.amazonaws.com",
                "autoscaling.amazonaws.com",
            }


def test_the_policy_is_created_then_kept_then_given_a_new_version_within_iams_five(aws_env: str) -> None:
    iam = boto3.client("iam")
    arn, done = ensure_policy(iam, POLICY)
    assert (done, arn) == ("created", f"arn:aws:iam::123456789012:policy/{POLICY_NAME}")
    assert ensure_policy(iam, POLICY) == (arn, "unchanged")
    for sid in range(6):  # six changes: the fifth and sixth each delete the oldest version first
        changed = {**POLICY, "Statement": [*POLICY["Statement"], {**POLICY["Statement"][0], "Sid": f"Extra{sid}"}]}
        assert ensure_policy(iam, changed) == (arn, "updated")
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert len(versions) == 5
    [default] = [v for v in versions if v["IsDefaultVersion"]]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=default["VersionId"])["PolicyVersion"]["Document"]
    assert (json.loads(document) if isinstance(document, str) else document)["Statement"][-1]["Sid"] == "Extra5"


def test_scan_on_push_is_added_for_the_cdk_asset_repositories_and_never_replaces_what_is_there(aws_env: str) -> None:
    ecr = boto3.client("ecr", region_name="us-east-1")
    ecr.put_registry_scanning_configuration(
        scanType="BASIC",
        rules=[
            {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "team-*", "filterType": "WILDCARD"}]}
        ],
    )
    assert ensure_scan_on_push(ecr).startswith("added")
    [rule] = ecr.get_registry_scanning_configuration()["scanningConfiguration"]["rules"]
    assert [f["filter"] for f in rule["repositoryFilters"]] == ["team-*", ASSET_REPOSITORIES]  # theirs kept
    assert ensure_scan_on_push(ecr).startswith("left alone: the rule 'cdk-*-container-assets-*'")
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[])
    assert ensure_scan_on_push(ecr).startswith("left alone: enhanced scanning")
    assert ecr.get_registry_scanning_configuration()["scanningConfiguration"]["scanType"] == "ENHANCED"
