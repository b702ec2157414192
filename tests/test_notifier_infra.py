"""The notifier on the template, every path at both ends: topic -> notifier (subscription and
invoke permission), notifier -> exactly its secrets, notifier -> dead-letter queue (on failure,
and SNS's redrive), queue alarm -> topic; and no secret value anywhere in the assembly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cdk_app import alarm_plan
from cdk_app.catalog import catalog
from cdk_app.config import MONITORING_STACK_NAME, AppConfig, ConfigError
from notifier.contract import Verdict
from tests.infra import DEFAULTS, as_json, assembly, stack_templates, synthesize

CHANNELS = [
    # checkov:skip=CKV_SECRET_6: the name of a Secrets Manager secret, not a secret
    {"type": "slack", "secret": "hello/slack-webhook"},
    # checkov:skip=CKV_SECRET_6: the name of an SSM parameter, not a secret
    {"type": "pagerduty", "secret": "ssm:/hello/pagerduty-routing-key"},
]
CONTEXT = {
    "cluster": False,
    "extraTargets": [{"name": "api", "url": "https://api.example.com/health"}],
    "alertEmail": "oncall@example.com",
    "alertChannels": CHANNELS,
    "runbookUrl": "https://github.com/example/hello-eks#detection-and-alarms",
}


@pytest.fixture(scope="module")
def t() -> dict[str, Any]:
    return as_json(stack_templates(**CONTEXT)[MONITORING_STACK_NAME])


def one(t: dict[str, Any], kind: str, **where: Any) -> tuple[str, dict[str, Any]]:
    found = [(k, v["Properties"]) for k, v in t["Resources"].items() if v["Type"] == kind]
    found = [(k, p) for k, p in found if all(p.get(a) == b for a, b in where.items())]
    assert len(found) == 1, (kind, where, [k for k, _ in found])
    return found[0]


def notifier_function(t: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return one(t, "AWS::Lambda::Function", Handler="notifier.handler.handler")


def topic(t: dict[str, Any]) -> str:
    return one(t, "AWS::SNS::Topic")[0]


def queue(t: dict[str, Any]) -> str:
    return one(t, "AWS::SQS::Queue")[0]


def statements(t: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [
        s
        for p in (v["Properties"] for v in t["Resources"].values() if v["Type"] == "AWS::IAM::Policy")
        if {"Ref": role} in p["Roles"]
        for s in p["PolicyDocument"]["Statement"]
    ]


def test_the_topic_invokes_the_notifier(t: dict[str, Any]) -> None:
    fn, props = notifier_function(t)
    arn = {"Fn::GetAtt": [fn, "Arn"]}
    _, sub = one(t, "AWS::SNS::Subscription", Protocol="lambda")
    assert sub["TopicArn"] == {"Ref": topic(t)} and sub["Endpoint"] == arn
    # ... and the function lets that topic, and only it, invoke it.
    _, permission = one(t, "AWS::Lambda::Permission", Principal="sns.amazonaws.com")
    assert permission["FunctionName"] == arn and permission["SourceArn"] == {"Ref": topic(t)}
    assert permission["Action"] == "lambda:InvokeFunction"


def test_the_notifier_reads_exactly_the_named_secrets(t: dict[str, Any]) -> None:
    _, props = notifier_function(t)
    role = props["Role"]["Fn::GetAtt"][0]
    reads = {}
    [key] = [k for k, v in t["Resources"].items() if v["Type"] == "AWS::KMS::Key"]
    for s in statements(t, role):
        if s["Resource"] == {"Fn::GetAtt": [key, "Arn"]}:
            continue  # the queue's key, for its on-failure destination (test_what_is_not_delivered_...)
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        for a in actions:
            if a.startswith(("secretsmanager:", "ssm:", "kms:")):
                reads[a] = json.dumps(s["Resource"]) + json.dumps(s.get("Condition", {}))
    assert set(reads) == {"secretsmanager:GetSecretValue", "ssm:GetParameter", "kms:Decrypt"}
    assert ":secret:hello/slack-webhook-??????" in reads["secretsmanager:GetSecretValue"]
    assert ":parameter/hello/pagerduty-routing-key" in reads["ssm:GetParameter"]
    assert "*" not in reads["ssm:GetParameter"] and reads["secretsmanager:GetSecretValue"].count("*") == 0
    assert "kms:ViaService" in reads["kms:Decrypt"]
    assert "secretsmanager." in reads["kms:Decrypt"] and "ssm." in reads["kms:Decrypt"]
    # The function is told the same secrets, by name.
    env = props["Environment"]["Variables"]
    assert json.loads(env["NOTIFIER_CHANNELS"]) == [[c["type"], c["secret"]] for c in CHANNELS]


def test_what_is_not_delivered_goes_to_the_queue(t: dict[str, Any]) -> None:
    fn, props = notifier_function(t)
    q = {"Fn::GetAtt": [queue(t), "Arn"]}
    # The function's failures: its on-failure destination, with no retry that would post twice ...
    _, invoke = one(t, "AWS::Lambda::EventInvokeConfig", FunctionName={"Ref": fn})
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == q
    assert invoke["MaximumRetryAttempts"] == 0
    role = props["Role"]["Fn::GetAtt"][0]
    assert any("sqs:SendMessage" in json.dumps(s["Action"]) and s["Resource"] == q for s in statements(t, role))
    # ... and SNS's failures to hand it over: the subscription's redrive policy, which the queue allows.
    _, sub = one(t, "AWS::SNS::Subscription", Protocol="lambda")
    assert sub["RedrivePolicy"] == {"deadLetterTargetArn": q}
    _, policy = one(t, "AWS::SQS::QueuePolicy")
    [allow] = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "sns.amazonaws.com"} and allow["Resource"] == q
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Ref": topic(t)}
    # Encrypted with the topic's key, which lets SNS (from this topic) use it.
    _, props_q = one(t, "AWS::SQS::Queue")
    [key] = [k for k, v in t["Resources"].items() if v["Type"] == "AWS::KMS::Key"]
    assert props_q["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    _, topic_props = one(t, "AWS::SNS::Topic")
    assert topic_props["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    [sns_use] = [
        s
        for s in t["Resources"][key]["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "sns.amazonaws.com"}
    ]
    assert set(sns_use["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    source = json.dumps(sns_use["Condition"]["ArnLike"]["aws:SourceArn"])
    assert ":sns:" in source and "AWS::AccountId" in source and "AWS::Region" in source
    # ... and the function may encrypt what it sends there.
    kms_actions = [s for s in statements(t, role) if "kms:GenerateDataKey" in json.dumps(s["Action"])]
    assert any(s["Resource"] == {"Fn::GetAtt": [key, "Arn"]} for s in kms_actions)


def test_the_queue_and_the_notifier_failures_email_through_the_topic(t: dict[str, Any]) -> None:
    notify = [{"Ref": topic(t)}]
    _, waiting = one(t, "AWS::CloudWatch::Alarm", AlarmName="hello-undelivered-alerts")
    assert waiting["Namespace"] == "AWS/SQS" and waiting["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert waiting["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue(t), "QueueName"]}}]
    assert waiting["ComparisonOperator"] == "GreaterThanThreshold" and waiting["Threshold"] == 0
    assert waiting["AlarmActions"] == notify and waiting["OKActions"] == notify
    fn, _ = notifier_function(t)
    _, failing = one(t, "AWS::CloudWatch::Alarm", AlarmName="hello-notifier-failures")
    read = {m["Id"]: m["MetricStat"]["Metric"] for m in failing["Metrics"] if "MetricStat" in m}
    assert read["undelivered"] == {"MetricName": "DeliveryFailures", "Namespace": "HelloWorld/Notifier"}
    assert read["errors"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": fn}}]
    assert failing["AlarmActions"] == notify
    # The other end: email is subscribed to that topic.
    _, email = one(t, "AWS::SNS::Subscription", Protocol="email")
    assert email["TopicArn"] == {"Ref": topic(t)}


def test_the_function_knows_what_each_alarm_means_from_the_plan(t: dict[str, Any]) -> None:
    _, props = notifier_function(t)
    joined = props["Environment"]["Variables"]["NOTIFIER_ALARMS"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "<" + p["Ref"] + ">" for p in joined)
    rows = {row[0]: row[1:] for row in json.loads(text)}
    alarms = {k: v["Properties"] for k, v in t["Resources"].items() if "CloudWatch" in v["Type"]}
    for logical_id, p in alarms.items():  # every alarm that notifies is described, by its name
        if p.get("AlarmActions"):
            assert p.get("AlarmName") in rows or f"<{logical_id}>" in rows, logical_id
    [availability] = [k for k in alarms if k.startswith("MonitoringAvailabilityapi")]
    assert rows[f"<{availability}>"][:2] == ["down", "api"]
    assert rows["hello-notifier-failures"][0] == rows["hello-undelivered-alerts"][0] == "alert delivery trouble"
    assert props["Environment"]["Variables"]["NOTIFIER_RUNBOOK_URL"] == CONTEXT["runbookUrl"]


def test_the_catalog_verdicts_come_from_the_plan() -> None:
    config = AppConfig.from_context({**DEFAULTS, "alertChannels": CHANNELS}.get)
    plan = alarm_plan.plan(config)
    rows = {r[0]: r for r in catalog(plan)}
    assert rows["Availability-hello"][1:] == ("down", "hello", "", 50)
    assert rows["CheckerHeartbeat"][1] == Verdict.CHECKER and rows["Latency-hello"][1] == Verdict.DEGRADED
    assert set(rows) >= set(plan.notifying()) | set(plan.feeding())


def test_no_notifier_without_channels() -> None:
    t = as_json(stack_templates(**{**CONTEXT, "alertChannels": []})[MONITORING_STACK_NAME])
    assert not [r for r in t["Resources"].values() if r["Type"] == "AWS::SQS::Queue"]
    assert "notifier" not in json.dumps(t).lower()


def test_no_secret_value_in_the_assembly_and_the_bundle_runs_alone(tmp_path: Path) -> None:
    """The assembly names secrets and holds no value (a value is never a synth input: a URL given
    as a secret's name is refused); the bundled notifier imports in a bare interpreter."""
    synthesize(tmp_path, **CONTEXT)
    everything = "\n".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    assert "hello/slack-webhook" in everything
    for value in ("hooks.slack.com/", "discord.com/api/webhooks/", "webhook.office.com", "chat.googleapis.com/"):
        assert value not in everything
    [bundle] = [p.parent.parent for p in tmp_path.glob("asset.*/notifier/handler.py")]
    done = subprocess.run(
        [
            sys.executable,
            "-E",
            "-s",
            "-c",
            "import notifier.handler as h, notifier.page as p; print(p.checker.FAILURES, h.__file__)",
        ],
        cwd=bundle,
        capture_output=True,
        text=True,
    )
    assert done.stdout.split() == ["Failures", str(bundle / "notifier" / "handler.py")], done.stderr


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        ('[{"type": "telegram", "secret": "x"}]', "context key 'alertChannels'[0] has type 'telegram': allowed is"),
        ('[{"type": "slack"}]', "context key 'alertChannels'[0] has no secret: allowed is the name of a Secrets"),
        ('[{"type": "slack", "secret": "https://hooks.slack.com/services/T/B/X"}]', "which cannot exist: allowed"),
        ('[{"type": "slack", "secret": "ssm:/aws/slack"}]', "not starting with aws or ssm"),
        # checkov:skip=CKV_SECRET_6: a made-up secret name in a validation case, not a secret
        ('[{"type": "slack", "secret": "hello/slack-a1B2c3"}]', "does not end in a hyphen and six characters"),
        ('[{"type": "slack", "secret": "ssm:no space"}]', "an SSM parameter name"),
        ('{"type": "slack"}', "context key 'alertChannels'"),
        ('[{"type": "slack", "secret": "a"}, {"type": "slack", "secret": "a"}]', "lists a channel twice"),
    ],
)
def test_bad_channels_stop_synth_in_one_line(channels: str, message: str) -> None:
    context = {**DEFAULTS, "alertChannels": channels}
    with pytest.raises(ConfigError) as error:
        AppConfig.from_context(context.get, keys=context)
    assert message in str(error.value) and "\n" not in str(error.value), str(error.value)
    assert "hooks.slack.com/services/T/B/X" not in str(error.value) or "secret" in str(error.value)


