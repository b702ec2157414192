"""Synthesizes the app in-process (no AWS, no network) for the infrastructure tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from cdk_app.stack import Stacks, build

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]


_SYNTHESIZED: dict[str, tuple[Stacks, Template]] = {}


def synth(outdir: str | None = None, **context: Any) -> tuple[Stacks, Template]:
    """Exactly what app.py builds (cdk-nag included), with these context values over cdk.json's.

    The template is the home region's stacks (cluster and monitoring) as one: their resources
    and outputs together, each read of an SSM parameter replaced by the value the other stack
    writes under that name, so a path test follows a value across the stack boundary as within a
    stack. The boundary itself is tested on the stacks' own templates (tests/test_stacks.py).

    One synthesis per configuration for the whole run (the tests only read it); with `outdir`,
    always a new one."""
    if outdir is not None:
        return _synth(outdir, context)
    key = json.dumps(context, sort_keys=True)
    if key not in _SYNTHESIZED:
        _SYNTHESIZED[key] = _synth(None, context)
    return _SYNTHESIZED[key]


def _synth(outdir: str | None, context: dict[str, Any]) -> tuple[Stacks, Template]:
    app = cdk.App(context={**DEFAULTS, **context}, outdir=outdir)
    stacks = build(app)
    home = [s for s in (stacks.cluster, stacks.health) if s is not None]
    return stacks, merged(*(Template.from_stack(s).to_json() for s in home))


SSM_READ = "AWS::SSM::Parameter::Value<String>"


def written_parameters(template: dict[str, Any]) -> dict[str, Any]:
    """Name -> value of every named SSM parameter the template writes in its own region."""
    return {
        r["Properties"]["Name"]: r["Properties"]["Value"]
        for r in template.get("Resources", {}).values()
        if r["Type"] == "AWS::SSM::Parameter" and "Name" in r["Properties"]
    }


def read_parameters(template: dict[str, Any]) -> dict[str, str]:
    """Template parameter -> the SSM parameter name CloudFormation resolves it from at deploy,
    leaving out the CDK's own bootstrap version check."""
    return {
        key: p["Default"]
        for key, p in template.get("Parameters", {}).items()
        if p["Type"] == SSM_READ and not p["Default"].startswith("/cdk-bootstrap/")
    }


def merged(*templates: dict[str, Any]) -> Template:
    written: dict[str, Any] = {}
    for t in templates:
        written |= written_parameters(t)
    reads: dict[str, Any] = {}
    for t in templates:
        for key, name in read_parameters(t).items():
            assert name in written, f"{key} reads {name}, which no stack here writes"
            reads[key] = written[name]

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Ref"} and value["Ref"] in reads:
                return reads[value["Ref"]]
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    out: dict[str, Any] = {}
    for t in templates:
        for section, body in t.items():
            if isinstance(body, dict):
                for key, value in body.items():
                    if section == "Parameters" and key in reads:
                        continue  # resolved into every place that read it
                    assert key not in out.get(section, {}) or section not in ("Resources", "Outputs"), key
                    out.setdefault(section, {})[key] = resolve(value)
    return Template.from_json(out)


def stack_templates(**context: Any) -> tuple[Stacks, dict[str, Template]]:
    """Each stack's own template, by stack name."""
    stacks = synth(**context)[0]
    return stacks, {s.stack_name: Template.from_stack(s) for s in stacks.all()}


def default_template() -> Template:
    return synth(alertEmail="oncall@example.com")[1]


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return template.find_resources(kind)


# --- reading a synthesized template as data, following references -------------------------

Json = dict[str, Any]


def render(value: Any) -> Any:
    """A template value with its intrinsics spelled out: {"Ref": "X"} -> "${X}",
    {"Fn::GetAtt": ["X", "Arn"]} -> "${X.Arn}", Fn::Join joined. Manifests and Helm values are
    JSON strings built with Fn::Join; rendering them gives JSON that json.loads can read."""
    if isinstance(value, dict) and len(value) == 1:
        [(key, arg)] = value.items()
        if key == "Ref":
            return "${" + arg + "}"
        if key == "Fn::GetAtt":
            return "${" + ".".join(arg) + "}"
        if key == "Fn::Join":
            sep, parts = arg
            return sep.join(str(render(p)) for p in parts)
        if key == "Fn::Sub":
            return arg if isinstance(arg, str) else arg[0]
        if key == "Fn::Select" and isinstance(arg[1], dict) and "Fn::Split" in arg[1]:
            separator, source = arg[1]["Fn::Split"]
            return f"{render(source)}#split({separator})[{arg[0]}]"
    if isinstance(value, dict):
        return {k: render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v) for v in value]
    return value


def ref(logical_id: str, attribute: str | None = None) -> str:
    """What render() makes of a reference to logical_id (its Ref, or one of its attributes)."""
    return "${" + logical_id + (f".{attribute}" if attribute else "") + "}"


def logical_id_of(rendered: str) -> str:
    """The logical id a rendered Ref/GetAtt points at."""
    assert rendered.startswith("${") and rendered.endswith("}"), rendered
    return rendered[2:-1].split(".")[0]


def listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(document: Json) -> list[Json]:
    return [render(s) for s in listify(document["Statement"])]


def kubernetes_objects(template: Template) -> list[Json]:
    """Every Kubernetes object the stack applies through KubernetesManifest, rendered."""
    objects: list[Json] = []
    for resource in resources(template, "Custom::AWSCDK-EKS-KubernetesResource").values():
        objects.extend(json.loads(render(resource["Properties"]["Manifest"])))
    return objects


def helm_charts(template: Template) -> dict[str, Json]:
    """Helm releases by release name: chart, version, namespace and rendered values."""
    charts = {}
    for resource in resources(template, "Custom::AWSCDK-EKS-HelmChart").values():
        props = render(resource["Properties"])
        props["Values"] = json.loads(props.get("Values") or "{}")
        charts[props["Release"]] = props
    return charts
