"""What a check can find (ok, warn, FAIL, skip), the line it prints, and AWS errors in one line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from tools.preflight.account import Preflight


IAM_ACTIONS = {
    "GetCallerIdentity": "sts:GetCallerIdentity",
    "GetParameter": "ssm:GetParameter",
    "DescribeAvailabilityZones": "ec2:DescribeAvailabilityZones",
    "DescribeSubnets": "ec2:DescribeSubnets",
    "DescribeVpcs": "ec2:DescribeVpcs",
    "DescribeAddresses": "ec2:DescribeAddresses",
    "DescribeNatGateways": "ec2:DescribeNatGateways",
    "DescribeAddonVersions": "eks:DescribeAddonVersions",
    "DescribeCluster": "eks:DescribeCluster",
    "GetServiceQuota": "servicequotas:GetServiceQuota",
    "GetAWSDefaultServiceQuota": "servicequotas:GetAWSDefaultServiceQuota",
    "DescribeStacks": "cloudformation:DescribeStacks",
    "DescribeRegions": "ec2:DescribeRegions",
}
CLIENTS = ("sts", "ssm", "ec2", "eks", "service-quotas", "cloudformation", "secretsmanager")


@dataclass(frozen=True)
class Result:
    status: str  # ok, warn, FAIL, skip
    check: str
    detail: str

    def line(self) -> str:
        """Always one line: AWS error messages can carry newlines (or a whole HTML page)."""
        detail = " ".join(self.detail.split())
        return f"{self.status:<5} {self.check}: {detail[:400]}"


class Fail(Exception):
    """A check's finding that blocks the deploy; the message says what to fix."""


class Skip(Exception):
    """A check that cannot run because an earlier one failed (credentials, region)."""


class Warn(Exception):
    """Worth knowing, does not block the deploy."""


def explain(exc: BaseException) -> str:
    """One line for an expected AWS failure, naming what to fix."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.NoCredentialsError):
        return "no AWS credentials found: run `aws configure` or `aws sso login`, or set AWS_PROFILE"
    if isinstance(exc, bx.PartialCredentialsError):
        return f"incomplete AWS credentials ({exc}): set both the key id and the secret, or use a profile"
    if isinstance(exc, (bx.TokenRetrievalError, bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError)):
        return "the SSO session is missing or expired: run `aws sso login`"
    if isinstance(exc, bx.ProfileNotFound):
        return f"{exc}: fix AWS_PROFILE or add the profile with `aws configure --profile ...`"
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError)):
        return f"no answer from AWS ({exc}): check the network, proxy, and the region's spelling"
    if isinstance(exc, bx.NoRegionError):
        return "no region: set AWS_REGION"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), " ".join(str(error.get("Message", "")).split())[:200]
        action = IAM_ACTIONS.get(exc.operation_name, exc.operation_name)
        if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
            return f"the credentials have expired ({code}): refresh them (`aws sso login` or new keys)"
        if code in ("InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "AuthFailure"):
            return f"the credentials were rejected ({code}): check the access key, secret and profile"
        if "AccessDenied" in code or code in ("UnauthorizedOperation", "Forbidden"):
            return f"access denied to {action}: grant it to your identity ({code})"
        return f"{action} failed: {code}: {message}"
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Check:
    """One line of the report: `function` says what it found (ok), or raises Fail, Warn or Skip.
    `cluster_only`: what a checker-only deploy (cluster=false) does not need: it builds no image
    and creates no VPC, NAT gateway or cluster."""

    name: str
    function: Callable[[Preflight], str]
    cluster_only: bool = False
