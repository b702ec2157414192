"""Each construct made in a bare Stack from the values it takes, no AppConfig (STYLE.md: a
construct gets only the values it needs, as backend/component.py in
aws-samples/aws-cdk-project-structure-python, and is tested in a bare Stack)."""

from __future__ import annotations

from aws_cdk import App, Stack
from aws_cdk.assertions import Match, Template

from cdk_app.checker import CheckerView, FirstRun, HealthChecker

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
