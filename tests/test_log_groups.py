"""Destroy, then deploy again: log groups whose names AWS fixes must not block the second deploy.

EKS and Container Insights create their log groups whenever they write and the group is missing,
so a group can outlive `cdk destroy`. The stack adopts those groups (create if absent, set
retention, delete with the stack) instead of declaring AWS::Logs::LogGroup, which fails with
"already exists". The calls are read from the template and replayed against a CloudWatch Logs
emulator (moto server), a left-over group included.
"""

from __future__ import annotations

import json
import re

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.infra import DEFAULTS, as_json, default_template, render, resources

CLUSTER = f"{DEFAULTS['namePrefix']}-cluster"
CONTROL_PLANE = f"/aws/eks/{CLUSTER}/cluster"
CONTAINER_INSIGHTS = [
    f"/aws/containerinsights/{CLUSTER}/{g}" for g in ("application", "dataplane", "host", "performance")
]
FIXED_NAMES = [CONTROL_PLANE, *CONTAINER_INSIGHTS]


def _calls(kind: str) -> dict[str, tuple[str, dict]]:
    """Custom resources of `kind` by log group name: (logical id, {event: sdk call})."""
    found = {}
    for logical_id, resource in resources(default_template(), kind).items():
        props = render(resource["Properties"])
        calls = {event: json.loads(props[event]) for event in ("Create", "Update", "Delete") if event in props}
        [name] = {c["parameters"]["logGroupName"] for c in calls.values()}
        found[name] = (logical_id, calls)
    return found


def _depends_on(logical_id: str) -> set[str]:
    return set(as_json(default_template())["Resources"][logical_id].get("DependsOn", []))


def test_no_fixed_name_log_group_is_declared_as_a_log_group_resource() -> None:
    declared = {
        render(r["Properties"]).get("LogGroupName")
        for r in resources(default_template(), "AWS::Logs::LogGroup").values()
    }
    assert not declared & set(FIXED_NAMES)


def test_each_fixed_name_group_is_adopted_given_retention_and_deleted_with_the_stack() -> None:
    groups, retentions = _calls("Custom::AdoptedLogGroup"), _calls("Custom::LogGroupRetention")
    assert set(groups) == set(retentions) == set(FIXED_NAMES)
    for name in FIXED_NAMES:
        group_id, group = groups[name]
        assert group["Create"]["action"] == "createLogGroup"
        assert re.search(group["Create"]["ignoreErrorCodesMatching"], "ResourceAlreadyExistsException")
        assert group["Update"] == group["Create"]  # a new name adopts a new group, the old is deleted
        assert group["Delete"]["action"] == "deleteLogGroup"
        assert re.search(group["Delete"]["ignoreErrorCodesMatching"], "ResourceNotFoundException")
        retention_id, retention = retentions[name]
        for event in ("Create", "Update"):
            assert retention[event]["action"] == "putRetentionPolicy"
            assert retention[event]["parameters"]["retentionInDays"] == DEFAULTS["logRetentionDays"]
        assert group_id in _depends_on(retention_id)


def test_the_writers_start_after_their_groups_and_stop_before_the_groups_are_deleted() -> None:
    """CloudFormation creates a resource after what it depends on and deletes it before."""
    groups, retentions = _calls("Custom::AdoptedLogGroup"), _calls("Custom::LogGroupRetention")
    [(cluster_id, _)] = resources(default_template(), "AWS::EKS::Cluster").items()
    [observability_id] = [
        i
        for i, r in resources(default_template(), "AWS::EKS::Addon").items()
        if r["Properties"]["AddonName"] == "amazon-cloudwatch-observability"
    ]
    for writer, names in ((cluster_id, [CONTROL_PLANE]), (observability_id, CONTAINER_INSIGHTS)):
        for name in names:
            assert {groups[name][0], retentions[name][0]} <= _depends_on(writer), (writer, name)


def _replay(client, call: dict) -> None:
    """What the AwsCustomResource handler does with one call: invoke, and ignore an error whose
    name the pattern matches (`new RegExp(pattern).test(e.name)`: a search, not a full match)."""
    action = re.sub(r"(?<!^)(?=[A-Z])", "_", call["action"]).lower()
    try:
        getattr(client, action)(**call["parameters"])
    except ClientError as error:
        ignore = call.get("ignoreErrorCodesMatching")
        if not (ignore and re.search(ignore, error.response["Error"]["Code"])):
            raise


@pytest.mark.parametrize("left_over", [False, True], ids=["fresh", "left-over-group"])
def test_deploy_destroy_deploy_replayed_against_cloudwatch_logs(aws_env: str, left_over: bool) -> None:
    client = boto3.client("logs")
    groups, retentions = _calls("Custom::AdoptedLogGroup"), _calls("Custom::LogGroupRetention")
    for name in FIXED_NAMES:
        if _exists(client, name):
            client.delete_log_group(logGroupName=name)
        if left_over:  # EKS wrote after the last destroy: the group is back, with no retention
            client.create_log_group(logGroupName=name)
        for _round in range(2):  # deploy, destroy, deploy again
            _replay(client, groups[name][1]["Create"])
            _replay(client, retentions[name][1]["Create"])
            assert _retention(client, name) == DEFAULTS["logRetentionDays"]
            _replay(client, groups[name][1]["Delete"])
            assert not _exists(client, name)
            client.create_log_group(logGroupName=name)  # ...and the writer recreates it
        _replay(client, groups[name][1]["Delete"])
        _replay(client, groups[name][1]["Delete"])  # already gone: not an error


def _exists(client, name: str) -> bool:
    found = client.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return any(g["logGroupName"] == name for g in found)


def _retention(client, name: str) -> int | None:
    [group] = [g for g in client.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    return group.get("retentionInDays")
