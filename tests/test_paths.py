"""Every path a request, a probe, a metric and a page travel, hop by hop, on the synthesized template.

Each test follows one path from its start to its end and asserts both sides of every hop: what
may leave one side (egress, IAM on the caller, who may publish) and what the other side accepts
(ingress, a resource policy, a NetworkPolicy, a port). Nothing is checked by re-running the code
that built it: the template (and the cloud assembly's asset manifest) is read as data, and the
upstream facts it must agree with are in tests/data/upstream.json.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from cdk_app.config import STACK_NAME
from checker_lambda import contract
from service import settings as svc
from tests.infra import (
    Json,
    as_json,
    assembly,
    helm_charts,
    kubernetes_objects,
    listify,
    logical_id_of,
    ref,
    render,
    resources,
    statements,
    synth,
    url_from_parameter,
)

UPSTREAM = json.loads((Path(__file__).parent / "data" / "upstream.json").read_text())
EMAIL = "oncall@example.com"
WEBHOOK = "https://hooks.example.com/alerts"
DOMAIN = {"domainName": "hello.example.com", "hostedZoneId": "Z0123456789ABC", "hostedZoneName": "example.com"}
CONFIGS: dict[str, dict[str, Any]] = {
    # The defaults (plain HTTP, x86 nodes) with both kinds of subscriber.
    "http-x86": {"alertEmail": EMAIL, "alertWebhooks": [WEBHOOK]},
    # A domain (HTTPS, port 80 redirects) on Graviton nodes.
    "https-arm64": {
        "alertEmail": EMAIL,
        "nodeInstanceType": "t4g.medium",
        "availabilityZones": ["us-east-1b", "us-east-1c"],
        **DOMAIN,
    },
}


@dataclass(frozen=True)
class Synthesized:
    name: str
    context: dict[str, Any]
    template: Template
    assets: Json  # the cloud assembly's <stack>.assets.json

    @property
    def resources(self) -> dict[str, Json]:
        return as_json(self.template)["Resources"]

    def of_type(self, kind: str) -> dict[str, Json]:
        return resources(self.template, kind)

    def one(self, kind: str) -> tuple[str, Json]:
        [(logical_id, resource)] = self.of_type(kind).items()
        return logical_id, render(resource["Properties"])

    def props(self, logical_id: str) -> Json:
        return render(self.resources[logical_id]["Properties"])

    def role_statements(self, role_id: str) -> list[Json]:
        """Every statement any policy attached to the role grants (inline and AWS::IAM::Policy)."""
        role = self.props(role_id)
        found = [s for p in role.get("Policies", []) for s in statements(p["PolicyDocument"])]
        for policy in self.of_type("AWS::IAM::Policy").values():
            props = render(policy["Properties"])
            if ref(role_id) in props.get("Roles", []):
                found.extend(statements(props["PolicyDocument"]))
        return found

    def managed_policies(self, role_id: str) -> list[str]:
        return [str(arn).rsplit(":policy/", 1)[-1] for arn in self.props(role_id).get("ManagedPolicyArns", [])]

    def depends_on(self, logical_id: str) -> set[str]:
        return set(listify(self.resources[logical_id].get("DependsOn", [])))

    def objects(self, kind: str) -> list[Json]:
        return [o for o in kubernetes_objects(self.template) if o["kind"] == kind]


@cache
def synthesized(name: str) -> Synthesized:
    assets = json.loads((assembly(**CONFIGS[name]) / f"{STACK_NAME}.assets.json").read_text())
    return Synthesized(name, CONFIGS[name], synth(**CONFIGS[name]), assets)


@pytest.fixture(params=sorted(CONFIGS), scope="module")
def app(request: pytest.FixtureRequest) -> Synthesized:
    return synthesized(request.param)


def allows(statement: Json, action: str) -> bool:
    """Whether an Allow statement's actions cover `action` (IAM wildcards)."""
    if statement.get("Effect") != "Allow":
        return False
    patterns = listify(statement.get("Action", []))
    return any(re.fullmatch(re.escape(p).replace(r"\*", ".*"), action, re.IGNORECASE) for p in patterns)


def service_principals(trust: Json) -> dict[str, set[str]]:
    """Service principal -> the actions the trust policy lets it take."""
    found: dict[str, set[str]] = {}
    for s in statements(trust):
        if s.get("Effect") == "Allow":
            for principal in listify(s.get("Principal", {}).get("Service", [])):
                found.setdefault(principal, set()).update(listify(s["Action"]))
    return found


