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
    """Exactly what app.py builds (cdk-nag included), with these context values over cdk.json's,
    synthesized without aws-cdk-lib's own CloudFormation validation: it only reads the templates
    (they are the same without it), costs about a third of each synthesis, and reports its
    findings as warnings while synth passes. tests/test_security.py runs it on the default and
    the richest configuration, and fails on any finding.

    The template is the home region's stacks (cluster and monitoring) as one: their resources
    and outputs together, each import replaced by the value the other stack exports under that
    name, so a path test follows a value across the stack boundary as within a stack. The
    boundary itself is tested on the stacks' own templates (tests/test_stacks.py).

    One synthesis per configuration for the whole run (the tests only read it); with `outdir`,
    always a new one."""
    if outdir is not None:
        return _synth(outdir, context)
    key = json.dumps(context, sort_keys=True)
    if key not in _SYNTHESIZED:
        _SYNTHESIZED[key] = _synth(None, context)
    return _SYNTHESIZED[key]


def _synth(outdir: str | None, context: dict[str, Any]) -> tuple[Stacks, Template]:
    app = cdk.App(context={**DEFAULTS, **context}, outdir=outdir, builtin_cloud_formation_validation=False)
    stacks = build(app)
    home = [s for s in (stacks.cluster, stacks.health) if s is not None]
    return stacks, merged(*(Template.from_stack(s).to_json() for s in home))


SSM_READ_PREFIX = "AWS::SSM::Parameter::Value<"


def written_parameters(template: dict[str, Any]) -> dict[str, Any]:
    """Name -> value of every named SSM parameter the template writes in its own region."""
    return {
        r["Properties"]["Name"]: r["Properties"]["Value"]
        for r in template.get("Resources", {}).values()
        if r["Type"] == "AWS::SSM::Parameter" and "Name" in r["Properties"]
    }


def ssm_typed_parameters(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every template parameter CloudFormation would resolve from SSM at deploy."""
    return {k: p for k, p in template.get("Parameters", {}).items() if p["Type"].startswith(SSM_READ_PREFIX)}


def exported(template: dict[str, Any]) -> dict[str, Any]:
    """Export name -> the value the template exports under it."""
    return {o["Export"]["Name"]: o["Value"] for o in template.get("Outputs", {}).values() if "Export" in o}


def url_from_parameter(template: dict[str, Any], target: dict[str, Any]) -> Any:
    """What a checker target that names an SSM parameter probes: the value written under that
    name, by a stack in the parameter's region (the merged template is the home region's)."""
    written = written_parameters(template)
    assert target["url_parameter"] in written, f"{target['url_parameter']}: no stack here writes it"
    return written[target["url_parameter"]]


def merged(*templates: dict[str, Any]) -> Template:
    """The templates as one, each Fn::ImportValue replaced by the value exported under that name
    (the path tests follow the load balancer's names across the stack boundary). The URL is not
    taken at deploy: the checker reads it at run time (url_from_parameter follows that hop)."""
    exports: dict[str, Any] = {}
    for t in templates:
        exports |= exported(t)

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Fn::ImportValue"}:
                name = value["Fn::ImportValue"]
                assert name in exports, f"imports {name}, which no stack here exports"
                return exports[name]
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    out: dict[str, Any] = {}
    for t in templates:
        for section, body in t.items():
            if isinstance(body, dict):
                for key, value in body.items():
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
