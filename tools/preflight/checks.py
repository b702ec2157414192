"""The checks, in the order their lines print: each a function of the Preflight it asks."""

from __future__ import annotations

import json
import re
import shutil
import subprocess  # nosec B404  # only `docker info` and `docker buildx ls`, fixed argument lists

from botocore.exceptions import BotoCoreError, ClientError

from cdk_app.config import STACK_NAME
from tools.preflight.account import CREATION_FAILURES, ELASTIC_IPS, NAT_GATEWAYS, VPCS, Preflight
from tools.preflight.checker_stacks import checker_stacks
from tools.preflight.results import Check, Fail, Skip, Warn, explain
from tools.preflight.sources import bootstrap_requirement, cli_bootstrap_version, kubernetes_version
from tools.preflight.upgrade import upgrade

DOCKER_TIMEOUT_SECONDS = 10.0
# What aws_eks_v2 and cdk_app/addons.py install as EKS add-ons (AWS::EKS::Addon):
# eks-pod-identity-agent comes with aws_eks_v2 for the Pod Identity service accounts.
# tests/test_preflight.py compares this list with the synthesized template.
ADDONS = ("vpc-cni", "metrics-server", "amazon-cloudwatch-observability", "eks-pod-identity-agent")

# EKS refuses cluster subnets in these zones, by zone ID ("Subnet requirements for clusters",
# https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html#cluster-subnets; source
# awsdocs/amazon-eks-user-guide latest/ug/networking/network-reqs.adoc).
EKS_UNSUPPORTED_ZONE_IDS = {"use1-az3": "us-east-1", "usw1-az2": "us-west-1", "cac1-az3": "ca-central-1"}

# Docker's architecture names -> Go's, which platform strings use.
_GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def credentials(p: Preflight) -> str:
    try:
        who = p.identity()
    except (BotoCoreError, ClientError) as exc:
        raise Fail(explain(exc)) from exc
    return f"{who['Arn']} (account {who['Account']})"


def region(p: Preflight) -> str:
    if p.region is None:
        raise Fail(
            "none set: export AWS_REGION=<region> or `aws configure set region <region>` "
            "(without one the CDK CLI silently deploys to us-east-1)"
        )
    if p.known_regions and p.region not in p.known_regions:
        raise Warn(f"{p.region} (from {p.region_source}) is not a region this botocore knows: check the spelling")
    return f"{p.region} (from {p.region_source})"


