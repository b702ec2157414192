"""`make preflight`: each check's ok line and each failure's one line, offline.

botocore Stubber fakes each AWS answer (and checks the request); a moto server answers where
what is stored matters (zones and their IDs, VPC counts, the bootstrap parameter); a fake
`docker` on PATH plays the engine; the module runs as a subprocess with no credentials at all.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber

from cdk_app.config import STACK_NAME
from checker_lambda.aws_env import resolve_region
from tests.conftest import ROOT, free_port
from tools.preflight import checks, cli, results, sources
from tools.preflight.account import Preflight
from tools.preflight.results import Check, Result

CHECK = {c.name: c for c in checks.CHECKS}

IDENTITY = {"UserId": "AIDA", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/me"}
K8S = sources.kubernetes_version()
FAKE_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # nothing reaches AWS


class Stubs:
    """One real client per service, each behind a Stubber that fails on unexpected calls."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.clients = {
            name: boto3.client(name, region_name=region, **FAKE_KEYS)  # type: ignore[call-overload]
            for name in cli.CLIENTS
        }
        self.stubbers = {name: Stubber(client) for name, client in self.clients.items()}
        for stubber in self.stubbers.values():
            stubber.activate()

    def __getitem__(self, service: str) -> Stubber:
        return self.stubbers[service]

    def identity(self) -> Stubs:
        self["sts"].add_response("get_caller_identity", IDENTITY, {})
        return self

    def done(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    s = Stubs()
    yield s
    s.done()


def make(clients: Any, region: str | None = "us-east-1", **context: Any) -> Preflight:
    return Preflight(
        sources.read_config(context),
        clients.clients if isinstance(clients, Stubs) else clients,
        region=region,
        region_source="AWS_REGION",
    )


def client_error(code: str, message: str = "", status: int = 400) -> dict[str, Any]:
    return {"service_error_code": code, "service_message": message or code, "http_status_code": status}


# --- credentials and region ----------------------------------------------------------------


def test_credentials_ok_names_the_identity_and_the_account(stubs: Stubs) -> None:
    stubs.identity()
    assert make(stubs).run(CHECK["credentials"]) == Result(
        "ok", "credentials", "arn:aws:iam::123456789012:user/me (account 123456789012)"
    )


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ExpiredToken", "credentials have expired (ExpiredToken): refresh them"),
        ("InvalidClientTokenId", "credentials were rejected (InvalidClientTokenId)"),
        ("AccessDenied", "access denied to sts:GetCallerIdentity"),
    ],
)
def test_rejected_credentials_fail_with_what_to_fix_and_the_aws_checks_are_skipped(
    stubs: Stubs, code: str, expected: str
) -> None:
    stubs["sts"].add_client_error("get_caller_identity", **client_error(code, status=403))
    check = make(stubs)
    result = check.run(CHECK["credentials"])
    assert (result.status, expected in result.detail) == ("FAIL", True), result
    # The others ask STS once (cached), then stand aside rather than repeat the failure.
    for name in ("bootstrap", "zones", "add-ons", "quota VPCs", "stack"):
        assert check.run(CHECK[name]) == Result("skip", name, "needs working credentials (see the credentials line)")


def test_unreachable_endpoint_is_one_fail_line_not_a_traceback() -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sts = boto3.client(
        "sts",
        region_name="us-east-1",
        endpoint_url=closed,
        **FAKE_KEYS,
        config=botocore.config.Config(connect_timeout=1, retries={"max_attempts": 1}),
    )
    result = make({"sts": sts}).run(CHECK["credentials"])
    assert result.status == "FAIL"
    assert result.detail.startswith("no answer from AWS") and "check the network" in result.detail


def test_no_credentials_and_sso_expiry_say_which_command_to_run() -> None:
    assert "aws configure" in results.explain(botocore.exceptions.NoCredentialsError())
    assert "aws sso login" in results.explain(botocore.exceptions.TokenRetrievalError(provider="sso", error_msg="x"))


def test_region_follows_the_cdk_cli_order_and_says_where_it_came_from() -> None:
    both = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"}
    assert resolve_region(both, "ap-south-1", "dev") == ("eu-west-1", "AWS_REGION")
    assert resolve_region({"AWS_DEFAULT_REGION": "us-west-2"}, "ap-south-1", None) == (
        "us-west-2",
        "AWS_DEFAULT_REGION",
    )
    assert resolve_region({}, "ap-south-1", "dev") == ("ap-south-1", "profile 'dev'")
    assert resolve_region({}, None, None) == (None, "")


def test_no_region_fails_and_an_unknown_one_warns(stubs: Stubs) -> None:
    none = make(stubs, region=None).run(CHECK["region"])
    assert none.status == "FAIL" and "export AWS_REGION=" in none.detail and "us-east-1" in none.detail
    typo = Preflight(
        sources.read_config({}),
        stubs.clients,
        region="us-est-1",
        region_source="AWS_REGION",
        known_regions=frozenset({"us-east-1"}),
    ).run(CHECK["region"])
    assert typo.status == "warn" and "check the spelling" in typo.detail
    assert make(stubs).run(CHECK["region"]) == Result("ok", "region", "us-east-1 (from AWS_REGION)")


# --- bootstrap -------------------------------------------------------------------------------

PARAMETER = {"Name": "/cdk-bootstrap/hnb659fds/version"}


def parameter(value: str) -> dict[str, Any]:
    return {"Parameter": {"Name": PARAMETER["Name"], "Type": "String", "Value": value, "Version": 1}}


