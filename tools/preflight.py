"""`make preflight`: can this account, region and machine take a first `make deploy`?

One line per check (`ok`, `warn`, `FAIL`, `skip`), then exit 0 when nothing failed, 1 when
something did, 2 for a bad argument or configuration. Every AWS call is a read (Get*,
Describe*): free, nothing is created. The calls run concurrently under one deadline,
each with short botocore timeouts and one retry, so the whole run takes seconds. Nothing here
calls AWS at import time.

Configuration is the app's own: cdk.json's context with `-c key=value` over it, validated by
AppConfig.from_context exactly as synth does.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import os
import re
import shutil
import subprocess  # nosec B404  # only `docker info` and `docker buildx ls`, fixed argument lists
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cdk_app.config import (
    CHECKER_STACK_PREFIX,
    MONITORING_STACK_NAME,
    STACK_NAME,
    AppConfig,
    ConfigError,
    checker_stack_home,
    checker_stack_name,
)
from checker_lambda.aws_env import resolve_region, session_region

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_SECONDS = 20.0
DOCKER_TIMEOUT_SECONDS = 10.0
# Looking for checker stacks in every enabled region (17 by default, more opted in): one call per
# region, all at once, each at most REGION_CALL's timeouts; the regions still silent when the
# sweep's time is up are named as unread. Within DEADLINE_SECONDS with room to spare.
SWEEP_SECONDS = 12.0
REGION_CALL = Config(
    connect_timeout=2,
    read_timeout=3,
    retries={"total_max_attempts": 2, "mode": "standard"},
    user_agent_extra="preflight",
)

# What aws_eks_v2 and cdk_app/addons.py install as EKS add-ons (AWS::EKS::Addon):
# eks-pod-identity-agent comes with aws_eks_v2 for the Pod Identity service accounts.
# tests/test_preflight.py compares this list with the synthesized template.
ADDONS = ("vpc-cni", "metrics-server", "amazon-cloudwatch-observability", "eks-pod-identity-agent")

# EKS refuses cluster subnets in these zones, by zone ID ("Subnet requirements for clusters",
# https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html#cluster-subnets; source
# awsdocs/amazon-eks-user-guide latest/ug/networking/network-reqs.adoc).
EKS_UNSUPPORTED_ZONE_IDS = {"use1-az3": "us-east-1", "usw1-az2": "us-west-1", "cac1-az3": "ca-central-1"}


@dataclass(frozen=True)
class Quota:
    label: str
    service_code: str
    quota_code: str


# Service Quotas codes with their official names (`aws service-quotas list-service-quotas
# --service-code vpc|ec2` lists them). The two vpc ones are in moto's copy of the AWS table
# (moto/servicequotas/resources/default_quotas/vpc.py); L-0263D0A3 is the code public quota
# checkers (e.g. cortexlabs/cortex) and Terraform modules use for EC2-VPC Elastic IPs.
VPCS = Quota("VPCs per Region", "vpc", "L-F678F1CE")
ELASTIC_IPS = Quota("EC2-VPC Elastic IPs", "ec2", "L-0263D0A3")
NAT_GATEWAYS = Quota("NAT gateways per Availability Zone", "vpc", "L-FE5A380F")

# The IAM action behind each call, to say exactly which permission is missing.
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
CLIENTS = ("sts", "ssm", "ec2", "eks", "service-quotas", "cloudformation")


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


# --- what the installed libraries and the assembly say, read without importing aws_cdk ------


def kubernetes_version() -> str:
    """cdk_app.versions.KUBERNETES_VERSION, read from the source: importing the module starts
    the CDK's jsii runtime (Node.js), several seconds a preflight does not need."""
    tree = ast.parse((ROOT / "cdk_app" / "versions.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "KUBERNETES_VERSION" for t in node.targets
        ):
            return str(ast.literal_eval(node.value))
    raise LookupError("KUBERNETES_VERSION not found in cdk_app/versions.py")


def bootstrap_requirement(assembly: Path = ROOT / "cdk.out") -> tuple[int, str]:
    """The bootstrap stack version this app needs, and where that came from.

    First the installed aws-cdk-lib (the one `make deploy` synthesizes with): its
    DefaultStackSynthesizer's MIN_BOOTSTRAP_STACK_VERSION, which synth writes into the cloud
    assembly as `requiresBootstrapStackVersion`. If the library's bundle cannot be read (a
    reshuffled release), the last synth's cdk.out/manifest.json.
    """
    errors = []
    try:
        return _bootstrap_requirement_from_library()
    except (OSError, LookupError, tarfile.TarError) as exc:
        errors.append(f"aws-cdk-lib: {exc}")
    try:
        return _bootstrap_requirement_from_assembly(assembly)
    except (OSError, LookupError, ValueError) as exc:
        errors.append(f"{assembly.name}: {exc}")
    raise LookupError("; ".join(errors))


_MIN_VERSION = re.compile(r"\bMIN_BOOTSTRAP_STACK_VERSION\s*=\s*(\d+)")
_SYNTHESIZER_JS = "package/core/lib/stack-synthesizers/default-synthesizer.js"


@functools.cache  # a 0.8 s scan of the library's bundle; a process has one installed library
def _bootstrap_requirement_from_library() -> tuple[int, str]:
    spec = util.find_spec("aws_cdk")
    if spec is None or not spec.submodule_search_locations:
        raise LookupError("aws_cdk is not installed")
    version = metadata.version("aws-cdk-lib")
    bundle = Path(next(iter(spec.submodule_search_locations))) / "_jsii" / f"aws-cdk-lib@{version}.jsii.tgz"
    with tarfile.open(bundle) as tar:
        member = tar.extractfile(_SYNTHESIZER_JS)
        if member is None:
            raise LookupError(f"{_SYNTHESIZER_JS} not in {bundle.name}")
        found = _MIN_VERSION.search(member.read().decode())
    if not found:
        raise LookupError(f"MIN_BOOTSTRAP_STACK_VERSION not in {_SYNTHESIZER_JS}")
    return int(found.group(1)), f"aws-cdk-lib {version} DefaultStackSynthesizer"


def _bootstrap_requirement_from_assembly(assembly: Path) -> tuple[int, str]:
    manifest = json.loads((assembly / "manifest.json").read_text())
    versions = [
        int(artifact["properties"]["requiresBootstrapStackVersion"])
        for name, artifact in manifest.get("artifacts", {}).items()
        if name.startswith((STACK_NAME, MONITORING_STACK_NAME, CHECKER_STACK_PREFIX))
        and "requiresBootstrapStackVersion" in artifact.get("properties", {})
    ]
    if not versions:
        raise LookupError(f"no requiresBootstrapStackVersion for {STACK_NAME} or {MONITORING_STACK_NAME}")
    return max(versions), f"{assembly.name}/manifest.json requiresBootstrapStackVersion"


def cli_bootstrap_version(cli: Path = ROOT / "node_modules" / "aws-cdk") -> int | None:
    """The bootstrap version the pinned CDK CLI's `cdk bootstrap` installs (its template's
    CdkBootstrapVersion parameter), or None when the CLI is not installed or reads differently."""
    try:
        template = (cli / "lib" / "api" / "bootstrap" / "bootstrap-template.yaml").read_text()
    except OSError:
        return None
    found = re.search(r"\n  CdkBootstrapVersion:\n(?:    .*\n)*?      Value: '(\d+)'", template)
    return int(found.group(1)) if found else None


def read_config(overrides: Mapping[str, Any]) -> AppConfig:
    """cdk.json's context with -c overrides, validated as synth validates it."""
    context = {**json.loads((ROOT / "cdk.json").read_text())["context"], **overrides}
    return AppConfig.from_context(context.get, keys=context.keys())


# --- the checks ------------------------------------------------------------------------------


CREATION_FAILURES = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED")  # what `cdk deploy` deletes and creates again


class Preflight:
    """The checks, over clients the caller built (real ones, or stubbed in tests)."""

    def __init__(
        self,
        config: AppConfig,
        clients: Mapping[str, Any],
        *,
        region: str | None,
        region_source: str = "",
        session_error: BaseException | None = None,
        known_regions: frozenset[str] = frozenset(),
        docker: str = "docker",
        assembly: Path = ROOT / "cdk.out",
        bootstrap_qualifier: str = "hnb659fds",
        other_ssm: Mapping[str, Any] | None = None,
        regional: Callable[[str, str], Any] | None = None,
        sweep_seconds: float = SWEEP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.other_ssm = dict(other_ssm or {})
        # (service, region) -> a client for any region, with short timeouts (the checker stacks sweep)
        self.regional = regional
        self.sweep_seconds = sweep_seconds
        self.clock = clock  # the sweep's deadline is on it (a test moves it on its own terms)
        self.config = config
        self.clients = clients
        self.region = region
        self.region_source = region_source
        self.session_error = session_error
        self.known_regions = known_regions
        self.docker = docker
        self.assembly = assembly
        self.bootstrap_parameter = f"/cdk-bootstrap/{bootstrap_qualifier}/version"
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._memo: dict[str, tuple[Any, BaseException | None]] = {}

    CHECKS: tuple[tuple[str, str], ...] = (
        ("credentials", "check_credentials"),
        ("region", "check_region"),
        ("bootstrap", "check_bootstrap"),
        ("docker", "check_docker"),
        ("zones", "check_zones"),
        ("add-ons", "check_addons"),
        ("quota VPCs", "check_vpc_quota"),
        ("quota Elastic IPs", "check_eip_quota"),
        ("quota NAT gateways", "check_nat_quota"),
        ("stack", "check_stack"),
        ("checker stacks", "check_checker_stacks"),
    )

    # What only the cluster stack needs: a checker-only deploy (cluster=false) builds no image and
    # creates no VPC, NAT gateway or cluster.
    CLUSTER_ONLY = frozenset(
        {"docker", "zones", "add-ons", "quota VPCs", "quota Elastic IPs", "quota NAT gateways", "stack"}
    )

    def run(self, name: str) -> Result:
        method = dict(self.CHECKS)[name]
        if name in self.CLUSTER_ONLY and not self.config.deploy_cluster:
            return Result("skip", name, "cluster=false: a checker-only deploy does not need it")
        try:
            return Result("ok", name, getattr(self, method)())
        except Fail as exc:
            return Result("FAIL", name, str(exc))
        except Warn as exc:
            return Result("warn", name, str(exc))
        except Skip as exc:
            return Result("skip", name, str(exc))
        except (BotoCoreError, ClientError) as exc:
            return Result("FAIL", name, explain(exc))
        except Exception as exc:  # noqa: BLE001  # every check must print its line, even on a bug here
            return Result("FAIL", name, f"preflight itself failed ({type(exc).__name__}: {exc}); please report it")

    # Shared answers (identity, zones, stack), asked once whichever check needs them first; one
    # lock per answer, so different answers are fetched in parallel.
    def _once(self, key: str, compute: Callable[[], Any]) -> Any:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                try:
                    self._memo[key] = (compute(), None)
                except (BotoCoreError, ClientError, Fail) as exc:
                    self._memo[key] = (None, exc)
            value, error = self._memo[key]
        if error is not None:
            raise error
        return value

    def identity(self) -> dict[str, Any]:
        if self.session_error is not None:
            raise self.session_error
        return dict(self._once("identity", lambda: self.clients["sts"].get_caller_identity()))

    def aws(self, service: str) -> Any:
        """A regional client, once credentials and region are known good."""
        self.ready()
        return self.clients[service]

    def ready(self) -> str:
        """The region, once it and the credentials are known good; else Skip."""
        if self.region is None:
            raise Skip("needs a region (see the region line)")
        try:
            self.identity()
        except (BotoCoreError, ClientError) as exc:
            raise Skip("needs working credentials (see the credentials line)") from exc
        return self.region

    def check_credentials(self) -> str:
        try:
            who = self.identity()
        except (BotoCoreError, ClientError) as exc:
            raise Fail(explain(exc)) from exc
        return f"{who['Arn']} (account {who['Account']})"

    def check_region(self) -> str:
        if self.region is None:
            raise Fail(
                "none set: export AWS_REGION=<region> or `aws configure set region <region>` "
                "(without one the CDK CLI silently deploys to us-east-1)"
            )
        if self.known_regions and self.region not in self.known_regions:
            raise Warn(
                f"{self.region} (from {self.region_source}) is not a region this botocore knows: check the spelling"
            )
        return f"{self.region} (from {self.region_source})"

    def check_bootstrap(self) -> str:
        ssm = self.aws("ssm")
        try:
            required, source = bootstrap_requirement(self.assembly)
        except LookupError as exc:
            required, source = 0, f"required version unknown ({exc})"
        try:
            value = ssm.get_parameter(Name=self.bootstrap_parameter)["Parameter"]["Value"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                raise Fail(
                    f"not bootstrapped in {self.region} (no SSM parameter {self.bootstrap_parameter}); "
                    "run: make bootstrap"
                ) from exc
            raise
        version = int(value)
        if version < required:
            raise Fail(f"version {version} < {required} required by {source}; run: make bootstrap")
        behind = []
        for other, client in sorted(self.other_ssm.items()):
            try:
                found = int(client.get_parameter(Name=self.bootstrap_parameter)["Parameter"]["Value"])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ParameterNotFound":
                    raise
                behind.append(f"{other} (not bootstrapped)")
                continue
            if found < required:
                behind.append(f"{other} (version {found} < {required})")
        if behind:
            raise Fail(f'checkerRegions {", ".join(behind)}: run make bootstrap CONTEXT="-c checkerRegions=..."')
        if not required:
            raise Warn(f"version {version}; {source}")
        offered = cli_bootstrap_version()
        later = f"; `make bootstrap` would update it to {offered}" if offered and offered > version else ""
        return f"version {version} >= {required} required by {source}{later}"

    def check_docker(self) -> str:
        wanted = "linux/arm64" if self.config.node_arm64 else "linux/amd64"
        why = f"nodeInstanceType {self.config.node_instance_type} needs {wanted} images"
        if shutil.which(self.docker) is None:
            raise Fail(f"`{self.docker}` not found on PATH: install Docker ({why})")
        info = self._docker("info", "--format", "{{.ServerVersion}} {{.OSType}} {{.Architecture}}")
        if info.returncode != 0 or len(info.stdout.split()) != 3:
            reason = (info.stderr.strip().splitlines() or ["no answer"])[-1]
            raise Fail(f"the Docker engine is not reachable ({reason}): start Docker")
        server, os_type, arch = info.stdout.split()
        native = f"{os_type}/{_GO_ARCH.get(arch, arch)}"
        if native == wanted:
            return f"engine {server} builds {wanted} natively ({why})"
        buildx = self._docker("buildx", "ls")
        platforms = set(re.findall(r"linux/[a-z0-9]+(?:/v\d)?", buildx.stdout)) if buildx.returncode == 0 else set()
        if wanted in platforms:
            return f"engine {server} is {native}; buildx builds {wanted} by emulation (slower builds) ({why})"
        emulation = (
            "no buildx" if buildx.returncode != 0 else f"buildx lists only {', '.join(sorted(platforms)) or 'nothing'}"
        )
        raise Fail(
            f"engine {server} is {native} and {emulation}, but {why}: install QEMU emulation "
            f"(`docker run --privileged --rm tonistiigi/binfmt --install {wanted.split('/')[1]}`) "
            "or pick an instance type of this architecture"
        )

    def _docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(  # nosec B603
                [self.docker, *args], capture_output=True, text=True, timeout=DOCKER_TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            raise Fail(f"`docker {args[0]}` gave no answer in {DOCKER_TIMEOUT_SECONDS:g} s: restart Docker") from None

    def zones(self) -> list[tuple[str, str]]:
        """(name, zone ID) of the zones the stack will use, in the order the VPC takes them."""
        return list(self._once("zones", self._zones)[0])

    def _zones(self) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """The chosen zones, and every zone this account is offered in the region (name -> ID)."""
        ec2 = self.clients["ec2"]
        offered = [
            z
            for z in ec2.describe_availability_zones()["AvailabilityZones"]
            if z.get("ZoneType", "availability-zone") == "availability-zone"
        ]
        ids = {z["ZoneName"]: z["ZoneId"] for z in offered}
        if self.config.availability_zones:
            missing = [n for n in self.config.availability_zones if n not in ids]
            if missing:
                raise Fail(
                    f"availabilityZones {', '.join(missing)} not offered to this account in {self.region} "
                    f"(its zones: {', '.join(sorted(ids))})"
                )
            names = list(self.config.availability_zones)
        else:
            # Fn::GetAZs: the zones with a default subnet, or all when none has one; alphabetical
            # (CloudFormation "Fn::GetAZs"; it adds that the order is not guaranteed).
            subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
            with_default = {s["AvailabilityZone"] for s in subnets} & set(ids)
            names = sorted(with_default or ids)[:2]
        return [(n, ids[n]) for n in names], ids

    def check_zones(self) -> str:
        self.aws("ec2")
        chosen, offered = self._once("zones", self._zones)
        how = "availabilityZones" if self.config.availability_zones else "the region's first two (Fn::GetAZs)"
        bad = [(n, i) for n, i in chosen if i in EKS_UNSUPPORTED_ZONE_IDS]
        if bad:
            names = ", ".join(f"{n} is {i}" for n, i in bad)
            good = [n for n in sorted(offered) if offered[n] not in EKS_UNSUPPORTED_ZONE_IDS][:2]
            raise Fail(
                f"{names}, where EKS creates no clusters; choose zones it supports, e.g. "
                f"-c 'availabilityZones={json.dumps(good, separators=(',', ':'))}'"
            )
        if len(chosen) < 2:
            raise Fail(f"{how} gives {len(chosen)} zone(s) in {self.region}; EKS needs two")
        listed = ", ".join(f"{n} ({i})" for n, i in chosen)
        return f"{listed}, from {how}: EKS supports them"

    def check_addons(self) -> str:
        eks = self.aws("eks")
        version = kubernetes_version()
        found, missing = [], []
        for name in ADDONS:
            addons = eks.describe_addon_versions(addonName=name, kubernetesVersion=version)["addons"]
            versions = [v for a in addons for v in a.get("addonVersions", [])]
            if not versions:
                missing.append(name)
                continue
            default = next(
                (
                    v["addonVersion"]
                    for v in versions
                    for c in v.get("compatibilities", [])
                    if c.get("clusterVersion") == version and c.get("defaultVersion")
                ),
                versions[0]["addonVersion"],
            )
            found.append(f"{name} {default}")
        if missing:
            raise Fail(
                f"no version of {', '.join(missing)} for Kubernetes {version} in {self.region}: "
                "deploy in another region, or wait until EKS publishes one"
            )
        return f"Kubernetes {version} in {self.region}: {', '.join(found)}"

    def stack(self) -> str | None:
        """The stack's status, or None when there is none."""

        def compute() -> str | None:
            try:
                stacks = self.clients["cloudformation"].describe_stacks(StackName=STACK_NAME)["Stacks"]
            except ClientError as exc:
                if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
                    return None
                raise
            return str(stacks[0]["StackStatus"])

        return self._once("stack", compute)  # type: ignore[no-any-return]

    def check_stack(self) -> str:
        self.aws("cloudformation")
        status = self.stack()
        if status is None:
            try:
                self.clients["eks"].describe_cluster(name=self.config.cluster_name)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return (
                        f"no stack {STACK_NAME} and no cluster {self.config.cluster_name} in {self.region}: "
                        "deploy creates both"
                    )
                raise
            raise Fail(
                f"cluster {self.config.cluster_name} exists in {self.region} outside stack {STACK_NAME}: "
                "delete it, or choose another name with -c namePrefix=..."
            )
        if status in CREATION_FAILURES:
            # The CDK CLI deletes such a stack and creates it again (aws-cdk's isCreationFailure).
            raise Warn(f"{STACK_NAME} is {status} (a failed first deploy): deploy deletes and re-creates it")
        if status == "REVIEW_IN_PROGRESS":
            return f"{STACK_NAME} is REVIEW_IN_PROGRESS (a change set never run, no resources): deploy creates it"
        if status == "CREATE_FAILED":
            raise Fail(f"{STACK_NAME} is CREATE_FAILED: wait for its rollback, or run make destroy")
        if status == "DELETE_FAILED":
            raise Fail(f"{STACK_NAME} is DELETE_FAILED: see its events, then run make destroy again")
        if status == "UPDATE_ROLLBACK_FAILED":
            raise Fail(
                f"{STACK_NAME} is UPDATE_ROLLBACK_FAILED: "
                f"aws cloudformation continue-update-rollback --stack-name {STACK_NAME}"
            )
        if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
            raise Fail(f"{STACK_NAME} is {status}: wait until it finishes")
        return f"{STACK_NAME} exists ({status}): deploy updates it"

    def check_checker_stacks(self) -> str:
        """HelloWorldChecker-<region> stacks this configuration no longer has: the CDK never deletes
        a stack that left the app, so a region dropped from checkerRegions keeps probing,
        publishing under its Location and costing, until deleted by hand."""
        home = self.ready()
        if self.regional is None:
            raise Skip("needs a client for every region")
        end = self.clock() + self.sweep_seconds
        try:
            enabled = self.regional("ec2", home).describe_regions()["Regions"]  # the enabled ones only
        except (BotoCoreError, ClientError) as exc:  # nothing this deploy needs: worth knowing only
            raise Warn(f"could not list the enabled regions to look for them ({explain(exc)})") from exc
        regions = sorted(r["RegionName"] for r in enabled)
        clients = {r: self.regional("cloudformation", r) for r in regions}  # here: a session is not thread-safe
        # Every stack of this app is pinned to its region, so a checker stack is looked up by its
        # exact name in its own region: one call per region, no listing of the account's stacks.
        found: dict[str, str | None] = {}  # region -> the stack's status, or None: no such stack
        publishes_to: dict[str, str | None] = {}  # region -> the home region the stack says it publishes to
        refused: dict[str, BaseException] = {}

        def look(region: str) -> None:
            try:
                stacks = clients[region].describe_stacks(StackName=checker_stack_name(region))["Stacks"]
                publishes_to[region] = checker_stack_home(str(stacks[0].get("Description", "")))
                found[region] = str(stacks[0]["StackStatus"])
            except ClientError as exc:
                if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
                    found[region] = None
                else:
                    refused[region] = exc
            except BotoCoreError as exc:
                refused[region] = exc

        threads = [threading.Thread(target=look, args=(r,), name=f"preflight-{r}", daemon=True) for r in regions]
        for thread in threads:
            thread.start()
        for thread in threads:
            # A loop: on a test's clock the time may not have moved when the join gives up.
            while thread.is_alive() and (remaining := end - self.clock()) > 0:
                thread.join(remaining)
        found, refused = dict(found), dict(refused)  # what was known at the end of the sweep
        unread: dict[str, list[str]] = {}
        for region in regions:
            if region not in found:
                why = explain(refused[region]) if region in refused else f"no answer within {self.sweep_seconds:g} s"
                unread.setdefault(why, []).append(region)
        not_read = "; ".join(f"not read in {', '.join(where)}: {why}" for why, where in unread.items())
        wanted = set(self.config.locations[1:])
        left = [
            (r, checker_stack_name(r), status)
            for r, status in sorted(found.items())
            if status is not None and r not in wanted
        ]
        going = [name for _, name, status in left if status == "DELETE_IN_PROGRESS"]
        left = [stack for stack in left if stack[1] not in going]
        # A stack that says it publishes to another home region is a previous home's, or another
        # deployment's in this account (stack names are fixed): named apart, deleted only if yours.
        ours = [stack for stack in left if publishes_to.get(stack[0]) in (home, None)]
        others = [stack for stack in left if stack not in ours]
        parts = []
        if ours:
            parts.append(
                f"{', '.join(f'{name} ({status})' for _, name, status in ours)} not in {self._checker_regions()}: "
                "still probing and billed; after make deploy with this list (it removes the alarms on that "
                "location: deleting first wakes its heartbeat alarm), delete: "
                + delete_command([r for r, _, _ in ours])
            )
        for region, name, status in others:
            parts.append(
                f"{name} ({status}) publishes to {publishes_to.get(region)}, not {home}: a previous home's or "
                f"another deployment's; only if it is yours, delete: {delete_command([region])}"
            )
        if parts:
            raise Warn("; ".join(parts) + (f"; {not_read}" if not_read else ""))
        if unread:
            read = len(regions) - sum(len(where) for where in unread.values())
            raise Warn(f"none outside {self._checker_regions()} in {read} of {len(regions)} regions; {not_read}")
        tail = f" ({', '.join(going)} being deleted)" if going else ""
        return f"none outside {self._checker_regions()} in the {len(regions)} enabled regions{tail}"

    def _checker_regions(self) -> str:
        regions = self.config.checker_regions
        return f"checkerRegions={json.dumps(list(regions), separators=(',', ':'))}" if regions else "one region"

    def quota(self, quota: Quota) -> float:
        sq = self.clients["service-quotas"]
        try:
            return float(
                sq.get_service_quota(ServiceCode=quota.service_code, QuotaCode=quota.quota_code)["Quota"]["Value"]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchResourceException":
                raise
        # No value applied to this account: the AWS default holds.
        return float(
            sq.get_aws_default_service_quota(ServiceCode=quota.service_code, QuotaCode=quota.quota_code)["Quota"][
                "Value"
            ]
        )

    def adds(self, count: int) -> tuple[int, str]:
        """What the deploy adds: nothing when the stack exists (its own are counted in use)."""
        try:
            status = self.stack()
        except (BotoCoreError, ClientError):
            status = None
        # A stack with nothing in it yet (a change set never run) or one the CLI re-creates adds all.
        exists = status is not None and status != "REVIEW_IN_PROGRESS" and status not in CREATION_FAILURES
        return (0, "an update adds none") if exists else (count, f"the stack adds {count}")

    def _compare(self, quota: Quota, used: int, count: int, where: str = "") -> str:
        try:
            limit = self.quota(quota)
        except (BotoCoreError, ClientError) as exc:
            raise Warn(f"{used} in use{where}; could not read the quota ({explain(exc)})") from exc
        added, how = self.adds(count)
        text = f"{used} of {limit:g} in use{where}, {how} ({quota.service_code} {quota.quota_code})"
        if used + added > limit:
            raise Fail(f"{text}: free some, or request an increase of '{quota.label}' in Service Quotas")
        return text

    def check_vpc_quota(self) -> str:
        ec2 = self.aws("ec2")
        used = sum(len(p["Vpcs"]) for p in ec2.get_paginator("describe_vpcs").paginate())
        return self._compare(VPCS, used, 1)

    def check_eip_quota(self) -> str:
        ec2 = self.aws("ec2")
        used = len(ec2.describe_addresses(Filters=[{"Name": "domain", "Values": ["vpc"]}])["Addresses"])
        return self._compare(ELASTIC_IPS, used, self.config.nat_gateways)

    def check_nat_quota(self) -> str:
        ec2 = self.aws("ec2")
        # The quota counts pending, available and deleting NAT gateways.
        nat_subnets = [
            n["SubnetId"]
            for p in ec2.get_paginator("describe_nat_gateways").paginate(
                Filter=[{"Name": "state", "Values": ["pending", "available", "deleting"]}]
            )
            for n in p["NatGateways"]
        ]
        zone_of = (
            {s["SubnetId"]: s["AvailabilityZone"] for s in ec2.describe_subnets(SubnetIds=nat_subnets)["Subnets"]}
            if nat_subnets
            else {}
        )
        # The VPC puts its NAT gateways in its first natGateways zones.
        try:
            with_nat = [name for name, _ in self.zones()[: self.config.nat_gateways]]
        except Fail as exc:
            raise Skip("needs the zones (see the zones line)") from exc
        if not with_nat:
            raise Skip("needs the zones (see the zones line)")
        busiest = max(with_nat, key=lambda z: sum(zone_of.get(s) == z for s in nat_subnets))
        used = sum(zone_of.get(s) == busiest for s in nat_subnets)
        return self._compare(NAT_GATEWAYS, used, 1, f" in {busiest}")


_GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def delete_command(regions: list[str]) -> str:
    """The command that deletes the checker stacks of these regions. Not `cdk destroy`: that needs
    the stack in the app, so the old checkerRegions list, which is not known here."""
    if len(regions) == 1:
        return f"aws cloudformation delete-stack --region {regions[0]} --stack-name {checker_stack_name(regions[0])}"
    return (
        f"for r in {' '.join(regions)}; do aws cloudformation delete-stack --region $r "
        f"--stack-name {CHECKER_STACK_PREFIX}-$r; done"
    )


def run_all(preflight: Preflight, deadline: float = DEADLINE_SECONDS, out: Any = None) -> list[Result]:
    """Every check at once; each line printed in order as soon as it is known. A check still
    running at the deadline is a FAIL (its thread is a daemon: it cannot hold the exit)."""
    out = out or sys.stdout
    results: dict[str, Result] = {}
    threads = []
    for name, _ in preflight.CHECKS:

        def work(name: str = name) -> None:
            results[name] = preflight.run(name)

        thread = threading.Thread(target=work, name=f"preflight-{name}", daemon=True)
        thread.start()
        threads.append((name, thread))
    end = time.monotonic() + deadline
    ordered = []
    for name, thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
        result = results.get(name) or Result("FAIL", name, f"no answer within {deadline:g} s: check the network")
        print(result.line(), file=out, flush=True)
        ordered.append(result)
    return ordered


def build(context: Mapping[str, Any], env: Mapping[str, str]) -> Preflight:
    """The real thing: a boto3 session as the CDK CLI would resolve it, short timeouts."""
    import boto3

    config = read_config(context)
    qualifier = str(
        {**json.loads((ROOT / "cdk.json").read_text())["context"], **context}.get(
            "@aws-cdk/core:bootstrapQualifier", "hnb659fds"
        )
    )
    botocore_config = Config(
        connect_timeout=3, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"}, user_agent_extra="preflight"
    )
    try:
        session = boto3.Session()
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        region, source = resolve_region(env, None, None)
        return Preflight(
            config, {}, region=region, region_source=source, session_error=exc, bootstrap_qualifier=qualifier
        )
    region, source = session_region(session, env)
    if config.home_region:  # every stack is pinned: the shell's region does not matter
        region, source = config.home_region, "checkerRegions[0], where the stacks are pinned"
    clients = {
        # STS answers without a region (global endpoint), so credentials are checked either way.
        name: session.client(name, region_name=region, config=botocore_config)  # type: ignore[call-overload]
        for name in (CLIENTS if region else ("sts",))
    }
    return Preflight(
        config,
        clients,
        region=region,
        region_source=source,
        known_regions=frozenset(session.get_available_regions("eks")),
        bootstrap_qualifier=qualifier,
        regional=lambda service, region: session.client(  # type: ignore[call-overload]
            service, region_name=region, config=REGION_CALL
        ),
        # The other checkerRegions get a checker stack each: each must be bootstrapped too.
        other_ssm={
            other: session.client("ssm", region_name=other, config=botocore_config)
            for other in config.checker_regions[1:]
        },
    )


def parse_context(pairs: list[str]) -> dict[str, str]:
    context = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"-c takes key=value, got {pair!r}")
        context[key] = value
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.preflight", description="Check an AWS account, region and machine before `make deploy`."
    )
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="as cdk -c")
    parser.add_argument("--deadline", type=float, default=DEADLINE_SECONDS, help="seconds for all checks together")
    args = parser.parse_args(argv)
    try:
        preflight = build(parse_context(args.context), os.environ)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = run_all(preflight, args.deadline)
    return 1 if any(r.status == "FAIL" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