def port_covers(rule: Json, port: int) -> bool:
    if rule.get("IpProtocol") == "-1":
        return True
    return rule.get("IpProtocol") == "tcp" and int(rule["FromPort"]) <= port <= int(rule["ToPort"])


# --- 1. anyone on the internet -> listener -> ALB -> pods -> container ------------------------


def _load_balancer(app: Synthesized) -> tuple[str, Json]:
    return app.one("AWS::ElasticLoadBalancingV2::LoadBalancer")


def _alb_security_group(app: Synthesized) -> str:
    _, lb = _load_balancer(app)
    [group] = lb["SecurityGroups"]
    return logical_id_of(group)


def _egress_rules(app: Synthesized, group_id: str) -> list[Json]:
    rules = [render(r) for r in app.resources[group_id]["Properties"].get("SecurityGroupEgress", [])]
    for egress in app.of_type("AWS::EC2::SecurityGroupEgress").values():
        props = render(egress["Properties"])
        if props["GroupId"] == ref(group_id, "GroupId"):
            rules.append(props)
    return rules


def _ingress_rules(app: Synthesized, group_ref: str) -> list[Json]:
    rules = []
    for ingress in app.of_type("AWS::EC2::SecurityGroupIngress").values():
        props = render(ingress["Properties"])
        if props["GroupId"] == group_ref:
            rules.append(props)
    return rules


def _pods_security_group(app: Synthesized) -> str:
    """The security group on the pods' network interfaces.

    Pods take IPs from the nodes' ENIs (VPC CNI, no security groups for pods), so they carry the
    nodes' groups. A managed node group whose launch template names no security group gets the
    cluster security group (EKS User Guide, "Customize managed nodes with launch templates").
    """
    _, template = app.one("AWS::EC2::LaunchTemplate")
    data = template["LaunchTemplateData"]
    assert "SecurityGroupIds" not in data and "SecurityGroups" not in data
    assert all("Groups" not in eni for eni in data.get("NetworkInterfaces", []))
    cluster_id, _ = app.one("AWS::EKS::Cluster")
    return ref(cluster_id, "ClusterSecurityGroupId")


def _listeners(app: Synthesized) -> dict[int, Json]:
    lb_id, _ = _load_balancer(app)
    found = {}
    for listener in app.of_type("AWS::ElasticLoadBalancingV2::Listener").values():
        props = render(listener["Properties"])
        assert props["LoadBalancerArn"] == ref(lb_id)
        found[int(props["Port"])] = props
    return found


def test_internet_reaches_the_listeners_through_a_public_internet_facing_load_balancer(app: Synthesized) -> None:
    lb_id, lb = _load_balancer(app)
    assert lb["Scheme"] == "internet-facing" and lb["Type"] == "application"
    # Its subnets route 0.0.0.0/0 to the internet gateway.
    [(igw_id, _)] = app.of_type("AWS::EC2::InternetGateway").items()
    route_tables = {
        render(a["Properties"])["SubnetId"]: logical_id_of(render(a["Properties"])["RouteTableId"])
        for a in app.of_type("AWS::EC2::SubnetRouteTableAssociation").values()
    }
    routes = [render(r["Properties"]) for r in app.of_type("AWS::EC2::Route").values()]
    for subnet in lb["Subnets"]:
        table = route_tables[subnet]
        assert any(
            r["RouteTableId"] == ref(table)
            and r["DestinationCidrBlock"] == "0.0.0.0/0"
            and r.get("GatewayId") == ref(igw_id)
            for r in routes
        ), f"{subnet} has no route to the internet gateway"
    # Each listener port is open to anyone.
    ingress = [render(r) for r in app.resources[_alb_security_group(app)]["Properties"].get("SecurityGroupIngress", [])]
    listeners = _listeners(app)
    expected = {80, 443} if "domainName" in app.context else {80}
    assert set(listeners) == expected
    for port in listeners:
        assert any(r.get("CidrIp") == "0.0.0.0/0" and port_covers(r, port) for r in ingress), f"port {port} closed"


def test_listeners_forward_to_the_pod_target_group_or_redirect_to_https(app: Synthesized) -> None:
    [(tg_id, _)] = app.of_type("AWS::ElasticLoadBalancingV2::TargetGroup").items()
    listeners = _listeners(app)
    forward = {"Type": "forward", "TargetGroupArn": ref(tg_id)}
    if "domainName" in app.context:
        assert listeners[443]["Protocol"] == "HTTPS" and listeners[443]["DefaultActions"] == [forward]
        [certificate] = listeners[443]["Certificates"]
        assert app.props(logical_id_of(certificate["CertificateArn"]))["DomainName"] == app.context["domainName"]
        [redirect] = listeners[80]["DefaultActions"]
        assert redirect["Type"] == "redirect" and redirect["RedirectConfig"]["Port"] == "443"
        assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    else:
        assert listeners[80]["Protocol"] == "HTTP" and listeners[80]["DefaultActions"] == [forward]


