"""What the installed libraries, the assembly and cdk.json say, read without importing aws_cdk."""

from __future__ import annotations

import ast
import functools
import json
import re
import tarfile
from collections.abc import Mapping
from importlib import metadata, util
from pathlib import Path
from typing import Any

from cdk_app.config import (
    CHECKER_STACK_PREFIX,
    MONITORING_STACK_NAME,
    STACK_NAME,
    AppConfig,
)

ROOT = Path(__file__).resolve().parents[2]


# --- what the installed libraries and the assembly say, read without importing aws_cdk ------


def kubernetes_version() -> str:
    """cdk_app.versions.KUBERNETES_VERSION, read from the source: importing the module starts
    the CDK's jsii runtime (Node.js), several seconds a preflight does not need."""
    tree = ast.parse((ROOT / "cdk_app" / "versions.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "KUBERNETES_VERSION" for t in node.targets
        ):
            return str(ast.literal_eval(node.value))
    raise LookupError("KUBERNETES_VERSION not found in cdk_app/versions.py")


def bootstrap_requirement(assembly: Path = ROOT / "cdk.out") -> tuple[int, str]:
    """The bootstrap stack version this app needs, and where that came from.

    First the installed aws-cdk-lib (the one `make deploy` synthesizes with): its
    DefaultStackSynthesizer's MIN_BOOTSTRAP_STACK_VERSION, which synth writes into the cloud
    assembly as `requiresBootstrapStackVersion`. If the library's bundle cannot be read (a
    reshuffled release), the last synth's cdk.out/manifest.json.
    """
    errors = []
    try:
        return _bootstrap_requirement_from_library()
    except (OSError, LookupError, tarfile.TarError) as exc:
        errors.append(f"aws-cdk-lib: {exc}")
    try:
        return _bootstrap_requirement_from_assembly(assembly)
    except (OSError, LookupError, ValueError) as exc:
        errors.append(f"{assembly.name}: {exc}")
    raise LookupError("; ".join(errors))


_MIN_VERSION = re.compile(r"\bMIN_BOOTSTRAP_STACK_VERSION\s*=\s*(\d+)")
_SYNTHESIZER_JS = "package/core/lib/stack-synthesizers/default-synthesizer.js"


@functools.cache  # a 0.8 s scan of the library's bundle; a process has one installed library
def _bootstrap_requirement_from_library() -> tuple[int, str]:
    spec = util.find_spec("aws_cdk")
    if spec is None or not spec.submodule_search_locations:
        raise LookupError("aws_cdk is not installed")
    version = metadata.version("aws-cdk-lib")
    bundle = Path(next(iter(spec.submodule_search_locations))) / "_jsii" / f"aws-cdk-lib@{version}.jsii.tgz"
    with tarfile.open(bundle) as tar:
        member = tar.extractfile(_SYNTHESIZER_JS)
        if member is None:
            raise LookupError(f"{_SYNTHESIZER_JS} not in {bundle.name}")
        found = _MIN_VERSION.search(member.read().decode())
    if not found:
        raise LookupError(f"MIN_BOOTSTRAP_STACK_VERSION not in {_SYNTHESIZER_JS}")
    return int(found.group(1)), f"aws-cdk-lib {version} DefaultStackSynthesizer"


def _bootstrap_requirement_from_assembly(assembly: Path) -> tuple[int, str]:
    manifest = json.loads((assembly / "manifest.json").read_text())
    versions = [
        int(artifact["properties"]["requiresBootstrapStackVersion"])
        for name, artifact in manifest.get("artifacts", {}).items()
        if name.startswith((STACK_NAME, MONITORING_STACK_NAME, CHECKER_STACK_PREFIX))
        and "requiresBootstrapStackVersion" in artifact.get("properties", {})
    ]
    if not versions:
        raise LookupError(f"no requiresBootstrapStackVersion for {STACK_NAME} or {MONITORING_STACK_NAME}")
    return max(versions), f"{assembly.name}/manifest.json requiresBootstrapStackVersion"


def cli_bootstrap_version(cli: Path = ROOT / "node_modules" / "aws-cdk") -> int | None:
    """The bootstrap version the pinned CDK CLI's `cdk bootstrap` installs (its template's
    CdkBootstrapVersion parameter), or None when the CLI is not installed or reads differently."""
    try:
        template = (cli / "lib" / "api" / "bootstrap" / "bootstrap-template.yaml").read_text()
    except OSError:
        return None
    found = re.search(r"\n  CdkBootstrapVersion:\n(?:    .*\n)*?      Value: '(\d+)'", template)
    return int(found.group(1)) if found else None


def read_config(overrides: Mapping[str, Any]) -> AppConfig:
    """cdk.json's context with -c overrides, validated as synth validates it."""
    context = {**json.loads((ROOT / "cdk.json").read_text())["context"], **overrides}
    return AppConfig.from_context(context.get, keys=context.keys())


def parse_context(pairs: list[str]) -> dict[str, str]:
    context = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"-c takes key=value, got {pair!r}")
        context[key] = value
    return context
