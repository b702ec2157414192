"""Security gates: cdk-nag, bandit, IAM scope, encryption, node hardening, teardown order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import Validations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match

from cdk_app.stack import build
from tests.infra import (
    CLUSTER_TUNED,
    DEFAULTS,
    ROOT,
    as_json,
    assembly,
    default_template,
    kubernetes_objects,
    render,
    resources,
    synth,
)


def _validation_report(app: cdk.App, outdir: Path) -> list[dict]:
    """Synthesize with every validation `cdk synth` runs (cdk-nag and aws-cdk-lib's own
    CloudFormation validation) and return the plugin reports of what they found."""
    app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
    report = outdir / "validation-report.json"
    return json.loads(report.read_text())["pluginReports"] if report.exists() else []


def test_the_defaults_only_validation_finding_is_one_planted_cloudwatch_would_refuse(tmp_path: Path) -> None:
    """Both validators `cdk synth` runs, on the default configuration with one bad resource
    added. aws-cdk-lib reports its CloudFormation validation's findings as warnings and passes:
    this test and the CDK CLI test in tests/test_infra.py (the richest configuration) are what
    fail on one. The other tests synthesize without it (tests/infra.py)."""
    app = cdk.App(context=DEFAULTS, outdir=str(tmp_path))
    logs.CfnLogGroup(build(app).health, "Careless", retention_in_days=4)
    [report] = _validation_report(app, tmp_path)
    assert report["pluginName"] == "CloudFormation Validate"
    assert [v["ruleName"] for v in report["violations"]] == ["W3030"], report


def test_cdk_nag_is_live_an_unencrypted_topic_fails_synth(tmp_path: Path) -> None:
    app = cdk.App(context=DEFAULTS, outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    stacks = build(app)
    sns.Topic(stacks.health, "Careless")
    with pytest.raises(RuntimeError, match="AwsSolutions-SNS3"):
        app.synth()


def _acknowledgements(app: cdk.App) -> list[tuple[str, str, str]]:
    """(construct path, finding, reason) of every cdk-nag acknowledgement in the app."""
    found = []
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for finding, reason in dict(entry.data).items():
                    if "AwsSolutions" in finding:
                        found.append((construct.node.path, finding, reason))
    return found


def test_each_acknowledgement_names_one_finding_on_one_resource_with_a_reason() -> None:
    app = cdk.App(context={**DEFAULTS, "checkerRegions": '["us-east-1","eu-west-1"]'})
    stacks = build(app)
    acks = _acknowledgements(app)
    assert len(acks) >= 20
    for path, finding, reason in acks:
        assert path not in {s.node.path for s in stacks.all()}, f"stack-wide acknowledgement of {finding}"
        assert len(reason) > 40, (finding, reason)


def test_bandit_finds_nothing_unexplained() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bandit",
            "-q",
            "-c",
            "pyproject.toml",
            "-r",
            "app.py",
            "cdk_app",
            "service",
            "checker_lambda",
            "tools",
            "-f",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    report = json.loads(done.stdout)
    assert report["results"] == [], [(r["filename"], r["line_number"], r["test_id"]) for r in report["results"]]


def test_checker_role_can_only_write_its_logs_and_its_namespace_and_read_the_url() -> None:
    t = default_template()
    fn = next(
        r["Properties"]
        for r in resources(t, "AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "checker_lambda.handler.handler"
    )
    role_id = fn["Role"]["Fn::GetAtt"][0]
    role = resources(t, "AWS::IAM::Role")[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    statements = [
        s
        for p in resources(t, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = sorted(a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    assert actions == ["cloudwatch:PutMetricData", "logs:CreateLogStream", "logs:PutLogEvents", "ssm:GetParameter"]
    [read] = [s for s in statements if s["Action"] == "ssm:GetParameter"]
    assert (
        render(read["Resource"])
        == "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/HelloWorldEks/url"
    )
    for s in statements:
        if s["Resource"] == "*":
            assert s["Condition"] == {"StringEquals": {"cloudwatch:namespace": "HelloWorld/HealthCheck"}}


def test_secrets_are_encrypted_with_a_rotating_key_and_control_plane_logs_are_on() -> None:
    t = default_template()
    [cluster] = resources(t, "AWS::EKS::Cluster").values()
    props = cluster["Properties"]
    key_id = props["EncryptionConfig"][0]["Provider"]["KeyArn"]["Fn::GetAtt"][0]
    assert props["EncryptionConfig"][0]["Resources"] == ["secrets"]
    assert resources(t, "AWS::KMS::Key")[key_id]["Properties"]["EnableKeyRotation"] is True
    enabled = {e["Type"] for e in props["Logging"]["ClusterLogging"]["EnabledTypes"]}
    assert {"api", "audit", "authenticator"} <= enabled


def test_nodes_are_private_with_imdsv2_only_and_encrypted_disks() -> None:
    t = default_template()
    [template] = resources(t, "AWS::EC2::LaunchTemplate").values()
    data = template["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert data["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    [group] = resources(t, "AWS::EKS::Nodegroup").values()
    private = {k for k, r in resources(t, "AWS::EC2::Subnet").items() if not r["Properties"]["MapPublicIpOnLaunch"]}
    assert {s["Ref"] for s in group["Properties"]["Subnets"]} == private


def test_spot_and_graviton_through_configuration() -> None:
    t = synth(**CLUSTER_TUNED)  # m7g.large, spot
    t.has_resource_properties(
        "AWS::EKS::Nodegroup",
        {"CapacityType": "SPOT", "AmiType": "AL2023_ARM_64_STANDARD", "InstanceTypes": ["m7g.large"]},
    )
    # The image is built for the nodes' architecture, and the pods ask for it.
    assets = json.loads((assembly(**CLUSTER_TUNED) / "HelloWorldEks.assets.json").read_text())
    [image] = assets["dockerImages"].values()
    assert image["source"]["platform"] == "linux/arm64"
    [deployment] = [o for o in kubernetes_objects(t) if o["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/arch": "arm64"}


def test_cost_switches_nat_gateways_and_vpc_endpoints() -> None:
    t = default_template()
    t.resource_count_is("AWS::EC2::NatGateway", 1)
    t.resource_count_is("AWS::EC2::VPCEndpoint", 0)
    ha = synth(**CLUSTER_TUNED)  # two NAT gateways and VPC endpoints
    ha.resource_count_is("AWS::EC2::NatGateway", 2)
    services = sorted(
        json.dumps(r["Properties"]["ServiceName"]) for r in resources(ha, "AWS::EC2::VPCEndpoint").values()
    )
    assert len(services) == 3
    assert (
        any(".s3" in s for s in services)
        and any("ecr.api" in s for s in services)
        and any("ecr.dkr" in s for s in services)
    )


def test_vpc_flow_logs_and_cni_network_policy() -> None:
    t = default_template()
    t.has_resource_properties("AWS::EC2::FlowLog", {"ResourceType": "VPC", "LogDestinationType": "cloud-watch-logs"})
    t.has_resource_properties(
        "AWS::EKS::Addon",
        {"AddonName": "vpc-cni", "ConfigurationValues": Match.string_like_regexp('"enableNetworkPolicy": "true"')},
    )
    for addon in ("eks-pod-identity-agent", "metrics-server", "amazon-cloudwatch-observability"):
        t.has_resource_properties("AWS::EKS::Addon", {"AddonName": addon})


def test_keys_and_log_groups_have_an_explicit_removal_policy() -> None:
    t = default_template()
    for kind in ("AWS::KMS::Key", "AWS::Logs::LogGroup"):
        found = resources(t, kind)
        assert found, kind  # a loop over nothing proves nothing
        for logical_id, r in found.items():
            assert r["DeletionPolicy"] == "Delete" and r["UpdateReplacePolicy"] == "Delete", logical_id


# --- teardown order ----------------------------------------------------------------------


def _edges(t) -> dict[str, set[str]]:
    """logical id -> ids it depends on (DependsOn, Ref, GetAtt), i.e. what CloudFormation deletes after it."""
    body = as_json(t)["Resources"]
    edges: dict[str, set[str]] = {}
    for logical_id, r in body.items():
        deps = set(r.get("DependsOn", []))
        text = json.dumps(r.get("Properties", {}))
        deps |= {other for other in body if f'"Ref": "{other}"' in text or f'"Fn::GetAtt": ["{other}"' in text}
        edges[logical_id] = deps
    return edges


def _deleted_before(edges: dict[str, set[str]], first: str, then: str) -> bool:
    seen, todo = set(), [first]
    while todo:
        node = todo.pop()
        if node == then:
            return True
        if node not in seen:
            seen.add(node)
            todo += edges.get(node, ())
    return False


def test_teardown_order_binding_then_controller_then_nodes_then_network() -> None:
    t = default_template()
    edges = _edges(t)
    manifests = resources(t, "Custom::AWSCDK-EKS-KubernetesResource")
    [binding] = [k for k, r in manifests.items() if "TargetGroupBinding" in json.dumps(r["Properties"]["Manifest"])]
    [controller] = [
        k
        for k, r in resources(t, "Custom::AWSCDK-EKS-HelmChart").items()
        if r["Properties"]["Chart"] == "aws-load-balancer-controller"
    ]
    [nodes] = resources(t, "AWS::EKS::Nodegroup")
    [alb] = resources(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    [vpc] = resources(t, "AWS::EC2::VPC")
    [cluster] = resources(t, "AWS::EKS::Cluster")
    # The controller must still run (on the nodes) to remove the binding's finalizer.
    assert _deleted_before(edges, binding, controller)
    assert _deleted_before(edges, controller, nodes)
    assert _deleted_before(edges, nodes, cluster)
    assert _deleted_before(edges, cluster, vpc)
    # The load balancer is the stack's own, so CloudFormation deletes it, before the VPC.
    assert _deleted_before(edges, alb, vpc)
    assert not any(m.get("spec", {}).get("type") == "LoadBalancer" for m in [])
    for r in manifests.values():
        assert '\\"type\\":\\"LoadBalancer\\"' not in json.dumps(r["Properties"]["Manifest"])