def test_the_load_balancer_may_send_to_the_pods_and_the_pods_accept_it_on_the_container_port(app: Synthesized) -> None:
    """ALB security group egress -> pods' security group ingress, both on the container port."""
    alb_group = _alb_security_group(app)
    pods_group = _pods_security_group(app)
    egress = _egress_rules(app, alb_group)
    assert any(r.get("DestinationSecurityGroupId") == pods_group and port_covers(r, svc.PORT) for r in egress) or any(
        r.get("CidrIp") == "0.0.0.0/0" and port_covers(r, svc.PORT) for r in egress
    ), f"the ALB's security group lets nothing leave for the pods on {svc.PORT}: {egress}"
    ingress = _ingress_rules(app, pods_group)
    assert any(
        r.get("SourceSecurityGroupId") == ref(alb_group, "GroupId") and port_covers(r, svc.PORT) for r in ingress
    ), f"the pods' security group does not accept the ALB on {svc.PORT}"


def test_the_load_balancer_moves_onto_its_group_only_after_the_pods_admit_that_group(app: Synthesized) -> None:
    """On an update that gives the ALB a new group, CloudFormation updates the ALB as soon as what
    it depends on exists: the pods' ingress rule for that group must be among it."""
    lb_id, _ = _load_balancer(app)
    alb_group, pods_group = _alb_security_group(app), _pods_security_group(app)
    admitting = {
        k
        for k, r in app.of_type("AWS::EC2::SecurityGroupIngress").items()
        if render(r["Properties"]).get("SourceSecurityGroupId") == ref(alb_group, "GroupId")
        and render(r["Properties"])["GroupId"] == pods_group
    }
    assert admitting and admitting <= set(listify(app.resources[lb_id].get("DependsOn", []))), admitting


def test_the_load_balancer_may_send_only_to_the_pods_port(app: Synthesized) -> None:
    """No allow-all egress survives: a group created without egress rules in its own
    SecurityGroupEgress keeps EC2's default 0.0.0.0/0, whatever separate rules are added to it."""
    alb_group = _alb_security_group(app)
    inline = app.resources[alb_group]["Properties"].get("SecurityGroupEgress")
    assert inline, "the ALB's security group is created without egress rules, so EC2 adds allow-all"
    pods_group = _pods_security_group(app)
    assert [
        (r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("DestinationSecurityGroupId"), r.get("CidrIp"))
        for r in _egress_rules(app, alb_group)
    ] == [("tcp", svc.PORT, svc.PORT, pods_group, None)]


