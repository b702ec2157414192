"""The AWS region and credentials every tool uses, resolved as the CDK CLI resolves them.

One place, so `make preflight`, `make status`, `make drill` and the deploy targets agree on
where they act: a user told by one of them to export AWS_REGION must not be told by the next
that no region is set. boto3 alone reads only AWS_DEFAULT_REGION and the profile; the CDK CLI
(and Lambda) set and read AWS_REGION first. Standard library only at import: boto3 is imported
by the caller, and nothing here calls AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# aws-cdk's AwsCliCompatible.region order; AMAZON_* are the CLI's older spellings.
REGION_VARIABLES = ("AWS_REGION", "AMAZON_REGION", "AWS_DEFAULT_REGION", "AMAZON_DEFAULT_REGION")

NO_CREDENTIALS = (
    "no AWS credentials found: run `aws configure` (or `aws sso login`), or set AWS_PROFILE "
    "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; `make preflight` checks the whole setup"
)


def resolve_region(env: Mapping[str, str], profile_region: str | None, profile: str | None) -> tuple[str | None, str]:
    """The region the CDK CLI deploys to, and where it came from: AWS_REGION, AMAZON_REGION,
    AWS_DEFAULT_REGION, AMAZON_DEFAULT_REGION, then the profile's. (None, "") without any: the
    CLI then silently uses us-east-1, which a tool should not guess."""
    for name in REGION_VARIABLES:
        if env.get(name):
            return env[name], name
    if profile_region:
        return profile_region, f"profile '{profile or 'default'}'"
    return None, ""


def session_region(session: Any, env: Mapping[str, str]) -> tuple[str | None, str]:
    """resolve_region for a boto3 Session: its region_name is the profile's (or AWS_DEFAULT_REGION)."""
    return resolve_region(env, session.region_name, session.profile_name)