def test_bootstrap_recent_enough_names_the_requirement_and_its_source(stubs: Stubs) -> None:
    required, _ = sources.bootstrap_requirement()
    stubs.identity()["ssm"].add_response("get_parameter", parameter(str(required + 20)), PARAMETER)
    result = make(stubs).run(CHECK["bootstrap"])
    assert result.status == "ok", result
    assert f"version {required + 20} >= {required} required by aws-cdk-lib " in result.detail


def test_bootstrap_too_old_or_missing_says_make_bootstrap(stubs: Stubs) -> None:
    required, source = sources.bootstrap_requirement()
    stubs.identity()["ssm"].add_response("get_parameter", parameter(str(required - 1)), PARAMETER)
    stubs["ssm"].add_client_error("get_parameter", **client_error("ParameterNotFound"), expected_params=PARAMETER)
    stubs["ssm"].add_client_error("get_parameter", **client_error("AccessDeniedException"), expected_params=PARAMETER)
    check = make(stubs)
    assert check.run(CHECK["bootstrap"]) == Result(
        "FAIL", "bootstrap", f"version {required - 1} < {required} required by {source}; run: make bootstrap"
    )
    missing = check.run(CHECK["bootstrap"])
    assert missing.status == "FAIL" and "not bootstrapped in us-east-1" in missing.detail
    assert missing.detail.endswith("run: make bootstrap")
    denied = check.run(CHECK["bootstrap"])
    assert denied == Result(
        "FAIL", "bootstrap", "access denied to ssm:GetParameter: grant it to your identity (AccessDeniedException)"
    )


def test_every_checker_region_must_be_bootstrapped_too(stubs: Stubs) -> None:
    """With checkerRegions, a checker stack goes to each: the home region is not enough."""
    import boto3
    from botocore.stub import Stubber

    required, _ = sources.bootstrap_requirement()
    stubs.identity()["ssm"].add_response("get_parameter", parameter(str(required)), PARAMETER)
    others = {
        r: boto3.client("ssm", region_name=r, aws_access_key_id="x", aws_secret_access_key="x")  # noqa: S106  # nosec B106  # Stubber only
        for r in ("eu-west-1", "ap-southeast-2")
    }
    with Stubber(others["eu-west-1"]) as eu, Stubber(others["ap-southeast-2"]) as ap:
        eu.add_client_error("get_parameter", **client_error("ParameterNotFound"), expected_params=PARAMETER)
        ap.add_response("get_parameter", parameter(str(required)), PARAMETER)
        check = Preflight(
            sources.read_config({"checkerRegions": '["us-east-1", "eu-west-1", "ap-southeast-2"]'}),
            stubs.clients,
            region="us-east-1",
            region_source="checkerRegions[0]",
            other_ssm=others,
        )
        result = check.run(CHECK["bootstrap"])
    assert result.status == "FAIL" and result.detail.startswith("checkerRegions eu-west-1 (not bootstrapped)"), result
    assert "ap-southeast-2" not in result.detail


def test_bootstrap_requirement_from_the_library_is_what_synth_writes(tmp_path: Path) -> None:
    from tests.infra import assembly, synth

    path = assembly(alertEmail="oncall@example.com")
    manifest = json.loads((path / "manifest.json").read_text())
    written = manifest["artifacts"][STACK_NAME]["properties"]["requiresBootstrapStackVersion"]
    assert sources.bootstrap_requirement()[0] == written
    assert sources._bootstrap_requirement_from_assembly(path) == (
        written,
        f"{path.name}/manifest.json requiresBootstrapStackVersion",
    )
    # And the add-ons preflight asks EKS about are exactly the ones the stack installs.
    template = synth(alertEmail="oncall@example.com")
    installed = {r["Properties"]["AddonName"] for r in template.find_resources("AWS::EKS::Addon").values()}
    assert set(checks.ADDONS) == installed


def test_bootstrap_requirement_falls_back_to_the_assembly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable() -> tuple[int, str]:
        raise LookupError("MIN_BOOTSTRAP_STACK_VERSION not in default-synthesizer.js")

    monkeypatch.setattr(sources, "_bootstrap_requirement_from_library", unreadable)
    properties = {"requiresBootstrapStackVersion": 21}
    (tmp_path / "manifest.json").write_text(
        json.dumps({"artifacts": {STACK_NAME: {"properties": properties}, "Tree": {"properties": {}}}})
    )
    assert sources.bootstrap_requirement(tmp_path) == (
        21,
        f"{tmp_path.name}/manifest.json requiresBootstrapStackVersion",
    )
    with pytest.raises(LookupError, match="MIN_BOOTSTRAP_STACK_VERSION"):
        sources.bootstrap_requirement(tmp_path / "absent")


def test_kubernetes_version_is_read_from_versions_py_without_importing_it() -> None:
    from cdk_app import versions

    assert sources.kubernetes_version() == versions.KUBERNETES_VERSION


# --- docker ----------------------------------------------------------------------------------


