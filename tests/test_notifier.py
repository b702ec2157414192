"""The notifier end to end on this machine: AWS's documented alarm messages (tests/data/
sns_alarms.json) in, each provider's local server (tests/providers.py, answering as its docs say)
out, secrets in Secrets Manager and SSM and the failure counts in CloudWatch (a moto server).
What cannot be delivered ends in the dead-letter queue (an SQS queue in the moto server) with the
record Lambda's on-failure destination writes, and the delivery-failure metric is written."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest

from notifier import deliver, handler
from notifier.contract import DELIVERY_FAILURES, NAMESPACE, TYPES, Channel, Verdict
from notifier.page import Context, Entry
from tests.peers import closed_port_url
from tests.providers import NO_RETRY_AFTER, provider_server

DATA = json.loads((Path(__file__).parent / "data" / "sns_alarms.json").read_text())
AVAILABILITY = DATA["metric_alarm"]["Message"]["AlarmName"]
# checkov:skip=CKV_SECRET_6: a CloudFormation-generated alarm name, not a secret
HEARTBEAT = "HelloWorldHealth-MonitoringCheckerHeartbeat0A1B2C3D-7U8I9O0P1A2S"
DASHBOARD = "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards:name=hello-health"
RUNBOOK = "https://github.com/example/hello-eks#when-it-pages"
# What the alarm plan says about these alarms (cdk_app/notifier.py writes the real catalog).
ALARMS = {
    AVAILABILITY: Entry(Verdict.DOWN, "hello", "", 50),
    HEARTBEAT: Entry(Verdict.CHECKER, "hello", "", 180),
    "hello-service-down": Entry(Verdict.DOWN, "", "", 50),
    "hello-notifier-failures": Entry(Verdict.DELIVERY, "", "", 1),
}


def event(name: str) -> dict[str, Any]:
    """The Lambda event SNS delivers for one of the example messages."""
    example = DATA[name]
    sns = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:HelloWorldHealth-MonitoringAlerts",
        "Subject": example["Subject"],
        "Message": json.dumps(example["Message"]),
        "Timestamp": "2026-12-05T08:15:03.500Z",
    }
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": sns}]}


@pytest.fixture(autouse=True)
def _fresh_secrets() -> Iterator[None]:
    handler._cache.clear()
    yield
    handler._cache.clear()


def clients(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1")


def store(kind: str, value: str, *, ssm: bool = False) -> Channel:
    """The channel's secret, as a user stores it: Secrets Manager, or an SSM SecureString."""
    name = f"hello/{kind}-{uuid.uuid4().hex[:8]}"
    if ssm:
        clients("ssm").put_parameter(Name=f"/{name}", Value=value, Type="SecureString")
        return Channel(kind, f"ssm:/{name}")
    clients("secretsmanager").create_secret(Name=name, SecretString=value)
    return Channel(kind, name)


def failures(target: str = "hello", at: str = "2026-12-05T08:15:00+00:00", **counts: int) -> None:
    """What the checker published: failed probes of `target` by reason, just before the alarm."""
    when = dt.datetime.fromisoformat(at)
    clients("cloudwatch").put_metric_data(
        Namespace="HelloWorld/HealthCheck",
        MetricData=[
            {
                "MetricName": "Failures",
                "Dimensions": [{"Name": "Target", "Value": target}, {"Name": "Reason", "Value": reason}],
                "Timestamp": when - dt.timedelta(seconds=10 * i),
                "Value": 1.0,
                "Unit": "Count",
            }
            for reason, n in counts.items()
            for i in range(n)
        ],
    )


def settings(channels: list[Channel]) -> handler.Settings:
    ctx = Context(
        service="hello", alarms=ALARMS, dashboard=DASHBOARD, runbook=RUNBOOK, cloudwatch=clients("cloudwatch")
    )
    return handler.Settings(channels=tuple(channels), context=ctx)


