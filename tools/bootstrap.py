"""`make bootstrap`'s own steps around `cdk bootstrap` (docs/security.md).

--policy (before): the CloudFormation execution role's policy, from tools/execution-policy.json,
as the customer-managed policy HelloWorldEksCdkExecution: created, or given a new default
version when the file changed (the oldest version deleted first when IAM's five are used).
Prints its ARN on stdout, for `cdk bootstrap --cloudformation-execution-policies`; without it
the CDK's execution role gets AdministratorAccess.

--scan-on-push (after): ECR basic scanning on push for the CDK's container-asset repositories
(cdk-*-container-assets-*), in the region the image is pushed to (the cluster's: the first of
checkerRegions, else the CLI's region): a rule added to the registry's scanning
configuration, which is left alone when enhanced scanning (Amazon Inspector) already runs or a
rule already covers those repositories.

One line and exit 2 on failure, like the pre-deploy check.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
from pathlib import Path
from typing import Any

from cdk_app.config import ConfigError
from checker_lambda.aws_env import session_region
from tools.deploy_check import check

NO_REGION = "no AWS region: set AWS_REGION (or the profile's region), or checkerRegions"

POLICY_FILE = Path(__file__).resolve().parent / "execution-policy.json"
POLICY_NAME = "HelloWorldEksCdkExecution"
ASSET_REPOSITORIES = "cdk-*-container-assets-*"
SAMPLE_REPOSITORY = "cdk-hnb659fds-container-assets-123456789012-eu-west-1"  # the default qualifier's
MAX_POLICY_VERSIONS = 5  # IAM keeps at most five versions of a managed policy


def ensure_policy(iam: Any, document: dict[str, Any]) -> tuple[str, str]:
    """The policy's ARN, and what was done: created, updated or unchanged."""
    account = iam
    arn = None
    for page in account.get_paginator("list_policies").paginate(Scope="Local"):
        arn = next((p["Arn"] for p in page["Policies"] if p["PolicyName"] == POLICY_NAME), arn)
    text = json.dumps(document, separators=(",", ":"))
    if arn is None:
        created = account.create_policy(
            PolicyName=POLICY_NAME,
            PolicyDocument=text,
            Description="What the CDK's CloudFormation execution role may do for the Hello World EKS stacks",
        )
        return created["Policy"]["Arn"], "created"
    current = account.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    stored = account.get_policy_version(PolicyArn=arn, VersionId=current)["PolicyVersion"]["Document"]
    if (json.loads(stored) if isinstance(stored, str) else stored) == document:
        return arn, "unchanged"
    versions = account.list_policy_versions(PolicyArn=arn)["Versions"]
    if len(versions) >= MAX_POLICY_VERSIONS:
        oldest = min((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
        account.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
    account.create_policy_version(PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)
    return arn, "updated"


def ensure_scan_on_push(ecr: Any) -> str:
    """Scan-on-push for the CDK's asset repositories in this client's region; what was done."""
    config = ecr.get_registry_scanning_configuration()["scanningConfiguration"]
    if config.get("scanType") == "ENHANCED":
        return "left alone: enhanced scanning (Amazon Inspector) already scans"
    rules = config.get("rules", [])
    for rule in rules:
        for f in rule.get("repositoryFilters", []):
            if fnmatch.fnmatchcase(SAMPLE_REPOSITORY, f["filter"]):
                return f"left alone: the rule {f['filter']!r} ({rule['scanFrequency']}) already covers them"
    ours = {"filter": ASSET_REPOSITORIES, "filterType": "WILDCARD"}
    on_push = next((r for r in rules if r["scanFrequency"] == "SCAN_ON_PUSH"), None)
    if on_push is None:
        rules = [*rules, {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [ours]}]
    else:
        on_push["repositoryFilters"] = [*on_push["repositoryFilters"], ours]
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=rules)
    return f"added: basic scan on push for {ASSET_REPOSITORIES}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bootstrap", description=__doc__.splitlines()[0])
    step = parser.add_mutually_exclusive_group(required=True)
    step.add_argument("--policy", action="store_true", help="create or update the execution policy; print its ARN")
    step.add_argument("--scan-on-push", action="store_true", help="turn on ECR scan on push where the image goes")
    args, context = parser.parse_known_args(argv)
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        session = boto3.Session()
        home = session_region(session, os.environ)[0]
        if args.policy:
            iam = session.client("iam", region_name=home or "us-east-1")  # IAM is global: any region answers
            arn, done = ensure_policy(iam, json.loads(POLICY_FILE.read_text()))
            print(f"CloudFormation execution policy {arn}: {done} from {POLICY_FILE.name}", file=sys.stderr)
            print(arn)
        else:
            region = check(context, need_alerts=False).home_region or home
            if region is None:
                raise ConfigError(NO_REGION)
            print(f"ECR in {region}: {ensure_scan_on_push(session.client('ecr', region_name=region))}", file=sys.stderr)
    except (BotoCoreError, ClientError, ConfigError) as exc:
        print(f"error: make bootstrap: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