def test_the_assembly_keeps_the_outputs_make_drill_reads() -> None:
    path = assembly(**CONTEXT)
    outputs = json.loads((path / f"{MONITORING_STACK_NAME}.template.json").read_text())["Outputs"]
    assert outputs["NotifierLogGroup"]["Value"]["Ref"].startswith("MonitoringNotifierLogs")
    assert outputs["UndeliveredAlertsQueueUrl"]["Value"]["Ref"].startswith("MonitoringNotifierUndelivered")


def test_a_location_alone_is_degraded_and_service_down_speaks_for_its_children() -> None:
    regions = '["us-east-1","eu-west-1","ap-southeast-2"]'
    config = AppConfig.from_context({**DEFAULTS, "alertChannels": CHANNELS, "checkerRegions": regions}.get)
    plan = alarm_plan.plan(config)
    rows = {r[0]: r for r in catalog(plan)}
    assert rows["Alone-hello"][1:3] == ("degraded", "hello")
    # Its members all mean the same: not listed (a composite speaks for its child only when they differ).
    assert "Availability-hello-eu-west-1" not in rows
    assert rows["Quorum-hello"][1] == "down" and rows["CheckersSilent"][1] == "checker trouble"


def test_an_environment_lambda_would_refuse_stops_synth_in_one_line() -> None:
    """Lambda holds 4 KB of environment: the catalog of a very large configuration is refused at synth."""
    import aws_cdk as cdk

    from cdk_app.stack import build

    regions = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "eu-central-1", "ap-northeast-1"]
    targets = [{"name": f"target{i}", "url": f"https://t{i}.example.com/"} for i in range(8)]
    channels = [{"type": "slack", "secret": f"hello/slack-channel-{i}"} for i in range(7)]
    context = {
        **DEFAULTS,
        "alertChannels": json.dumps(channels),
        "checkerRegions": json.dumps(regions),
        "extraTargets": json.dumps(targets),
    }
    with pytest.raises(ConfigError) as error:
        build(cdk.App(context=context))
    assert "notifier's environment would hold about" in str(error.value) and "\n" not in str(error.value)