def invoke_async(evt: dict[str, Any], s: handler.Settings, queue_url: str, budget: float) -> list[Any]:
    """Lambda's asynchronous invocation with an on-failure destination, as the Lambda Developer
    Guide documents its record ('Capturing records of Lambda asynchronous invocations'): the
    handler runs once (retry attempts 0); if it raises, the record goes to the queue."""
    lines: list[str] = []
    try:
        handler.notify(evt, s, clients, deadline=time.monotonic() + budget, log=lines.append)
    except handler.NotDelivered as exc:
        record = {
            "version": "1.0",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:hello-notifier:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 1,
            },
            "requestPayload": evt,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": str(exc), "errorType": "NotDelivered"},
        }
        clients("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))
    return [json.loads(line) for line in lines]


@pytest.fixture
def dlq(aws_env: str) -> str:
    return clients("sqs").create_queue(QueueName="hello-undelivered-alerts")["QueueUrl"]


def dead_letters(queue_url: str) -> list[dict[str, Any]]:
    answer = clients("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def delivery_failures(channel: Channel) -> float:
    """The notifier's DeliveryFailures for one channel."""
    answer = clients("cloudwatch").get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=DELIVERY_FAILURES,
        Dimensions=[{"Name": "Channel", "Value": channel.label}],
        StartTime=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
        EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )
    return sum(p["Sum"] for p in answer["Datapoints"])


def text(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False)


def shows_the_outage(kind: str, body: Any) -> None:
    """Every format carries the verdict, the target, when, the failure reasons with counts and the links."""
    t = text(body)
    assert "hello is down" in t
    assert "2026-12-05 08:15:02 UTC" in t
    assert "timeout ×3" in t and "refused ×1" in t
    if kind not in ("pagerduty", "opsgenie"):  # the paging APIs carry links as links/details
        assert DASHBOARD in t and RUNBOOK in t


FORMAT: dict[str, Callable[[Any], bool]] = {
    "slack": lambda b: (
        (b["text"].startswith("hello is down"), [x["type"] for x in b["blocks"]][:2]) == (True, ["header", "section"])
    ),
    "teams": lambda b: b["attachments"][0]["content"]["body"][1]["type"] == "FactSet",
    "discord": lambda b: b["embeds"][0]["color"] == 0xD13212 and b["allowed_mentions"] == {"parse": []},
    "googlechat": lambda b: b["cardsV2"][0]["card"]["sections"][0]["widgets"][0]["decoratedText"]["text"] == "down",
    "pagerduty": lambda b: b["event_action"] == "trigger" and b["payload"]["severity"] == "critical",
    "opsgenie": lambda b: b["priority"] == "P1" and b["message"] == "hello is down",
    "webhook": lambda b: b["verdict"] == "down" and b["failures"] == {"timeout": 3, "refused": 1},
}


@pytest.mark.parametrize("kind", TYPES)
def test_each_type_receives_the_metric_alarm_the_composite_and_the_recovery(kind: str, dlq: str) -> None:
    failures(timeout=3, refused=1)
    with provider_server(kind) as server:
        channel = store(kind, server.secret, ssm=kind in ("discord", "opsgenie"))
        s = settings([channel])
        for name in ("metric_alarm", "composite_alarm", "composite_recovery"):
            logs = invoke_async(event(name), s, dlq, budget=10)
            assert [line["delivered"] for line in logs] == [True], logs
        metric, composite, recovery = server.received
    assert dead_letters(dlq) == []
    for body in (metric.body, composite.body):
        shows_the_outage(kind, body)
        assert FORMAT[kind](body), text(body)
    if kind != "pagerduty":  # a PagerDuty resolve is the key and the action alone
        assert "hello recovered (was down)" in text(recovery.body)
    if kind == "pagerduty":  # the recovery resolves the incident the composite opened
        assert recovery.body["event_action"] == "resolve"
        assert recovery.body["dedup_key"] == composite.body["dedup_key"] == "hello-service-down"
        assert metric.body["dedup_key"] == AVAILABILITY
    if kind == "opsgenie":  # created with the alarm as alias, closed by that alias
        assert composite.path == "/v2/alerts" and composite.body["alias"] == "hello-service-down"
        assert recovery.path == "/v2/alerts/hello-service-down/close?identifierType=alias"


@pytest.mark.parametrize("kind", TYPES)
def test_a_429_is_retried_after_its_retry_after(kind: str, dlq: str) -> None:
    with provider_server(kind) as server:
        server.script = ["429"]
        logs = invoke_async(event("metric_alarm"), settings([store(kind, server.secret)]), dlq, budget=10)
        first, second = server.received
    assert logs[0]["delivered"] and logs[0]["attempts"] == 2
    # Retry-After: 1 where the provider sends it; else the first backoff
    assert second.at - first.at >= (deliver.FIRST_BACKOFF if kind in NO_RETRY_AFTER else 1.0)
    assert dead_letters(dlq) == []


def test_a_500_then_success_is_delivered_after_backoff(dlq: str) -> None:
    with provider_server("pagerduty") as server:
        server.script = ["500", "500"]
        logs = invoke_async(event("metric_alarm"), settings([store("pagerduty", server.secret)]), dlq, budget=10)
    assert logs[0]["delivered"] and logs[0]["attempts"] == 3


@pytest.mark.parametrize("failure", ["500", "hang", "refused"])
def test_what_cannot_be_delivered_ends_in_the_queue_and_is_counted(failure: str, dlq: str) -> None:
    with ExitStack() as stack:
        bad = stack.enter_context(provider_server("slack"))
        good = stack.enter_context(provider_server("discord"))
        if failure == "refused":
            broken = store("slack", closed_port_url() + "/hook")
        else:
            bad.script = [failure] * 50
            broken = store("slack", bad.secret)
        healthy = store("discord", good.secret)
        started = time.monotonic()
        logs = invoke_async(event("composite_alarm"), settings([broken, healthy]), dlq, budget=4)
        took = time.monotonic() - started
        delivered_at = good.received[0].at - started
    by_channel = {line["channel"]: line for line in logs}
    assert by_channel[healthy.label]["delivered"] is True
    assert delivered_at < 2.0  # well before the broken channel's deadline: it did not wait for it
    assert by_channel[broken.label]["delivered"] is False
    assert took < 4 + 2  # the deadline holds for a hanging peer too
    [record] = dead_letters(dlq)
    assert event_payload_of(record) == event("composite_alarm") | {"Records": record["requestPayload"]["Records"]}
    assert broken.label in record["responsePayload"]["errorMessage"]
    assert healthy.label not in record["responsePayload"]["errorMessage"]
    assert delivery_failures(broken) == 1
    assert delivery_failures(healthy) == 0
    # The metric the notifier-failures alarm reads: DeliveryFailures without dimensions (moto sums
    # every dimension set when asked for none, so its presence is read from ListMetrics).
    listed = clients("cloudwatch").list_metrics(Namespace=NAMESPACE, MetricName=DELIVERY_FAILURES)["Metrics"]
    assert [] in [m["Dimensions"] for m in listed]


def event_payload_of(record: dict[str, Any]) -> dict[str, Any]:
    """The queued record holds the original SNS event, from which the page can be sent again."""
    message = json.loads(record["requestPayload"]["Records"][0]["Sns"]["Message"])
    assert message["AlarmName"] == "hello-service-down"
    return record["requestPayload"]


def test_a_secret_value_never_reaches_a_log_line_or_the_queue(dlq: str) -> None:
    url = closed_port_url() + "/hook/T000/B000/very-secret-token"
    channel = store("slack", url)
    logs = invoke_async(event("metric_alarm"), settings([channel]), dlq, budget=1.5)
    [record] = dead_letters(dlq)
    assert "very-secret-token" not in json.dumps(logs) + json.dumps(record)


def test_a_missing_secret_fails_its_channel_only(dlq: str) -> None:
    with provider_server("slack") as server:
        good = store("slack", server.secret)
        missing = Channel("slack", "hello/nobody-made-this")
        logs = invoke_async(event("metric_alarm"), settings([missing, good]), dlq, budget=5)
    assert [line["delivered"] for line in logs] == [False, True]
    assert "ResourceNotFoundException" in logs[0]["error"]


def test_the_verdict_follows_the_child_that_tripped_the_composite(aws_env: str) -> None:
    message = dict(DATA["composite_alarm"]["Message"])
    message["TriggeringChildren"] = [{"Arn": f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{HEARTBEAT}"}]
    from notifier import alarm, page

    p = page.page(alarm.parse(message), settings([]).context)
    assert p.verdict is Verdict.CHECKER and p.title == "Checker trouble: hello may be unwatched"
    assert p.key == "hello-service-down"


def test_a_page_goes_out_without_counts_when_cloudwatch_refuses(dlq: str) -> None:
    """The failure counts are worth having, not worth a page: a refused GetMetricData says so."""
    from botocore.stub import Stubber

    cloudwatch = clients("cloudwatch")
    stub = Stubber(cloudwatch)
    stub.add_client_error("get_metric_data", service_error_code="AccessDenied", http_status_code=403)
    with stub, provider_server("slack") as server:
        s = settings([store("slack", server.secret)])
        s.context.cloudwatch = cloudwatch
        logs = invoke_async(event("metric_alarm"), s, dlq, budget=5)
        [received] = server.received
    assert logs[0]["delivered"]
    assert "*Latest failures*\\nnot read (AccessDenied)" in json.dumps(received.body)


def test_a_message_that_is_no_alarm_is_delivered_as_text(dlq: str) -> None:
    evt = event("metric_alarm")
    evt["Records"][0]["Sns"].update(Subject="Hello from the console", Message="testing the topic")
    with provider_server("webhook") as server:
        logs = invoke_async(evt, settings([store("webhook", server.secret)]), dlq, budget=5)
        [received] = server.received
    assert logs[0]["delivered"]
    assert received.body["title"] == "Message on the alert topic: Hello from the console"
    assert received.body["description"] == "testing the topic"


def test_a_url_python_refuses_fails_its_channel_without_printing_it(dlq: str) -> None:
    channel = store("slack", "https://hooks.example/T000/sec ret-token")
    logs = invoke_async(event("metric_alarm"), settings([channel]), dlq, budget=3)
    [record] = dead_letters(dlq)
    assert logs[0]["delivered"] is False and logs[0]["error"] == "could not send (InvalidURL)"
    assert "ret-token" not in json.dumps(logs) + json.dumps(record)


def test_the_lambda_entry_reads_its_environment_and_keeps_to_its_remaining_time(
    dlq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """handler.handler as Lambda calls it: settings from the environment cdk_app/notifier.py writes."""
    with provider_server("googlechat") as server:
        channel = store("googlechat", server.secret)
        env = {
            "NOTIFIER_CHANNELS": json.dumps([[channel.type, channel.secret]]),
            "NOTIFIER_SERVICE": "hello",
            "NOTIFIER_LOCATIONS": "[]",
            "NOTIFIER_ALARMS": json.dumps([[AVAILABILITY, "down", "hello", "", 50]]),
            "NOTIFIER_DASHBOARD_URL": DASHBOARD,
            "NOTIFIER_RUNBOOK_URL": "",
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        handler._clients.clear()

        class Context:
            def get_remaining_time_in_millis(self) -> int:
                return 30_000

        assert handler.handler(event("metric_alarm"), Context()) == {"delivered": 1}
        [received] = server.received
    assert received.body["cardsV2"][0]["card"]["header"]["title"] == "🔴 hello is down"
    handler._clients.clear()


def test_with_several_locations_the_page_names_those_that_see_failures(aws_env: str) -> None:
    from notifier import alarm, page

    cloudwatch = clients("cloudwatch")
    when = dt.datetime.fromisoformat("2026-12-05T08:15:00+00:00")
    cloudwatch.put_metric_data(
        Namespace="HelloWorld/HealthCheck",
        MetricData=[
            {
                "MetricName": "Failures",
                "Dimensions": [
                    {"Name": "Target", "Value": "hello"},
                    {"Name": "Location", "Value": loc},
                    {"Name": "Reason", "Value": reason},
                ],
                "Timestamp": when,
                "Value": n,
                "Unit": "Count",
            }
            for loc, reason, n in (("eu-west-1", "timeout", 2.0), ("ap-southeast-2", "dns", 1.0))
        ],
    )
    # checkov:skip=CKV_SECRET_6: a CloudFormation-generated alarm name, not a secret
    quorum = "HelloWorldHealth-MonitoringQuorumhello1A2B3C4D-QWERTYUIOPAS"
    ctx = Context(
        service="hello",
        alarms={quorum: Entry(Verdict.DOWN, "hello", "", 50)},
        locations=("us-east-1", "eu-west-1", "ap-southeast-2"),
        cloudwatch=cloudwatch,
    )
    message = {
        **DATA["metric_alarm"]["Message"],
        "AlarmName": quorum,
        "Trigger": {"Period": 10, "EvaluationPeriods": 5},
    }
    p = page.page(alarm.parse(message), ctx)
    assert p.locations == ("eu-west-1", "ap-southeast-2")
    assert p.failures == (("timeout", 2), ("dns", 1))
    assert "Locations: eu-west-1, ap-southeast-2" in p.text()


def alarm_event(name: str, state: str, old_state: str) -> dict[str, Any]:
    """The metric-alarm example as another alarm, in another transition."""
    evt = event("metric_alarm")
    sns = evt["Records"][0]["Sns"]
    message = json.loads(sns["Message"]) | {"AlarmName": name, "NewStateValue": state, "OldStateValue": old_state}
    sns["Message"] = json.dumps(message)
    return evt


def test_a_4xx_fails_its_channel_at_once(dlq: str) -> None:
    """A revoked webhook or a wrong key does not get better with retries."""
    with provider_server("discord") as server:
        server.script = ["404"]
        logs = invoke_async(event("metric_alarm"), settings([store("discord", server.secret)]), dlq, budget=10)
    assert logs[0]["delivered"] is False and logs[0]["attempts"] == 1 and len(server.received) == 1


def test_a_new_alarms_first_ok_announces_no_recovery(dlq: str) -> None:
    """A new alarm starts in INSUFFICIENT_DATA and runs its OK action on the first evaluation:
    no 'recovered' page, no resolve for an incident that never was."""
    with provider_server("pagerduty") as server:
        logs = invoke_async(
            alarm_event(AVAILABILITY, "OK", "INSUFFICIENT_DATA"), settings([store("pagerduty", server.secret)]), dlq, 5
        )
        assert server.received == []
    assert logs[0]["skipped"] == AVAILABILITY and "delivered" not in logs[0]
    assert dead_letters(dlq) == []


@pytest.mark.parametrize(("state", "old"), [("ALARM", "OK"), ("OK", "ALARM")])
def test_the_notifiers_own_alarm_is_best_effort_so_a_broken_channel_cannot_loop_it(
    state: str, old: str, dlq: str
) -> None:
    """notifier-failures reads DeliveryFailures: were the failure to page it counted, every ALARM and
    OK of it would write another and flip it again, for as long as the channel is broken."""
    with provider_server("slack") as server:
        server.script = ["404"]
        broken = store("slack", server.secret)
        logs = invoke_async(alarm_event("hello-notifier-failures", state, old), settings([broken]), dlq, budget=5)
    assert logs[0]["delivered"] is False and logs[0]["verdict"] in ("alert delivery trouble", "recovered")
    assert dead_letters(dlq) == []  # not raised: nothing queued
    assert delivery_failures(broken) == 0


def test_a_secret_is_read_once_per_ttl_and_again_after_it(aws_env: str) -> None:
    """A rotated webhook is picked up within SECRET_TTL, and a burst of pages reads it once."""
    channel = store("slack", "https://hooks.slack.com/services/T/B/old")
    clock = [1000.0]
    assert handler.read_secret(channel, clients, now=lambda: clock[0]).endswith("/old")
    clients("secretsmanager").put_secret_value(SecretId=channel.secret, SecretString="https://hooks.slack.com/x/new")
    clock[0] += handler.SECRET_TTL - 1
    assert handler.read_secret(channel, clients, now=lambda: clock[0]).endswith("/old")  # cached
    clock[0] += 2
    assert handler.read_secret(channel, clients, now=lambda: clock[0]).endswith("/new")  # read again
