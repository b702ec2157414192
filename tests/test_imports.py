"""What synth and the tools load: the checker's budgets and log line, never its runtime.

Each import runs in a fresh interpreter, so what another test imported does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The checker's runtime: the run loop, the handler, the URL reader, and the AWS SDK they use.
RUNTIME = ("checker_lambda.run", "checker_lambda.handler", "checker_lambda.urls", "boto3", "botocore.client")


def loaded(module: str) -> set[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("module", ["cdk_app.config", "cdk_app.alarm_plan", "app"])
def test_synth_loads_none_of_the_checkers_runtime(module: str) -> None:
    assert not set(RUNTIME) & loaded(module)


def test_the_drill_loads_the_real_constants_without_the_cdk() -> None:
    """`make drill` runs on the light install (no aws-cdk-lib): it imports the plan's constants,
    which must not bring the CDK with them."""
    modules = loaded("tools.drill.cli")
    assert "cdk_app.alarm_plan" in modules
    assert not {m for m in modules if m.split(".")[0] in ("aws_cdk", "jsii", "constructs")}
