"""The stack-output reader `make status` and `make drill` share (tools/outputs.py): the file
`make deploy` writes, and CloudFormation (moto) when there is none."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from cdk_app.config import MONITORING_STACK_NAME, STACK_NAME, checker_stack_name
from tools import outputs

COMPOSITE = "hello-service-down"


def test_the_file_merges_the_home_stacks_and_names_each_checker_stacks_first_run(tmp_path: Path) -> None:
    path = tmp_path / "cdk-outputs.json"
    path.write_text(
        json.dumps(
            {
                STACK_NAME: {"HelloUrl": "http://x/hello"},
                MONITORING_STACK_NAME: {"ServiceDownAlarmName": COMPOSITE, "FirstRun": "us-east-1: hello up"},
                checker_stack_name("eu-west-1"): {"FirstRun": "eu-west-1: hello up"},
                "SomeoneElse": {"HelloUrl": "http://not-ours/"},
            }
        )
    )
    assert outputs.from_file(path) == {
        "HelloUrl": "http://x/hello",
        "ServiceDownAlarmName": COMPOSITE,
        "FirstRun": "us-east-1: hello up",
        f"FirstRun {checker_stack_name('eu-west-1')}": "eu-west-1: hello up",
    }


def test_a_file_without_the_home_stacks_is_none_and_a_conflict_or_bad_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cdk-outputs.json"
    assert outputs.from_file(path) is None
    path.write_text(json.dumps({"SomeoneElse": {"HelloUrl": "http://not-ours/"}}))
    assert outputs.from_file(path) is None
    path.write_text(
        json.dumps({STACK_NAME: {"HelloUrl": "http://a/"}, MONITORING_STACK_NAME: {"HelloUrl": "http://b/"}})
    )
    with pytest.raises(outputs.OutputsError, match=r"^output HelloUrl has two values \('http://a/', 'http://b/'\)"):
        outputs.from_file(path)
    path.write_text("{")
    with pytest.raises(outputs.OutputsError, match="is not valid JSON .*: delete it to read the outputs from AWS$"):
        outputs.from_file(path)


def create(cfn, name: str, values: dict[str, str]) -> None:
    template = {
        "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in values.items()},
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_cloudformation_gives_the_home_stacks_of_the_region_asked(aws_env: str) -> None:
    home = boto3.client("cloudformation", region_name="eu-west-1")
    create(home, MONITORING_STACK_NAME, {"AlertTopicArn": "arn:aws:sns:eu-west-1:1:t", "DrillAlarmName": "d"})
    create(home, "SomeoneElse", {"HelloUrl": "http://not-ours/"})
    # Checker-only: no cluster stack, and no URL.
    assert outputs.from_cloudformation(home, "eu-west-1", "make drill") == {
        "AlertTopicArn": "arn:aws:sns:eu-west-1:1:t",
        "DrillAlarmName": "d",
    }
    create(home, STACK_NAME, {"HelloUrl": "http://x/hello"})
    assert outputs.from_cloudformation(home, "eu-west-1", "make drill")["HelloUrl"] == "http://x/hello"
    elsewhere = boto3.client("cloudformation", region_name="sa-east-1")
    with pytest.raises(outputs.OutputsError) as error:
        outputs.from_cloudformation(elsewhere, "sa-east-1", "make status")
    assert str(error.value) == (
        f"no stack {MONITORING_STACK_NAME} in sa-east-1: deploy it (make deploy), or name its region: "
        "make status ARGS='--region <region>'"
    )


def test_the_home_region_is_the_topics_else_the_dashboards() -> None:
    assert outputs.region_of({"AlertTopicArn": "arn:aws:sns:eu-north-1:1:t"}) == "eu-north-1"
    dashboard = "https://x.console.aws.amazon.com/cloudwatch/home?region=ap-south-1#dashboards"
    assert outputs.region_of({"DashboardUrl": dashboard}) == "ap-south-1"
    assert outputs.region_of({}) is None