def bootstrap(p: Preflight) -> str:
    ssm = p.aws("ssm")
    try:
        required, source = bootstrap_requirement(p.assembly)
    except LookupError as exc:
        required, source = 0, f"required version unknown ({exc})"
    try:
        value = ssm.get_parameter(Name=p.bootstrap_parameter)["Parameter"]["Value"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            raise Fail(
                f"not bootstrapped in {p.region} (no SSM parameter {p.bootstrap_parameter}); run: make bootstrap"
            ) from exc
        raise
    version = int(value)
    if version < required:
        raise Fail(f"version {version} < {required} required by {source}; run: make bootstrap")
    behind = []
    for other, client in sorted(p.other_ssm.items()):
        try:
            found = int(client.get_parameter(Name=p.bootstrap_parameter)["Parameter"]["Value"])
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


def docker(p: Preflight) -> str:
    wanted = "linux/arm64" if p.config.node_arm64 else "linux/amd64"
    why = f"nodeInstanceType {p.config.node_instance_type} needs {wanted} images"
    if shutil.which(p.docker) is None:
        raise Fail(f"`{p.docker}` not found on PATH: install Docker ({why})")
    info = _docker(p, "info", "--format", "{{.ServerVersion}} {{.OSType}} {{.Architecture}}")
    if info.returncode != 0 or len(info.stdout.split()) != 3:
        reason = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        raise Fail(f"the Docker engine is not reachable ({reason}): start Docker")
    server, os_type, arch = info.stdout.split()
    native = f"{os_type}/{_GO_ARCH.get(arch, arch)}"
    if native == wanted:
        return f"engine {server} builds {wanted} natively ({why})"
    buildx = _docker(p, "buildx", "ls")
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


def _docker(p: Preflight, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # nosec B603
            [p.docker, *args], capture_output=True, text=True, timeout=DOCKER_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise Fail(f"`docker {args[0]}` gave no answer in {DOCKER_TIMEOUT_SECONDS:g} s: restart Docker") from None


def zones(p: Preflight) -> str:
    p.aws("ec2")
    chosen, offered = p.zone_choice()
    how = "availabilityZones" if p.config.availability_zones else "the region's first two (Fn::GetAZs)"
    bad = [(n, i) for n, i in chosen if i in EKS_UNSUPPORTED_ZONE_IDS]
    if bad:
        names = ", ".join(f"{n} is {i}" for n, i in bad)
        good = [n for n in sorted(offered) if offered[n] not in EKS_UNSUPPORTED_ZONE_IDS][:2]
        raise Fail(
            f"{names}, where EKS creates no clusters; choose zones it supports, e.g. "
            f"-c 'availabilityZones={json.dumps(good, separators=(',', ':'))}'"
        )
    if len(chosen) < 2:
        raise Fail(f"{how} gives {len(chosen)} zone(s) in {p.region}; EKS needs two")
    listed = ", ".join(f"{n} ({i})" for n, i in chosen)
    return f"{listed}, from {how}: EKS supports them"


def addons(p: Preflight) -> str:
    eks = p.aws("eks")
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
            f"no version of {', '.join(missing)} for Kubernetes {version} in {p.region}: "
            "deploy in another region, or wait until EKS publishes one"
        )
    return f"Kubernetes {version} in {p.region}: {', '.join(found)}"


def stack(p: Preflight) -> str:
    p.aws("cloudformation")
    status = p.stack()
    if status is None:
        try:
            p.clients["eks"].describe_cluster(name=p.config.cluster_name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return (
                    f"no stack {STACK_NAME} and no cluster {p.config.cluster_name} in {p.region}: deploy creates both"
                )
            raise
        raise Fail(
            f"cluster {p.config.cluster_name} exists in {p.region} outside stack {STACK_NAME}: "
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


def vpc_quota(p: Preflight) -> str:
    ec2 = p.aws("ec2")
    used = sum(len(p["Vpcs"]) for p in ec2.get_paginator("describe_vpcs").paginate())
    return p.compare(VPCS, used, 1)


def eip_quota(p: Preflight) -> str:
    ec2 = p.aws("ec2")
    used = len(ec2.describe_addresses(Filters=[{"Name": "domain", "Values": ["vpc"]}])["Addresses"])
    return p.compare(ELASTIC_IPS, used, p.config.nat_gateways)


def nat_quota(p: Preflight) -> str:
    ec2 = p.aws("ec2")
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
        with_nat = [name for name, _ in p.zones()[: p.config.nat_gateways]]
    except Fail as exc:
        raise Skip("needs the zones (see the zones line)") from exc
    if not with_nat:
        raise Skip("needs the zones (see the zones line)")
    busiest = max(with_nat, key=lambda z: sum(zone_of.get(s) == z for s in nat_subnets))
    used = sum(zone_of.get(s) == busiest for s in nat_subnets)
    return p.compare(NAT_GATEWAYS, used, 1, f" in {busiest}")


def alert_channels(p: Preflight) -> str:
    """Each alertChannels secret exists, is readable and holds what its type needs (notifier/report.py)."""
    from notifier import report

    if not p.config.alert_channels:
        raise Skip("none configured")
    ok, line = report.check_secrets(p.config.alert_channels, p.aws)
    if not ok:
        raise Fail(line)
    return line


CHECKS = (
    Check("credentials", credentials),
    Check("region", region),
    Check("bootstrap", bootstrap),
    Check("docker", docker, cluster_only=True),
    Check("zones", zones, cluster_only=True),
    Check("add-ons", addons, cluster_only=True),
    Check("quota VPCs", vpc_quota, cluster_only=True),
    Check("quota Elastic IPs", eip_quota, cluster_only=True),
    Check("quota NAT gateways", nat_quota, cluster_only=True),
    Check("stack", stack, cluster_only=True),
    Check("versions", upgrade, cluster_only=True),
    Check("checker stacks", checker_stacks),
    Check("alert channels", alert_channels),
)
