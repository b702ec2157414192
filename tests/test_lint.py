"""The code stays lint-clean and typed: the same checks as `make lint` and the CI workflow."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

CODE = ["app.py", "cdk_app", "service", "checker_lambda", "notifier", "tools", "bench"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check_and_format() -> None:
    check = run("ruff", "check", ".")
    assert check.returncode == 0, check.stdout
    fmt = run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout


def test_mypy() -> None:
    done = run("mypy", *CODE)
    assert done.returncode == 0, done.stdout
