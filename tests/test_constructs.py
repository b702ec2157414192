"""Each construct made in a bare Stack from the values it takes, no AppConfig (STYLE.md: a
construct gets only the values it needs, as backend/component.py in
aws-samples/aws-cdk-project-structure-python, and is tested in a bare Stack)."""

from __future__ import annotations

from aws_cdk import App, Stack
from aws_cdk.assertions import Match, Template

from cdk_app.checker import CheckerView, FirstRun, HealthChecker
from cdk_app.config import AppConfig

ENVIRONMENT = {"CHECK_TARGETS": '[{"name":"site","url":"https://www.example.com/"}]'}


def bare_stack() -> Stack:
    return Stack(App(builtin_cloud_formation_validation=False))


def test_a_checker_is_made_of_its_view_alone() -> None:
    stack = bare_stack()
    view = CheckerView(environment=ENVIRONMENT, timeout_seconds=77, schedule_minutes=3, log_retention_days=7)
    checker = HealthChecker(stack, "Checker", view=view, url_parameter_arn="arn:aws:ssm:eu-west-1:1:parameter/u")
    FirstRun(stack, "FirstRun", checker=checker, log_retention_days=14, location="eu-west-1")
    t = Template.from_stack(stack)
    t.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "checker_lambda.handler.handler", "Timeout": 77, "Environment": {"Variables": ENVIRONMENT}},
    )
    t.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(3 minutes)"})
    assert sorted(p["Properties"]["RetentionInDays"] for p in t.find_resources("AWS::Logs::LogGroup").values()) == [
        7,
        14,
    ]
    t.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "ssm:GetParameter",
                            "Effect": "Allow",
                            "Resource": "arn:aws:ssm:eu-west-1:1:parameter/u",
                        }
                    ]
                )
            }
        },
    )
    t.has_resource_properties("Custom::CheckerFirstRun", {"Location": "eu-west-1", "Timeout": "77", **ENVIRONMENT})


def test_the_alarms_topic_and_dashboard_are_made_of_their_view_and_the_plan() -> None:
    import json

    from cdk_app import alarm_plan
    from cdk_app.monitoring import Monitoring, MonitoringView, Watched
    from tests.infra import DEFAULTS

    config = AppConfig.from_context(
        {**DEFAULTS, "cluster": False, "extraTargets": json.dumps([{"name": "site", "url": "https://x.example/"}])}.get
    )
    stack = bare_stack()
    view = CheckerView(environment=ENVIRONMENT, timeout_seconds=77, schedule_minutes=1, log_retention_days=7)
    checker = HealthChecker(stack, "Checker", view=view)
    first = FirstRun(stack, "FirstRun", checker=checker, log_retention_days=7, location="us-east-1")
    monitoring = MonitoringView(
        name_prefix="demo",
        alert_email="oncall@example.com",
        alert_webhooks=("https://chat.example.com/hook",),
        alert_channels=(),
        runbook_url=None,
        log_retention_days=7,
        slo_target_percent=99.5,
        latency_percentile="p99",
        cert_expiry_days=21,
        cluster_name=None,
        namespace=None,
    )
    watched = Watched(
        checker=checker.function,
        checker_logs=checker.log_group,
        checker_rule=checker.rule,
        load_balancer=None,
        target_group=None,
    )
    Monitoring(
        stack, "Monitoring", view=monitoring, plan=alarm_plan.plan(config), watched=watched, after=first.resource
    )
    t = Template.from_stack(stack)
    t.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"})
    t.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "https", "Endpoint": "https://chat.example.com/hook"}
    )
    t.has_resource_properties("AWS::Logs::QueryDefinition", {"Name": "demo/failed-probes-by-reason"})
    t.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardName": "demo-health"})
    # The view's own values reach the dashboard (not the configuration's defaults: 99.9, p95, 14).
    [dashboard] = t.find_resources("AWS::CloudWatch::Dashboard").values()
    body = "".join(p for p in dashboard["Properties"]["DashboardBody"]["Fn::Join"][1] if isinstance(p, str))
    assert "**SLO** 99.5% of probes" in body and "Latency alarm: p99 >" in body, body
    assert '{"value":21,"label":"alarm"' in body  # the certificate panel's line at certExpiryDays


def test_the_cluster_is_made_of_its_view_alone() -> None:
    from cdk_app.cluster import ClusterView, HelloCluster

    stack = bare_stack()
    view = ClusterView(
        cluster_name="demo-cluster",
        log_retention_days=7,
        admin_principals=(),
        api_cidrs=("203.0.113.0/24",),
        availability_zones=(),
        nat_gateways=1,
        vpc_endpoints=False,
        node_instance_type="t4g.medium",
        node_arm64=True,
        node_capacity_type="SPOT",
        node_count=3,
        node_max_count=5,
    )
    HelloCluster(stack, "Cluster", config=view)
    t = Template.from_stack(stack)
    t.has_resource_properties(
        "AWS::EKS::Nodegroup",
        {
            "InstanceTypes": ["t4g.medium"],
            "AmiType": Match.string_like_regexp("ARM_64"),
            "CapacityType": "SPOT",
            "ScalingConfig": {"DesiredSize": 3, "MinSize": 3, "MaxSize": 5},
        },
    )
    t.has_resource_properties(
        "AWS::EKS::Cluster",
        {"Name": "demo-cluster", "ResourcesVpcConfig": Match.object_like({"PublicAccessCidrs": ["203.0.113.0/24"]})},
    )
