"""Synthesizes the app in-process (no AWS, no network) for the infrastructure tests."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from cdk_app.stack import HelloStack, build

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]


def synth(outdir: str | None = None, **context: Any) -> tuple[HelloStack, Template]:
    """Exactly what app.py builds (cdk-nag included), with these context values over cdk.json's."""
    app = cdk.App(context={**DEFAULTS, **context}, outdir=outdir)
    stack = build(app)
    return stack, Template.from_stack(stack)


@cache
def default_template() -> Template:
    return synth(alertEmail="oncall@example.com")[1]


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return template.find_resources(kind)
