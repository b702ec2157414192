"""Synthesizes the app in-process (no AWS, no network) for the infrastructure tests: once per
configuration for the whole run, shared by the tests (and test processes) that read it."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from cdk_app.config import MONITORING_STACK_NAME, STACK_NAME
from cdk_app.stack import Stacks, build
from tests.conftest import ASSEMBLIES_ENV

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]

# Configurations that tests in several files read, each synthesized once for the run: every
# alarm setting changed; every node and network setting changed; every kind of alarm present.
ALARMS_TUNED = {
    "alertEmail": "oncall@example.com",
    "confirmProbes": 2,
    "latencyPercentile": "p99",
    "latencyThresholdMs": 250,
    "sloTargetPercent": 99.5,
}
CLUSTER_TUNED = {
    "nodeInstanceType": "m7g.large",
    "nodeCapacityType": "SPOT",
    "natGateways": 2,
    "vpcEndpoints": True,
    "podMinReplicas": 3,
    "podMaxReplicas": 9,
}
EVERY_ALARM = {
    "alertEmail": "oncall@example.com",
    "alertWebhooks": ["https://chat.example.com/hook"],
    "extraTargets": [{"name": "api", "url": "https://api.example.com/health", "expect_regex": "ok|healthy"}],
    "certExpiryDays": 21,
}


def synthesize(outdir: Path | str, **context: Any) -> Stacks:
    """A new synthesis into `outdir`, exactly what app.py builds (cdk-nag included) with these
    context values over cdk.json's, without aws-cdk-lib's own CloudFormation validation: it only
    reads the templates (they are the same without it), costs about a third of each synthesis,
    and reports its findings as warnings while synth passes. Two tests run it and fail on any
    finding: tests/test_security.py on the defaults, the CDK CLI test in tests/test_infra.py on
    the richest configuration."""
    app = cdk.App(context={**DEFAULTS, **context}, outdir=str(outdir), builtin_cloud_formation_validation=False)
    stacks = build(app)
    app.synth()
    return stacks


def assembly(**context: Any) -> Path:
    """The cloud assembly of this configuration, synthesized once for the whole run: the first
    test process to ask synthesizes it, any other waits for it and reads the same one. It keeps
    the JSON (manifest, templates, asset manifests), not the assets; a test that reads an
    asset's files makes its own with `synthesize`. Configurations are the same when they set
    the same values, whether from cdk.json or given here."""
    return _assembly(json.dumps({**DEFAULTS, **context}, sort_keys=True))


@cache
def _assembly(context: str) -> Path:
    if not os.environ.get(ASSEMBLIES_ENV):
        raise RuntimeError(f"{ASSEMBLIES_ENV} is not set: tests/conftest.py sets it in a pytest run")
    shared = Path(os.environ[ASSEMBLIES_ENV])
    shared.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(context.encode()).hexdigest()[:16]
    done, partial = shared / key, shared / f"{key}.partial"
    with (shared / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if the process dies
        if not done.exists():
            shutil.rmtree(partial, ignore_errors=True)
            synthesize(partial, **json.loads(context))  # cdk.json's values and the given ones
            for entry in partial.iterdir():
                if entry.is_dir():
                    shutil.rmtree(entry)
                elif entry.suffix != ".json" or entry.name == "tree.json":
                    entry.unlink()
            partial.rename(done)
    return done


def stack_templates(**context: Any) -> dict[str, Template]:
    """Each stack's own template, by stack name."""
    return dict(_stack_templates(json.dumps(context, sort_keys=True)))


@cache
def _stack_templates(context: str) -> dict[str, Template]:
    return {name: _template(template) for name, template in _stack_jsons(**json.loads(context)).items()}


# Each Template made here (kept alive with it, so its id stays its own) -> its JSON text.
_MADE: dict[int, tuple[Template, str]] = {}


def _template(body: dict[str, Any]) -> Template:
    template = Template.from_json(body)
    _MADE[id(template)] = (template, json.dumps(body))
    return template


def as_json(template: Template) -> dict[str, Any]:
    """A copy of the template's JSON: what `template.to_json()` gives, without the round trip
    through jsii for one made here (~17 ms each, the tests ask often)."""
    made = _MADE.get(id(template))
    return json.loads(made[1]) if made is not None else dict(template.to_json())


def synth(**context: Any) -> Template:
    """The home region's stacks (cluster and monitoring) as one template: their resources and
    outputs together, each import replaced by the value the other stack exports under that name,
    so a path test follows a value across the stack boundary as within a stack. The boundary
    itself is tested on the stacks' own templates (tests/test_stacks.py)."""
    return _merged_home(json.dumps(context, sort_keys=True))


@cache
def _merged_home(context: str) -> Template:
    templates = _stack_jsons(**json.loads(context))
    return merged(*(templates[name] for name in (STACK_NAME, MONITORING_STACK_NAME) if name in templates))


def _stack_jsons(**context: Any) -> dict[str, Any]:
    path = assembly(**context)
    artifacts = json.loads((path / "manifest.json").read_text())["artifacts"]
    return {
        name: json.loads((path / a["properties"]["templateFile"]).read_text())
        for name, a in artifacts.items()
        if a["type"] == "aws:cloudformation:stack"
    }


def stack_dependencies(**context: Any) -> dict[str, set[str]]:
    """Stack -> the stacks the CDK CLI deploys before it (and destroys after it), from the assembly's manifest."""
    artifacts = json.loads((assembly(**context) / "manifest.json").read_text())["artifacts"]
    stacks = {name for name, a in artifacts.items() if a["type"] == "aws:cloudformation:stack"}
    return {name: set(artifacts[name].get("dependencies", [])) & stacks for name in stacks}


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
    return _template(out)


def default_template() -> Template:
    return synth(alertEmail="oncall@example.com")


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