def test_the_pods_network_policy_admits_the_load_balancer_subnets_on_the_container_port(app: Synthesized) -> None:
    _, lb = _load_balancer(app)
    alb_cidrs = {app.props(logical_id_of(subnet))["CidrBlock"] for subnet in lb["Subnets"]}
    [deployment] = app.objects("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    namespace = deployment["metadata"]["namespace"]
    policies = [p for p in app.objects("NetworkPolicy") if p["metadata"]["namespace"] == namespace]
    assert any(p["spec"]["podSelector"] == {} and "Ingress" in p["spec"]["policyTypes"] for p in policies), (
        "expected a default-deny ingress policy (otherwise this hop proves nothing)"
    )
    admitted: set[str] = set()
    for policy in policies:
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        if not selector.items() <= pod_labels.items():
            continue
        for rule in policy["spec"].get("ingress", []):
            if any(p["port"] == svc.PORT and p.get("protocol", "TCP") == "TCP" for p in rule.get("ports", [])):
                admitted |= {peer["ipBlock"]["cidr"] for peer in rule.get("from", []) if "ipBlock" in peer}
    for cidr in alb_cidrs:  # the ALB's nodes take addresses in its subnets
        assert any(ipaddress.ip_network(cidr).subnet_of(ipaddress.ip_network(a)) for a in admitted), cidr


def test_the_target_group_reaches_the_container_port_and_checks_the_readiness_contract(app: Synthesized) -> None:
    [(tg_id, tg_resource)] = app.of_type("AWS::ElasticLoadBalancingV2::TargetGroup").items()
    tg = render(tg_resource["Properties"])
    [deployment] = app.objects("Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    [port] = container["ports"]
    assert port["containerPort"] == svc.PORT and tg["Port"] == svc.PORT
    assert tg["Protocol"] == "HTTP" and tg["TargetType"] == "ip"
    readiness = container["readinessProbe"]["httpGet"]
    assert tg["HealthCheckPath"] == readiness["path"] == svc.READINESS_PATH
    assert readiness["port"] == port["name"]
    assert tg.get("HealthCheckPort", "traffic-port") == "traffic-port"
    assert tg["Matcher"] == {"HttpCode": "200"}
    # The binding registers the Service's endpoints, whose targetPort is the container port.
    [binding] = app.objects("TargetGroupBinding")
    [service] = [s for s in app.objects("Service") if s["metadata"]["name"] == binding["spec"]["serviceRef"]["name"]]
    assert binding["spec"]["targetGroupARN"] == ref(tg_id)
    [service_port] = [p for p in service["spec"]["ports"] if p["port"] == binding["spec"]["serviceRef"]["port"]]
    assert service_port["targetPort"] in (port["name"], port["containerPort"])
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_the_cluster_nodes_and_load_balancer_sit_in_the_chosen_zones(app: Synthesized) -> None:
    """EKS refuses subnets in zones it does not support; the user picks the zones."""
    chosen = app.context.get("availabilityZones")
    _, cluster = app.one("AWS::EKS::Cluster")
    _, nodegroup = app.one("AWS::EKS::Nodegroup")
    _, lb = _load_balancer(app)
    for subnets in (cluster["ResourcesVpcConfig"]["SubnetIds"], nodegroup["Subnets"], lb["Subnets"]):
        zones = [app.props(logical_id_of(s))["AvailabilityZone"] for s in subnets]
        assert len(set(map(str, zones))) == len(zones) >= 2
        if chosen:
            assert zones == chosen
        else:  # the region's first two, whatever their names
            assert zones == [{"Fn::Select": [i, {"Fn::GetAZs": ""}]} for i in range(2)]


# --- 2-3. the checker -> the public URL; the checker -> CloudWatch ----------------------------


def _checker(app: Synthesized) -> tuple[str, Json]:
    [(fn_id, fn)] = [
        (i, r)
        for i, r in app.of_type("AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == "checker_lambda.handler.handler"
    ]
    return fn_id, render(fn["Properties"])


def test_the_checker_probes_the_listener_url_from_outside_the_vpc(app: Synthesized) -> None:
    _, fn = _checker(app)
    assert "VpcConfig" not in fn  # outside the VPC: it reaches the public URL as users do
    targets = json.loads(fn["Environment"]["Variables"]["CHECK_TARGETS"])
    # The hop across the stack boundary, at run time: the target names the parameter, the
    # cluster stack writes the URL under that name, and the checker's role may read exactly it.
    url = render(url_from_parameter(as_json(app.template), targets[0]))
    role_id = logical_id_of(fn["Role"])
    reading = [s for s in app.role_statements(role_id) if allows(s, "ssm:GetParameter")]
    arn = f"arn:${{AWS::Partition}}:ssm:{targets[0]['url_parameter_region']}:${{AWS::AccountId}}:parameter"
    assert [s["Resource"] for s in reading] == [arn + targets[0]["url_parameter"]]
    lb_id, _ = _load_balancer(app)
    listeners = _listeners(app)
    if "domainName" in app.context:
        assert url == f"https://{app.context['domainName']}{svc.HELLO_PATH}"
        [record] = [render(r["Properties"]) for r in app.of_type("AWS::Route53::RecordSet").values()]
        assert record["Name"].rstrip(".") == app.context["domainName"] and record["Type"] == "A"
        assert ref(lb_id, "DNSName") in record["AliasTarget"]["DNSName"]
        assert listeners[443]["Protocol"] == "HTTPS"
    else:
        assert url == f"http://{ref(lb_id, 'DNSName')}{svc.HELLO_PATH}"
        assert listeners[80]["Protocol"] == "HTTP"


def test_the_checker_may_put_metrics_only_into_the_contract_namespace(app: Synthesized) -> None:
    _, fn = _checker(app)
    role_id = logical_id_of(fn["Role"])
    assert "lambda.amazonaws.com" in service_principals(app.props(role_id)["AssumeRolePolicyDocument"])
    granting = [s for s in app.role_statements(role_id) if allows(s, "cloudwatch:PutMetricData")]
    assert granting, "the checker's role cannot put metrics"
    for s in granting:
        assert s["Condition"] == {"StringEquals": {"cloudwatch:namespace": contract.NAMESPACE}}
    assert not app.managed_policies(role_id)


# --- 4. every alarm -> the topic -> email and webhooks ---------------------------------------


def _topic(app: Synthesized) -> tuple[str, Json]:
    return app.one("AWS::SNS::Topic")


def test_every_alarm_reaches_the_topic_directly_or_through_a_composite_that_does(app: Synthesized) -> None:
    _every_alarm_reaches_the_topic(app)


def test_with_three_regions_every_alarm_still_reaches_the_topic() -> None:
    """The per-location alarms have no actions: each reaches the topic through a composite (the
    quorum's service-down, 'location alone', 'a checker silent')."""
    context = {"alertEmail": EMAIL, "checkerRegions": json.dumps(["us-east-1", "eu-west-1", "ap-southeast-2"])}
    template = synth(**context)
    app = Synthesized("three-regions", context, template, {})
    notify_alone = (contract.LATENCY, contract.CHECKER_ERRORS, contract.URL_READ_FAILURES)
    per_location = [  # availability and heartbeat per location (home latency, remote errors, URL reads notify alone)
        k
        for k, a in app.of_type("AWS::CloudWatch::Alarm").items()
        if "Location" in json.dumps(a["Properties"]) and a["Properties"].get("MetricName") not in notify_alone
    ]
    assert len(per_location) >= 6 and not any("AlarmActions" in app.props(k) for k in per_location)
    _every_alarm_reaches_the_topic(app)


def _every_alarm_reaches_the_topic(app: Synthesized) -> None:
    topic_id, _ = _topic(app)
    alarms = {**app.of_type("AWS::CloudWatch::Alarm"), **app.of_type("AWS::CloudWatch::CompositeAlarm")}
    notifies = {i for i, a in alarms.items() if ref(topic_id) in render(a["Properties"]).get("AlarmActions", [])}
    assert notifies
    # A composite's rule names its children by ARN: ALARM("${Child.Arn}").
    feeds: dict[str, set[str]] = {}
    for composite_id, composite in app.of_type("AWS::CloudWatch::CompositeAlarm").items():
        rule = str(render(composite["Properties"])["AlarmRule"])
        for child in re.findall(r"\$\{([A-Za-z0-9]+)\.Arn\}", rule):
            feeds.setdefault(child, set()).add(composite_id)
    reaches = set(notifies)
    changed = True
    while changed:
        changed = False
        for child, parents in feeds.items():
            if child not in reaches and parents & reaches:
                reaches.add(child)
                changed = True
    assert set(alarms) == reaches, f"alarms that page nobody: {sorted(set(alarms) - reaches)}"
    for alarm_id in notifies:  # paging alarms also say when it is over
        assert ref(topic_id) in render(alarms[alarm_id]["Properties"]).get("OKActions", [])


def test_the_topic_accepts_cloudwatch_alarms_of_this_account_only(app: Synthesized) -> None:
    topic_id, topic = _topic(app)
    policies = [render(p["Properties"]) for p in app.of_type("AWS::SNS::TopicPolicy").values()]
    [policy] = [p for p in policies if ref(topic_id) in p["Topics"]]
    document = statements(policy["PolicyDocument"])
    [allow] = [
        s
        for s in document
        if s["Effect"] == "Allow" and "cloudwatch.amazonaws.com" in listify(s["Principal"].get("Service", []))
    ]
    assert allows(allow, "sns:Publish") and allow["Resource"] == ref(topic_id)
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": ref("AWS::AccountId")}
    source_arn = allow["Condition"]["ArnLike"]["aws:SourceArn"]
    assert source_arn == f"arn:{ref('AWS::Partition')}:cloudwatch:{ref('AWS::Region')}:{ref('AWS::AccountId')}:alarm:*"
    # The only deny is for plain HTTP, which CloudWatch does not use.
    for s in document:
        if s["Effect"] == "Deny":
            assert s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # The topic is encrypted; CloudWatch may use the key to publish to it.
    key_id = logical_id_of(topic["KmsMasterKeyId"])
    key_statements = statements(app.props(key_id)["KeyPolicy"])
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        [grant] = [
            s
            for s in key_statements
            if allows(s, action) and "cloudwatch.amazonaws.com" in listify(s["Principal"].get("Service", []))
        ]
        # AWS documents no condition keys on CloudWatch's KMS request: one that does not match
        # would fail every page silently, so there is none.
        assert "Condition" not in grant, grant


def test_the_topic_delivers_to_the_email_and_every_webhook(app: Synthesized) -> None:
    topic_id, _ = _topic(app)
    subscriptions = {
        (s["Protocol"], s["Endpoint"])
        for s in (render(r["Properties"]) for r in app.of_type("AWS::SNS::Subscription").values())
        if s["TopicArn"] == ref(topic_id)
    }
    expected = {("email", EMAIL)} | {("https", url) for url in app.context.get("alertWebhooks", [])}
    assert subscriptions == expected


# --- 5. nodes -> the image ------------------------------------------------------------------

ARCHITECTURE = {  # AMI type -> (image platform, kubernetes.io/arch)
    "AL2023_x86_64_STANDARD": ("linux/amd64", "amd64"),
    "AL2023_ARM_64_STANDARD": ("linux/arm64", "arm64"),
}


def test_nodes_can_pull_the_image_built_for_their_architecture(app: Synthesized) -> None:
    _, nodegroup = app.one("AWS::EKS::Nodegroup")
    role_id = logical_id_of(nodegroup["NodeRole"])
    assert "AmazonEC2ContainerRegistryReadOnly" in app.managed_policies(role_id)
    [image] = app.assets["dockerImages"].values()
    [destination] = image["destinations"].values()
    [deployment] = app.objects("Deployment")
    spec = deployment["spec"]["template"]["spec"]
    [container] = spec["containers"]
    # The bootstrap asset repository in this account and region, under the content-hash tag.
    assert container["image"].endswith(f"/{destination['repositoryName']}:{destination['imageTag']}")
    assert container["image"].startswith(f"{ref('AWS::AccountId')}.dkr.ecr.{ref('AWS::Region')}.")
    platform, arch = ARCHITECTURE[nodegroup["AmiType"]]
    assert image["source"]["platform"] == platform
    assert spec["nodeSelector"]["kubernetes.io/arch"] == arch


# --- 6. Cluster Autoscaler -> EC2 / Auto Scaling, and -> the Kubernetes API -------------------


def _pod_identity(app: Synthesized, service_account: str) -> Json:
    associations = [render(r["Properties"]) for r in app.of_type("AWS::EKS::PodIdentityAssociation").values()]
    [association] = [a for a in associations if a["ServiceAccount"] == service_account]
    return association


def _assumable_by_pod_identity(app: Synthesized, role_id: str) -> None:
    trust = service_principals(app.props(role_id)["AssumeRolePolicyDocument"])
    assert {"sts:AssumeRole", "sts:TagSession"} <= trust.get("pods.eks.amazonaws.com", set())
    addons = {render(a["Properties"])["AddonName"] for a in app.of_type("AWS::EKS::Addon").values()}
    assert "eks-pod-identity-agent" in addons  # the agent that hands pods the role's credentials


def test_cluster_autoscaler_can_scale_this_clusters_node_groups(app: Synthesized) -> None:
    cluster_id, cluster = app.one("AWS::EKS::Cluster")
    chart = helm_charts(app.template)["cluster-autoscaler"]
    values = chart["Values"]
    account = values["rbac"]["serviceAccount"]
    assert account["create"] is False
    association = _pod_identity(app, account["name"])
    assert association["Namespace"] == chart["Namespace"] and association["ClusterName"] == ref(cluster_id)
    [_] = [  # the service account exists, where the chart looks for it
        o
        for o in app.objects("ServiceAccount")
        if o["metadata"]["name"] == account["name"] and o["metadata"]["namespace"] == chart["Namespace"]
    ]
    # Pod Identity hands credentials only to pods started after the association and the agent.
    [(agent_id, _)] = [
        (i, a)
        for i, a in app.of_type("AWS::EKS::Addon").items()
        if a["Properties"]["AddonName"] == "eks-pod-identity-agent"
    ]
    [(association_id, _)] = [
        (i, a)
        for i, a in app.of_type("AWS::EKS::PodIdentityAssociation").items()
        if a["Properties"]["ServiceAccount"] == account["name"]
    ]
    [chart_id] = [
        i
        for i, r in app.of_type("Custom::AWSCDK-EKS-HelmChart").items()
        if r["Properties"]["Release"] == "cluster-autoscaler"
    ]
    assert {association_id, agent_id} <= app.depends_on(chart_id)
    # Pods cannot reach instance metadata (IMDSv2, hop limit 1): the region must be given.
    assert values["awsRegion"] == ref("AWS::Region")
    role_id = logical_id_of(association["RoleArn"])
    _assumable_by_pod_identity(app, role_id)
    granted = app.role_statements(role_id)
    for action in ("autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstanceTypes", "eks:DescribeNodegroup"):
        assert any(allows(s, action) for s in granted), action
    owned_tag = f"k8s.io/cluster-autoscaler/{cluster['Name']}"
    for action in ("autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"):
        [s] = [s for s in granted if allows(s, action)]
        assert s["Condition"] == {"StringEquals": {f"aws:ResourceTag/{owned_tag}": "owned"}}
    # It discovers the node groups by the tags EKS puts on managed node groups' Auto Scaling groups
    # (EKS User Guide, "Managed node groups": k8s.io/cluster-autoscaler/enabled and .../<cluster>).
    assert values["autoDiscovery"]["clusterName"] == cluster["Name"]
    assert "tags" not in values["autoDiscovery"]  # the chart's defaults are those tags


def test_cluster_autoscaler_runs_the_chart_whose_rbac_matches_its_version(app: Synthesized) -> None:
    _, cluster = app.one("AWS::EKS::Cluster")
    chart = helm_charts(app.template)["cluster-autoscaler"]
    facts = UPSTREAM["cluster_autoscaler_chart"]["versions"].get(chart["Version"])
    assert facts, f"chart {chart['Version']} is not in tests/data/upstream.json: add its facts (cdk_app/versions.py)"
    # The image the chart runs is the one its RBAC was written for: no override.
    assert "tag" not in chart["Values"].get("image", {}), "override the chart, not its image"
    running = facts["image_tag"].lstrip("v")
    assert running.split(".")[:2] == cluster["Version"].split("."), (
        f"chart {chart['Version']} runs autoscaler {running} on Kubernetes {cluster['Version']}"
    )
    assert facts["appVersion"].split(".")[:2] == cluster["Version"].split(".")
    assert facts["rbac_resource_k8s_io"], "1.35 needs resource.k8s.io (DRA) read access in its ClusterRole"


# --- 7. Container Insights -> CloudWatch; the load balancer controller -> the target group ---


def test_container_insights_agents_can_write_metrics_and_logs(app: Synthesized) -> None:
    addons = {
        render(a["Properties"])["AddonName"]: render(a["Properties"]) for a in app.of_type("AWS::EKS::Addon").values()
    }
    observability = addons["amazon-cloudwatch-observability"]
    facts = UPSTREAM["amazon_cloudwatch_observability_chart"]
    [association] = observability["PodIdentityAssociations"]
    assert association["ServiceAccount"] == facts["service_account"]  # the agent's and Fluent Bit's
    role_id = logical_id_of(association["RoleArn"])
    _assumable_by_pod_identity(app, role_id)
    assert "CloudWatchAgentServerPolicy" in app.managed_policies(role_id)  # PutMetricData, PutLogEvents
    [(addon_id, _)] = [
        (i, a)
        for i, a in app.of_type("AWS::EKS::Addon").items()
        if a["Properties"]["AddonName"] == "amazon-cloudwatch-observability"
    ]
    [agent_id] = [
        i for i, a in app.of_type("AWS::EKS::Addon").items() if a["Properties"]["AddonName"] == "eks-pod-identity-agent"
    ]
    assert agent_id in app.depends_on(addon_id)


def test_the_controller_runs_the_image_its_chart_names(app: Synthesized) -> None:
    """Not aws-cdk-lib's default (a private us-west-2 registry whose tags cannot be read without
    an account): the chart's own image at its appVersion, as recorded from the source."""
    controller = helm_charts(app.template)["aws-load-balancer-controller"]
    facts = UPSTREAM["aws_load_balancer_controller_chart"]["versions"][controller["Version"]]
    image = controller["Values"]["image"]
    assert image == {"repository": facts["image"]["repository"], "tag": facts["image"]["tag"]}
    assert image["tag"] == facts["appVersion"]


def test_the_observability_add_on_instruments_no_workload_on_its_own(app: Synthesized) -> None:
    """Application Signals auto-monitoring off, at the key path the chart reads (upstream.json)."""
    [observability] = [
        render(a["Properties"])
        for a in app.of_type("AWS::EKS::Addon").values()
        if a["Properties"]["AddonName"] == "amazon-cloudwatch-observability"
    ]
    value: Any = json.loads(observability["ConfigurationValues"])
    for key in UPSTREAM["amazon_cloudwatch_observability_chart"]["auto_monitor"]["key"].split("."):
        value = value[key]
    assert value is False


def test_the_controller_binds_the_target_group_with_a_binding_its_crd_accepts(app: Synthesized) -> None:
    [(tg_id, _)] = app.of_type("AWS::ElasticLoadBalancingV2::TargetGroup").items()
    controller = helm_charts(app.template)["aws-load-balancer-controller"]
    facts = UPSTREAM["aws_load_balancer_controller_chart"]["versions"].get(controller["Version"])
    assert facts, f"controller chart {controller['Version']} is not in tests/data/upstream.json"
    crd = facts["target_group_binding"]
    [binding] = app.objects("TargetGroupBinding")
    group, version = binding["apiVersion"].split("/")
    assert group == crd["group"] and version == crd["storage_version"]
    errors = list(_validate(binding, crd["schema_v1beta1"], "TargetGroupBinding"))
    assert not errors, errors
    assert binding["spec"]["targetGroupARN"] == ref(tg_id)
    # An IP target group must be in the VPC the controller manages.
    assert app.props(tg_id)["VpcId"] == controller["Values"]["vpcId"]
    # The controller's role may register targets in any of its target groups.
    [account] = [
        o
        for o in app.objects("ServiceAccount")
        if o["metadata"]["name"] == controller["Values"]["serviceAccount"]["name"]
    ]
    role_arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    role_id = logical_id_of(role_arn)
    # IRSA: the role trusts this cluster's OIDC issuer, for exactly this service account.
    cluster_id, _ = app.one("AWS::EKS::Cluster")
    [trust] = statements(app.props(role_id)["AssumeRolePolicyDocument"])
    provider = trust["Principal"]["Federated"]
    assert app.props(logical_id_of(provider))["Url"] == ref(cluster_id, "OpenIdConnectIssuerUrl")
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    condition = trust["Condition"]["StringEquals"]
    if isinstance(condition, str):  # computed at deploy time by a CfnJson resource
        condition = json.loads(app.props(logical_id_of(condition))["Value"])
    issuer = f"{provider}#split(:oidc-provider/)[1]"
    subject = f"system:serviceaccount:{account['metadata']['namespace']}:{account['metadata']['name']}"
    assert condition == {f"{issuer}:aud": "sts.amazonaws.com", f"{issuer}:sub": subject}
    granted = app.role_statements(role_id)
    assert any(
        allows(s, "elasticloadbalancing:RegisterTargets") and ":targetgroup/*/*" in str(s["Resource"]) for s in granted
    )


def test_the_controller_does_not_intercept_services_it_will_never_serve(app: Synthesized) -> None:
    """Its Service webhook (failurePolicy Fail) rejects Services while the controller is not ready;
    this stack has no LoadBalancer Service, so the webhook is off."""
    controller = helm_charts(app.template)["aws-load-balancer-controller"]
    webhook = UPSTREAM["aws_load_balancer_controller_chart"]["versions"][controller["Version"]][
        "service_mutator_webhook"
    ]
    assert controller["Values"][webhook["value"]] is False
    assert not [s for s in app.objects("Service") if s["spec"].get("type") == "LoadBalancer"]


def _validate(value: Any, schema: Json, path: str):
    """Strict validation (as `kubectl apply --validate=strict`): types, enums, required, no unknown fields."""
    kind = schema.get("type")
    if "x-kubernetes-int-or-string" in schema:
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            yield f"{path}: not an int or a string"
        return
    if kind == "object":
        if not isinstance(value, dict):
            yield f"{path}: not an object"
            return
        for key in schema.get("required", []):
            if key not in value:
                yield f"{path}.{key}: required"
        known = schema.get("properties")
        if known is None:
            return
        for key, item in value.items():
            if key not in known:
                yield f"{path}.{key}: unknown field"
            else:
                yield from _validate(item, known[key], f"{path}.{key}")
    elif kind == "string":
        if not isinstance(value, str):
            yield f"{path}: not a string"
        elif "enum" in schema and value not in schema["enum"]:
            yield f"{path}: {value!r} not in {schema['enum']}"
    elif kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        yield f"{path}: not an integer"
    elif kind == "boolean" and not isinstance(value, bool):
        yield f"{path}: not a boolean"


def test_strict_validation_rejects_what_the_crd_would() -> None:
    schema = UPSTREAM["aws_load_balancer_controller_chart"]["versions"]["3.2.2"]["target_group_binding"][
        "schema_v1beta1"
    ]
    good = {"apiVersion": "x", "kind": "y", "metadata": {}, "spec": {"serviceRef": {"name": "a", "port": 80}}}
    assert not list(_validate(good, schema, "t"))
    for spec, error in (
        ({}, "t.spec.serviceRef: required"),
        ({"serviceRef": {"name": "a", "port": 80}, "targetType": "pod"}, "t.spec.targetType: 'pod' not in"),
        ({"serviceRef": {"name": "a", "port": 80}, "targetGroupArn": "x"}, "t.spec.targetGroupArn: unknown field"),
        ({"serviceRef": {"name": "a", "port": True}}, "t.spec.serviceRef.port: not an int or a string"),
    ):
        assert any(e.startswith(error) for e in _validate({**good, "spec": spec}, schema, "t")), spec
