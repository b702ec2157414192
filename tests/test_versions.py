"""Upgrades are one change: synth refuses a Kubernetes version whose upstream facts are missing."""

from __future__ import annotations

import dataclasses

import aws_cdk as cdk
import pytest

from cdk_app import versions
from cdk_app.config import ConfigError
from cdk_app.stack import build


def test_the_pinned_version_has_every_fact() -> None:
    assert versions.missing_facts(versions.KUBERNETES_VERSION) == []
    versions.check()
    assert versions.RELEASES[versions.KUBERNETES_VERSION].cluster_autoscaler_chart == versions.CLUSTER_AUTOSCALER_CHART


def test_a_version_without_facts_is_refused_in_one_line_naming_each_and_where_to_read_it() -> None:
    with pytest.raises(ConfigError) as refused:
        versions.check("1.99")
    message = str(refused.value)
    assert "\n" not in message and message.startswith("cdk_app/versions.py: KUBERNETES_VERSION 1.99 lacks 5 fact(s)")
    for fact, where in (
        ("EKS support", "KubernetesVersion.V1_99"),
        ("kubectl layer", "aws-cdk.lambda-layer-kubectl-v99"),
        ("autoscaler chart", "cluster-autoscaler-chart-"),
        ("load balancer controller", "AlbControllerVersion"),
        ("add-ons", "describe-addon-versions --kubernetes-version 1.99"),
    ):
        assert f"{fact}: " in message and where in message, fact


def test_a_release_entry_missing_one_fact_names_only_that_one(monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = versions.RELEASES[versions.KUBERNETES_VERSION]
    short = dataclasses.replace(pinned, addons=tuple(a for a in pinned.addons if a != "metrics-server"))
    monkeypatch.setitem(versions.RELEASES, versions.KUBERNETES_VERSION, short)
    [line] = versions.missing_facts(versions.KUBERNETES_VERSION)
    assert line.startswith("add-ons: aws eks describe-addon-versions")
    monkeypatch.setitem(
        versions.RELEASES, versions.KUBERNETES_VERSION, dataclasses.replace(pinned, alb_controller="V9_9")
    )
    [line] = versions.missing_facts(versions.KUBERNETES_VERSION)
    assert line.startswith("load balancer controller: ")


def test_synth_stops_before_building_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(versions, "KUBERNETES_VERSION", "1.99")
    app = cdk.App()
    with pytest.raises(ConfigError, match="KUBERNETES_VERSION 1.99 lacks"):
        build(app)
    assert app.node.children == []