def fake_docker(tmp_path: Path, info: str, info_rc: int = 0, buildx: str | None = None, sleep: float = 0) -> str:
    """An executable that answers `docker info --format ...` and `docker buildx ls` as told."""
    path = tmp_path / "docker"
    buildx_part = (
        f"printf '%s\\n' {json.dumps(buildx)}; exit 0"
        if buildx is not None
        else "echo 'docker: unknown command: docker buildx' >&2; exit 1"
    )
    path.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/sh
            sleep {sleep}
            if [ "$1" = info ]; then
              if [ {info_rc} -ne 0 ]; then echo {json.dumps(info)} >&2; exit {info_rc}; fi
              echo {json.dumps(info)}; exit 0
            fi
            if [ "$1" = buildx ]; then {buildx_part}; fi
            exit 3
            """
        )
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def docker_check(docker: str, **context: Any) -> Result:
    check = Preflight(sources.read_config(context), {}, region=None, docker=docker)
    return check.run(CHECK["docker"])


BUILDX_ARM = """NAME/NODE     DRIVER/ENDPOINT   STATUS    BUILDKIT   PLATFORMS
default*      docker
 \\_ default   \\_ default    running   v0.23.2    linux/amd64 (+3), linux/arm64, linux/386"""


def test_docker_engine_of_the_node_architecture_is_ok(tmp_path: Path) -> None:
    result = docker_check(fake_docker(tmp_path, "28.2.2 linux x86_64"))
    assert result == Result(
        "ok",
        "docker",
        "engine 28.2.2 builds linux/amd64 natively (nodeInstanceType t3.medium needs linux/amd64 images)",
    )


def test_graviton_nodes_on_an_x86_engine_need_buildx_with_arm64(tmp_path: Path) -> None:
    with_arm = docker_check(
        fake_docker(tmp_path, "28.2.2 linux x86_64", buildx=BUILDX_ARM), nodeInstanceType="t4g.medium"
    )
    assert with_arm.status == "ok" and "buildx builds linux/arm64 by emulation" in with_arm.detail
    amd_only = BUILDX_ARM.replace(", linux/arm64", "")
    without = docker_check(fake_docker(tmp_path, "28.2.2 linux x86_64", buildx=amd_only), nodeInstanceType="t4g.medium")
    assert without.status == "FAIL"
    assert "buildx lists only linux/386, linux/amd64" in without.detail
    assert "tonistiigi/binfmt --install arm64" in without.detail
    no_buildx = docker_check(fake_docker(tmp_path, "28.2.2 linux x86_64"), nodeInstanceType="t4g.medium")
    assert no_buildx.status == "FAIL" and "linux/amd64 and no buildx" in no_buildx.detail


def test_docker_missing_stopped_or_hung_is_one_fail_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = docker_check(str(tmp_path / "no-such-docker"))
    assert missing.status == "FAIL" and "not found on PATH: install Docker" in missing.detail
    stopped = docker_check(
        fake_docker(tmp_path, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock", 1)
    )
    assert stopped.status == "FAIL"
    assert stopped.detail == (
        "the Docker engine is not reachable (Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock): start Docker"
    )
    monkeypatch.setattr(checks, "DOCKER_TIMEOUT_SECONDS", 0.5)
    started = time.monotonic()
    hung = docker_check(fake_docker(tmp_path, "28.2.2 linux x86_64", sleep=30))
    assert time.monotonic() - started < 5
    assert hung == Result("FAIL", "docker", "`docker info` gave no answer in 0.5 s: restart Docker")


# --- zones -----------------------------------------------------------------------------------


def zone(name: str, zone_id: str) -> dict[str, Any]:
    return {"ZoneName": name, "ZoneId": zone_id, "State": "available", "ZoneType": "availability-zone"}


def test_without_default_subnets_the_first_two_zones_of_all_are_taken(stubs: Stubs) -> None:
    """Fn::GetAZs: zones with a default subnet, or every zone when none has one; alphabetical."""
    zones = [zone("ca-central-1d", "cac1-az4"), zone("ca-central-1a", "cac1-az1"), zone("ca-central-1b", "cac1-az2")]
    stubs.identity()["ec2"].add_response("describe_availability_zones", {"AvailabilityZones": zones}, {})
    stubs["ec2"].add_response(
        "describe_subnets", {"Subnets": []}, {"Filters": [{"Name": "default-for-az", "Values": ["true"]}]}
    )
    result = make(stubs, region="ca-central-1").run(CHECK["zones"])
    assert result == Result(
        "ok",
        "zones",
        "ca-central-1a (cac1-az1), ca-central-1b (cac1-az2), from the region's first two (Fn::GetAZs): "
        "EKS supports them",
    )


def test_a_default_zone_eks_refuses_fails_by_zone_id(stubs: Stubs) -> None:
    zones = [zone("ca-central-1a", "cac1-az3"), zone("ca-central-1b", "cac1-az1"), zone("ca-central-1c", "cac1-az2")]
    stubs.identity()["ec2"].add_response("describe_availability_zones", {"AvailabilityZones": zones}, {})
    stubs["ec2"].add_response("describe_subnets", {"Subnets": []}, None)
    result = make(stubs, region="ca-central-1").run(CHECK["zones"])
    assert result.status == "FAIL"
    assert result.detail == (
        "ca-central-1a is cac1-az3, where EKS creates no clusters; choose zones it supports, e.g. "
        '-c \'availabilityZones=["ca-central-1b","ca-central-1c"]\''
    )


@pytest.fixture
def moto_region(aws_env: str, request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, Any]]]:
    """A region of the moto server to this test alone (the server lives for the session)."""
    region = request.param
    clients = {name: boto3.client(name, region_name=region) for name in cli.CLIENTS}  # type: ignore[call-overload]
    yield region, clients


@pytest.mark.parametrize("moto_region", ["us-east-1"], indirect=True)
def test_zones_against_moto_map_names_to_ids_and_refuse_use1_az3(moto_region: tuple[str, dict[str, Any]]) -> None:
    region, clients = moto_region
    # moto, like AWS, has default subnets in every zone: the alphabetical first two.
    default = Preflight(sources.read_config({}), clients, region=region).run(CHECK["zones"])
    assert default.status == "ok" and default.detail.startswith("us-east-1a (use1-az6), us-east-1b (use1-az1),")
    e_zone = dict(clients["ec2"].describe_availability_zones()["AvailabilityZones"][4])
    assert (e_zone["ZoneName"], e_zone["ZoneId"]) == ("us-east-1e", "use1-az3")
    chosen = sources.read_config({"availabilityZones": '["us-east-1d","us-east-1e"]'})
    refused = Preflight(chosen, clients, region=region).run(CHECK["zones"])
    assert refused.status == "FAIL" and refused.detail.startswith(
        "us-east-1e is use1-az3, where EKS creates no clusters; choose zones it supports, e.g. "
        '-c \'availabilityZones=["us-east-1a","us-east-1b"]\''
    )
    elsewhere = sources.read_config({"availabilityZones": '["eu-west-1a","eu-west-1b"]'})
    wrong = Preflight(elsewhere, clients, region=region).run(CHECK["zones"])
    assert wrong.status == "FAIL"
    assert "availabilityZones eu-west-1a, eu-west-1b not offered to this account in us-east-1" in wrong.detail


# --- add-ons ---------------------------------------------------------------------------------


def addon(name: str, *versions: tuple[str, bool]) -> dict[str, Any]:
    return {
        "addons": [
            {
                "addonName": name,
                "addonVersions": [
                    {"addonVersion": v, "compatibilities": [{"clusterVersion": K8S, "defaultVersion": default}]}
                    for v, default in versions
                ],
            }
        ]
        if versions
        else []
    }


def test_addons_available_name_the_default_version_of_each(stubs: Stubs) -> None:
    stubs.identity()
    for name in checks.ADDONS:
        stubs["eks"].add_response(
            "describe_addon_versions",
            addon(name, ("v2.0-eksbuild.2", False), ("v1.0-eksbuild.1", True)),
            {"addonName": name, "kubernetesVersion": K8S},
        )
    result = make(stubs).run(CHECK["add-ons"])
    assert result.status == "ok"
    assert result.detail == f"Kubernetes {K8S} in us-east-1: " + ", ".join(
        f"{n} v1.0-eksbuild.1" for n in checks.ADDONS
    )


def test_an_addon_without_a_version_for_our_kubernetes_fails_naming_it(stubs: Stubs) -> None:
    stubs.identity()
    for name in checks.ADDONS:
        missing = name == "amazon-cloudwatch-observability"
        stubs["eks"].add_response(
            "describe_addon_versions",
            addon(name) if missing else addon(name, ("v1", True)),
            {"addonName": name, "kubernetesVersion": K8S},
        )
    result = make(stubs).run(CHECK["add-ons"])
    assert result.status == "FAIL"
    assert result.detail.startswith(f"no version of amazon-cloudwatch-observability for Kubernetes {K8S} in us-east-1")


# --- quotas ----------------------------------------------------------------------------------


def quota(code: str, value: float) -> dict[str, Any]:
    return {"Quota": {"QuotaCode": code, "Value": value}}


def no_stack(stubs: Stubs) -> None:
    stubs["cloudformation"].add_client_error(
        "describe_stacks", **client_error("ValidationError", f"Stack with id {STACK_NAME} does not exist")
    )


def test_vpc_quota_full_fails_and_an_update_adds_none(stubs: Stubs) -> None:
    vpcs = {"Vpcs": [{"VpcId": f"vpc-{i}"} for i in range(5)]}
    expected_quota = {"ServiceCode": "vpc", "QuotaCode": "L-F678F1CE"}
    for stack in (None, "UPDATE_COMPLETE", "REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE"):
        stubs.identity()
        stubs["ec2"].add_response("describe_vpcs", vpcs, {})
        stubs["service-quotas"].add_response("get_service_quota", quota("L-F678F1CE", 5), expected_quota)
        if stack is None:
            no_stack(stubs)
        else:
            stubs["cloudformation"].add_response(
                "describe_stacks",
                {"Stacks": [{"StackName": STACK_NAME, "StackStatus": stack, "CreationTime": "2026-01-01T00:00:00Z"}]},
                {"StackName": STACK_NAME},
            )
        result = make(stubs).run(CHECK["quota VPCs"])
        if stack != "UPDATE_COMPLETE":  # no stack, one with nothing in it yet, one the CLI re-creates
            assert result == Result(
                "FAIL",
                "quota VPCs",
                "5 of 5 in use, the stack adds 1 (vpc L-F678F1CE): free some, or request an increase of "
                "'VPCs per Region' in Service Quotas",
            )
        else:
            assert result == Result("ok", "quota VPCs", "5 of 5 in use, an update adds none (vpc L-F678F1CE)")


def test_elastic_ip_quota_uses_the_aws_default_when_none_is_applied(stubs: Stubs) -> None:
    stubs.identity()["ec2"].add_response(
        "describe_addresses",
        {"Addresses": [{"AllocationId": f"eipalloc-{i}"} for i in range(4)]},
        {"Filters": [{"Name": "domain", "Values": ["vpc"]}]},
    )
    expected = {"ServiceCode": "ec2", "QuotaCode": "L-0263D0A3"}
    stubs["service-quotas"].add_client_error("get_service_quota", **client_error("NoSuchResourceException"))
    stubs["service-quotas"].add_response("get_aws_default_service_quota", quota("L-0263D0A3", 5), expected)
    no_stack(stubs)
    result = make(stubs, natGateways="2").run(CHECK["quota Elastic IPs"])
    assert result.status == "FAIL"
    assert result.detail.startswith("4 of 5 in use, the stack adds 2 (ec2 L-0263D0A3)")


def test_unreadable_quota_warns_with_the_usage(stubs: Stubs) -> None:
    stubs.identity()["ec2"].add_response("describe_addresses", {"Addresses": []}, None)
    stubs["service-quotas"].add_client_error("get_service_quota", **client_error("AccessDeniedException", status=403))
    result = make(stubs).run(CHECK["quota Elastic IPs"])
    assert result == Result(
        "warn",
        "quota Elastic IPs",
        "0 in use; could not read the quota (access denied to servicequotas:GetServiceQuota: grant it to your "
        "identity (AccessDeniedException))",
    )


def test_nat_gateway_quota_is_per_zone_the_stack_puts_one_in(stubs: Stubs) -> None:
    stubs.identity()
    nats = {"NatGateways": [{"NatGatewayId": f"nat-{i}", "SubnetId": f"subnet-{i}"} for i in range(6)]}
    stubs["ec2"].add_response(
        "describe_nat_gateways",
        nats,
        {"Filter": [{"Name": "state", "Values": ["pending", "available", "deleting"]}]},
    )
    # Five in us-east-1a (the stack's first zone), one in us-east-1c.
    subnets = [
        {"SubnetId": f"subnet-{i}", "AvailabilityZone": "us-east-1a" if i < 5 else "us-east-1c"} for i in range(6)
    ]
    stubs["ec2"].add_response(
        "describe_subnets", {"Subnets": subnets}, {"SubnetIds": [f"subnet-{i}" for i in range(6)]}
    )
    stubs["ec2"].add_response(
        "describe_availability_zones",
        {"AvailabilityZones": [zone("us-east-1a", "use1-az6"), zone("us-east-1b", "use1-az1")]},
        {},
    )
    stubs["ec2"].add_response("describe_subnets", {"Subnets": []}, None)
    stubs["service-quotas"].add_response("get_service_quota", quota("L-FE5A380F", 5), None)
    no_stack(stubs)
    result = make(stubs).run(CHECK["quota NAT gateways"])
    assert result.status == "FAIL"
    assert result.detail.startswith("5 of 5 in use in us-east-1a, the stack adds 1 (vpc L-FE5A380F)")


@pytest.mark.parametrize("moto_region", ["eu-west-3"], indirect=True)
def test_vpc_quota_against_moto_counts_what_exists(moto_region: tuple[str, dict[str, Any]]) -> None:
    region, clients = moto_region
    check = Preflight(sources.read_config({}), clients, region=region)
    first = check.run(CHECK["quota VPCs"])
    assert first.status == "ok" and first.detail.startswith("1 of 5 in use, the stack adds 1")  # the default VPC
    for i in range(4):
        clients["ec2"].create_vpc(CidrBlock=f"10.{i}.0.0/16")
    full = Preflight(sources.read_config({}), clients, region=region).run(CHECK["quota VPCs"])
    assert full.status == "FAIL" and full.detail.startswith("5 of 5 in use, the stack adds 1 (vpc L-F678F1CE)")


@pytest.mark.parametrize("moto_region", ["eu-north-1"], indirect=True)
def test_bootstrap_and_stack_against_moto(moto_region: tuple[str, dict[str, Any]]) -> None:
    region, clients = moto_region
    required, _ = sources.bootstrap_requirement()
    check = Preflight(sources.read_config({}), clients, region=region)
    assert check.run(CHECK["bootstrap"]).detail.startswith(f"not bootstrapped in {region}")
    assert (
        check.run(CHECK["stack"]).detail
        == f"no stack {STACK_NAME} and no cluster hello-cluster in {region}: deploy creates both"
    )
    clients["ssm"].put_parameter(Name=PARAMETER["Name"], Value=str(required), Type="String")
    assert Preflight(sources.read_config({}), clients, region=region).run(CHECK["bootstrap"]).status == "ok"


# --- stack -----------------------------------------------------------------------------------


def stack_status(stubs: Stubs, status: str) -> None:
    stubs["cloudformation"].add_response(
        "describe_stacks",
        {"Stacks": [{"StackName": STACK_NAME, "StackStatus": status, "CreationTime": "2026-01-01T00:00:00Z"}]},
        {"StackName": STACK_NAME},
    )


def test_stack_absent_and_no_cluster_is_a_fresh_deploy(stubs: Stubs) -> None:
    stubs.identity()
    no_stack(stubs)
    stubs["eks"].add_client_error(
        "describe_cluster",
        **client_error("ResourceNotFoundException", status=404),
        expected_params={"name": "hello-cluster"},
    )
    assert make(stubs).run(CHECK["stack"]).status == "ok"


def test_a_cluster_with_our_name_outside_the_stack_fails(stubs: Stubs) -> None:
    stubs.identity()
    no_stack(stubs)
    stubs["eks"].add_response("describe_cluster", {"cluster": {"name": "demo-cluster"}}, {"name": "demo-cluster"})
    result = make(stubs, namePrefix="demo").run(CHECK["stack"])
    assert result == Result(
        "FAIL",
        "stack",
        f"cluster demo-cluster exists in us-east-1 outside stack {STACK_NAME}: delete it, or choose another name "
        "with -c namePrefix=...",
    )


@pytest.mark.parametrize(
    ("status", "verdict", "says"),
    [
        ("UPDATE_COMPLETE", "ok", "deploy updates it"),
        ("ROLLBACK_COMPLETE", "warn", "deploy deletes and re-creates it"),
        ("REVIEW_IN_PROGRESS", "ok", "deploy creates it"),
        ("UPDATE_IN_PROGRESS", "FAIL", "wait until it finishes"),
        ("UPDATE_ROLLBACK_FAILED", "FAIL", "continue-update-rollback"),
    ],
)
def test_an_existing_stack_is_fine_for_an_update_unless_it_is_stuck(
    stubs: Stubs, status: str, verdict: str, says: str
) -> None:
    stubs.identity()
    stack_status(stubs, status)
    result = make(stubs).run(CHECK["stack"])
    assert (result.status, says in result.detail, status in result.detail) == (verdict, True, True), result


# --- the whole run ---------------------------------------------------------------------------


def test_one_line_per_check_in_order_and_a_hung_check_fails_at_the_deadline(
    stubs: Stubs, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = make(stubs, region=None)
    stubs.identity()

    def hang(_: Preflight) -> str:
        time.sleep(30)
        return "never"

    hung = [dataclasses.replace(c, function=hang) if c.name == "docker" else c for c in checks.CHECKS]
    out = io.StringIO()
    started = time.monotonic()
    # A deadline the stubbed checks meet on any machine; the hung one never does.
    found = cli.run_all(check, deadline=5, out=out, checks=hung)
    assert time.monotonic() - started < 25  # it did not wait for the hung check's 30 s
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0].split(None, 1)[1] for line in lines] == [c.name for c in checks.CHECKS]
    assert "FAIL  docker: no answer within 5 s: check the network" in lines
    assert found[0] == Result("ok", "credentials", "arn:aws:iam::123456789012:user/me (account 123456789012)")


def test_a_missing_profile_is_the_credentials_line_and_the_region_still_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    check = cli.build({}, {"AWS_REGION": "eu-west-1"})
    credentials = check.run(CHECK["credentials"])
    assert credentials.status == "FAIL"
    assert "(no-such-profile) could not be found: fix AWS_PROFILE" in credentials.detail
    assert check.run(CHECK["region"]) == Result("ok", "region", "eu-west-1 (from AWS_REGION)")
    assert check.run(CHECK["stack"]) == Result("skip", "stack", "needs working credentials (see the credentials line)")


def test_a_bug_in_a_check_is_still_one_fail_line(stubs: Stubs, monkeypatch: pytest.MonkeyPatch) -> None:
    check = make(stubs)

    def broken(_: Preflight) -> str:
        return str(int("fourteen"))

    result = check.run(Check("bootstrap", broken))
    assert result.status == "FAIL"
    assert result.detail.startswith("preflight itself failed (ValueError: invalid literal for int()")


def test_bad_context_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-c", "nodeCount=0"]) == 2
    assert "error: context key 'nodeCount'='0' is invalid" in capsys.readouterr().err
    assert cli.main(["-c", "nodecount=3"]) == 2
    assert "did you mean 'nodeCount'?" in capsys.readouterr().err
    assert cli.main(["-c", "justakey"]) == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["--no-such-flag"])
    assert exc.value.code == 2


def test_without_credentials_or_region_every_check_prints_one_line_and_exits_1() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AMAZON_"))}
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ACCESS_KEY_ID="",
        AWS_SECRET_ACCESS_KEY="",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tools.preflight"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert time.monotonic() - started < 30
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(checks.CHECKS), proc.stdout
    for line, name in zip(lines, [c.name for c in checks.CHECKS], strict=True):
        assert line.split(None, 1)[1].startswith(f"{name}: "), line
    assert lines[0].startswith("FAIL  credentials: no AWS credentials found: run `aws configure`")
    assert lines[1].startswith("FAIL  region: none set: export AWS_REGION=")
    assert all(
        line.startswith("skip  ")
        for line in lines
        if not line.split(None, 1)[1].startswith(("credentials", "region", "docker"))
    )


def test_a_checker_only_deploy_skips_what_only_the_cluster_needs() -> None:
    """cluster=false: no image, VPC, NAT gateway or cluster; those lines say so without asking AWS."""
    check = make({}, cluster="false", extraTargets='[{"name": "site", "url": "https://www.example.com/"}]')
    for name in ("docker", "zones", "add-ons", "quota VPCs", "quota Elastic IPs", "quota NAT gateways", "stack"):
        result = check.run(CHECK[name])
        assert (result.status, result.detail) == ("skip", "cluster=false: a checker-only deploy does not need it")


# --- checker stacks left behind in regions no longer in checkerRegions ---------------------------

TEMPLATE = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})


def regional(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def test_a_checker_stack_left_in_a_region_dropped_from_checker_regions_warns_with_the_command_to_delete_it(
    aws_env: str,
) -> None:
    """One call per enabled region, at once: the stack of a region still in the list is fine, the
    other is named with a command that deletes it; once it is deleted, the line is ok."""
    from cdk_app.config import CHECKER_STACK_PREFIX, checker_stack_description

    kept, dropped, elsewhere = "ap-southeast-2", "ca-central-1", "sa-east-1"
    for region, home in ((kept, "us-east-1"), (dropped, "us-east-1"), (elsewhere, "eu-west-3")):
        regional("cloudformation", region).create_stack(
            StackName=f"{CHECKER_STACK_PREFIX}-{region}",
            TemplateBody=json.dumps({**json.loads(TEMPLATE), "Description": checker_stack_description(region, home)}),
        )
    config = sources.read_config({"checkerRegions": json.dumps(["us-east-1", kept])})
    enabled = regional("ec2", "us-east-1").describe_regions()["Regions"]
    assert len(enabled) >= 17  # every region is asked
    try:
        # Its deadline is not what this tests (the silent-region test does, on a fake clock):
        # a loaded machine must not turn a slow answer into a missing one.
        check = Preflight(
            config, {"sts": regional("sts", "us-east-1")}, region="us-east-1", regional=regional, sweep_seconds=600
        )
        started = time.monotonic()
        result = check.run(CHECK["checker stacks"])
        took = time.monotonic() - started
        print(f"\nchecker stacks over {len(enabled)} regions against moto: {took:.2f} s")
        command = f"aws cloudformation delete-stack --region {dropped} --stack-name {CHECKER_STACK_PREFIX}-{dropped}"
        other = f"aws cloudformation delete-stack --region {elsewhere} --stack-name {CHECKER_STACK_PREFIX}-{elsewhere}"
        assert result == Result(
            "warn",
            "checker stacks",
            f'{CHECKER_STACK_PREFIX}-{dropped} (CREATE_COMPLETE) not in checkerRegions=["us-east-1","{kept}"]: '
            "still probing and billed; after make deploy with this list (it removes the alarms on that location: "
            f"deleting first wakes its heartbeat alarm), delete: {command}; "
            f"{CHECKER_STACK_PREFIX}-{elsewhere} (CREATE_COMPLETE) publishes to eu-west-3, not us-east-1: a previous "
            f"home's or another deployment's; only if it is yours, delete: {other}",
        )
        # The command names the stack in its region: run as said, the line is ok again.
        words = command.split()
        where = words[words.index("--region") + 1]
        regional("cloudformation", where).delete_stack(StackName=words[words.index("--stack-name") + 1])
        regional("cloudformation", elsewhere).delete_stack(StackName=f"{CHECKER_STACK_PREFIX}-{elsewhere}")
        again = Preflight(config, {"sts": regional("sts", "us-east-1")}, region="us-east-1", regional=regional)
        assert again.run(CHECK["checker stacks"]) == Result(
            "ok",
            "checker stacks",
            f'none outside checkerRegions=["us-east-1","{kept}"] in the {len(enabled)} enabled regions',
        )
        # Back to one region: every checker stack is left over; several are deleted in one loop.
        single = Preflight(
            sources.read_config({}), {"sts": regional("sts", "us-east-1")}, region="us-east-1", regional=regional
        ).run(CHECK["checker stacks"])
        assert single.status == "warn" and single.detail.startswith(
            f"{CHECKER_STACK_PREFIX}-{kept} (CREATE_COMPLETE) not in one region:"
        )
    finally:
        for region in (kept, dropped, elsewhere):
            regional("cloudformation", region).delete_stack(StackName=f"{CHECKER_STACK_PREFIX}-{region}")


class SweepClock:
    """The sweep's clock in a test: it stands still while any region but `silent` is being read,
    then jumps past any deadline. The deadline so falls after the other regions' answers however
    slow the machine (on the wall clock a loaded machine left some unread: a flaky test), and
    while `silent` is still asked (the sweep's threads are told apart by being new)."""

    def __init__(self, silent: str) -> None:
        self.before = set(threading.enumerate())
        self.silent = f"preflight-{silent}"
        self.now = 0.0

    def __call__(self) -> float:
        asking = [t.name for t in threading.enumerate() if t not in self.before and t.name.startswith("preflight-")]
        if asking == [self.silent]:
            self.now = 1e9
        return self.now


def test_regions_that_refuse_or_never_answer_are_named_and_the_sweep_keeps_its_time(
    aws_env: str,
) -> None:
    """An SCP or a region not enabled answers with an error, a network with nothing: each is part
    of the line, the others are still read, and the sweep ends on its deadline, not the silent
    region's (its call is still waiting then)."""
    from cdk_app.config import CHECKER_STACK_PREFIX
    from tests.raw_peers import hanging_endpoint

    with hanging_endpoint() as (hung_url, held):
        stubbed: list[Stubber] = []

        def some_refuse(service: str, region: str) -> Any:
            if service == "cloudformation" and region == "eu-south-1":
                client = regional(service, region)
                stubber = Stubber(client)
                stubber.add_client_error("describe_stacks", **client_error("AccessDenied", "denied by an SCP", 403))
                stubber.activate()
                stubbed.append(stubber)
                return client
            if service == "cloudformation" and region == "sa-east-1":
                # Its read timeout only bounds how long a sweep that overstays its deadline takes to fail.
                return boto3.client(
                    service,
                    region_name=region,
                    endpoint_url=hung_url,
                    config=botocore.config.Config(read_timeout=30, retries={"total_max_attempts": 1}),
                )
            return regional(service, region)

        regional("cloudformation", "eu-north-1").create_stack(
            StackName=f"{CHECKER_STACK_PREFIX}-eu-north-1", TemplateBody=TEMPLATE
        )
        clock = SweepClock("sa-east-1")
        try:
            check = Preflight(
                sources.read_config({}),
                {"sts": regional("sts", "us-east-1")},
                region="us-east-1",
                regional=some_refuse,
                # What the sweep waits in one go on a clock standing still: short, not to waste time.
                sweep_seconds=0.5,
                clock=clock,
            )
            result = check.run(CHECK["checker stacks"])
            # It ended on its deadline: the silent region's one call is still waiting.
            assert len(held) == 1 and clock.now == 1e9
        finally:
            regional("cloudformation", "eu-north-1").delete_stack(StackName=f"{CHECKER_STACK_PREFIX}-eu-north-1")
    assert result == Result(
        "warn",
        "checker stacks",
        f"{CHECKER_STACK_PREFIX}-eu-north-1 (CREATE_COMPLETE) not in one region: still probing and billed; after "
        "make deploy with this list (it removes the alarms on that location: deleting first wakes its heartbeat "
        "alarm), delete: aws cloudformation delete-stack --region eu-north-1 --stack-name "
        f"{CHECKER_STACK_PREFIX}-eu-north-1; not read in eu-south-1: access denied to cloudformation:DescribeStacks: "
        "grant it to your identity (AccessDenied); not read in sa-east-1: no answer within 0.5 s",
    )
    # Without the list of regions there is nothing to sweep: worth knowing, not a failed deploy.
    ec2 = regional("ec2", "us-east-1")
    with Stubber(ec2) as denied:
        denied.add_client_error("describe_regions", **client_error("UnauthorizedOperation", status=403))
        blind = Preflight(
            sources.read_config({}),
            {"sts": regional("sts", "us-east-1")},
            region="us-east-1",
            regional=lambda service, region: ec2 if service == "ec2" else regional(service, region),
        ).run(CHECK["checker stacks"])
    assert blind == Result(
        "warn",
        "checker stacks",
        "could not list the enabled regions to look for them (access denied to ec2:DescribeRegions: grant it to "
        "your identity (UnauthorizedOperation))",
    )


# --- versions: the running cluster against cdk_app/versions.py -------------------------------


def running(stubs: Stubs, control: str, nodes: str, addon: str, offered: list[str]) -> None:
    eks, name = stubs.identity()["eks"], "hello-cluster"
    eks.add_response("describe_cluster", {"cluster": {"name": name, "version": control}}, {"name": name})
    eks.add_response("list_nodegroups", {"nodegroups": ["nodes"]}, {"clusterName": name})
    eks.add_response(
        "describe_nodegroup",
        {"nodegroup": {"nodegroupName": "nodes", "version": nodes}},
        {"clusterName": name, "nodegroupName": "nodes"},
    )
    eks.add_response("list_addons", {"addons": ["vpc-cni"]}, {"clusterName": name})
    eks.add_response(
        "describe_addon",
        {"addon": {"addonName": "vpc-cni", "addonVersion": addon}},
        {"clusterName": name, "addonName": "vpc-cni"},
    )
    eks.add_response(
        "describe_addon_versions",
        {"addons": [{"addonName": "vpc-cni", "addonVersions": [{"addonVersion": v} for v in offered]}]},
        {"addonName": "vpc-cni", "kubernetesVersion": sources.kubernetes_version()},
    )


def _minor(delta: int) -> str:
    return f"1.{int(sources.kubernetes_version().split('.')[1]) + delta}"


def test_a_cluster_at_the_configured_version_with_everything_moved_is_ok(stubs: Stubs) -> None:
    running(stubs, _minor(0), _minor(0), "v1.21.0-eksbuild.1", ["v1.21.0-eksbuild.1"])
    result = make(stubs).run(CHECK["versions"])
    assert result.status == "ok" and f"at Kubernetes {_minor(0)}" in result.detail


def test_one_minor_up_is_what_a_deploy_does_and_names_what_moves_after_it(stubs: Stubs) -> None:
    running(stubs, _minor(-1), _minor(-1), "v1.19.0-eksbuild.1", ["v1.21.0-eksbuild.1"])
    result = make(stubs).run(CHECK["versions"])
    assert result.status == "warn", result
    assert f"from Kubernetes {_minor(-1)} to {_minor(0)}" in result.detail
    assert "node group nodes" in result.detail and "add-on vpc-cni (v1.19.0-eksbuild.1" in result.detail


def test_nodes_and_addons_left_behind_after_the_control_plane_moved_warn(stubs: Stubs) -> None:
    running(stubs, _minor(0), _minor(-1), "v1.21.0-eksbuild.1", ["v1.21.0-eksbuild.1"])
    result = make(stubs).run(CHECK["versions"])
    assert result.status == "warn" and "still to move: node group nodes" in result.detail
    assert "add-on" not in result.detail


@pytest.mark.parametrize(("control", "says"), [(2, "one minor at a time"), (-3, "cannot downgrade")])
def test_a_skip_or_a_downgrade_fails(stubs: Stubs, control: int, says: str) -> None:
    stubs.identity()["eks"].add_response(
        "describe_cluster",
        {"cluster": {"name": "hello-cluster", "version": _minor(-control)}},
        {"name": "hello-cluster"},
    )
    result = make(stubs).run(CHECK["versions"])
    assert result.status == "FAIL" and says in result.detail, result


def test_nodes_too_far_behind_for_the_new_control_plane_fail(stubs: Stubs) -> None:
    running(stubs, _minor(-1), _minor(-4), "v1.21.0-eksbuild.1", ["v1.21.0-eksbuild.1"])
    result = make(stubs).run(CHECK["versions"])
    assert result.status == "FAIL" and "more than 3 minors behind" in result.detail, result


def test_no_cluster_yet_is_ok(stubs: Stubs) -> None:
    stubs.identity()["eks"].add_client_error(
        "describe_cluster",
        **client_error("ResourceNotFoundException", status=404),
        expected_params={"name": "hello-cluster"},
    )
    assert make(stubs).run(CHECK["versions"]).status == "ok"
