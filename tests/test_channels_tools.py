"""make local, make preflight and make drill for alertChannels (tools/channels.py over
notifier/report.py): what each channel would receive, whether each secret is readable, and
whether each channel took the drill's page, read from the notifier's own log lines."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from notifier import handler, report
from notifier.contract import Channel
from tests.conftest import ROOT, no_aws
from tests.providers import provider_server
from tests.test_make import BLOCKER
from tests.test_notifier import event, settings, store
from tools import channels as tool

SLACK = {"type": "slack", "secret": "hello/slack"}


def test_make_local_shows_what_each_channel_would_receive_without_aws() -> None:
    context = json.dumps([SLACK, {"type": "pagerduty", "secret": "ssm:/hello/pd"}])
    done = subprocess.run(
        # Without the development packages (the CDK): what make local's light install has.
        [sys.executable, "-c", BLOCKER, "tools.channels", "preview", "-c", f"alertChannels={context}"],
        cwd=ROOT,
        env=no_aws(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "--- slack would receive, for Availability-hello ALARM (hello is down):" in out
    assert "--- pagerduty would receive, for hello-service-down OK (hello recovered (was down)):" in out
    assert '"event_action": "resolve"' in out and '"dedup_key": "hello-service-down"' in out
    assert "<routing key>" in out  # a placeholder, never a secret


def test_make_preflight_checks_each_secret_exists_and_is_readable(aws_env: str) -> None:
    """The preflight line 'alert channels', through the real Preflight against moto."""
    from tools.preflight import cli, sources
    from tools.preflight.account import Preflight
    from tools.preflight.checks import CHECKS

    [check] = [c for c in CHECKS if c.name == "alert channels"]
    clients = {name: boto3.client(name, region_name="us-east-1") for name in cli.CLIENTS}  # type: ignore[call-overload]
    clients["secretsmanager"].create_secret(Name="hello/slack", SecretString="https://hooks.slack.com/x/very-secret")
    clients["ssm"].put_parameter(Name="/hello/opsgenie", Value='{"url": "https://x"}', Type="SecureString")

    def run(channels: list[dict[str, str]]) -> Any:
        config = sources.read_config({"alertChannels": json.dumps(channels)})
        return Preflight(config, clients, region="us-east-1").run(check)

    good = run([SLACK])
    assert (good.status, good.detail) == (
        "ok",
        "1 secret(s) readable, each holding its type's destination: slack:hello/slack",
    )
    bad = run(
        [SLACK, {"type": "discord", "secret": "hello/nobody"}, {"type": "opsgenie", "secret": "ssm:/hello/opsgenie"}]
    )
    assert bad.status == "FAIL"
    assert bad.detail == (
        "discord:hello/nobody: cannot read the secret (ResourceNotFoundException); "
        "opsgenie:ssm:/hello/opsgenie: the secret holds no API key"
    )
    assert "very-secret" not in good.line() + bad.line()
    assert run([]).status == "skip"


def _logged(lines: list[str], group: str) -> None:
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": "START RequestId: x Version: $LATEST"}]
    events += [{"timestamp": now + i, "message": line} for i, line in enumerate(lines, 1)]
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)


def test_make_drill_reports_per_channel_from_the_notifiers_log(aws_env: str) -> None:
    """The lines the notifier really writes, stored in CloudWatch Logs (moto), read back per channel."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    lines: list[str] = []
    handler._cache.clear()
    with provider_server("slack") as server:
        good = store("slack", server.secret)
        broken = store("discord", "http://127.0.0.1:9/hook")
        s = settings([good, broken])
        for name in ("composite_alarm", "composite_recovery"):
            with pytest.raises(handler.NotDelivered):
                handler.notify(
                    event(name), s, lambda svc: boto3.client(svc), deadline=time.monotonic() + 1.5, log=lines.append
                )
    _logged(lines, "/aws/lambda/hello-notifier")
    silent = Channel("teams", "hello/teams")  # configured, never logged
    ticks = iter(range(0, 1000, 5))
    ok, report_lines = report.wait_for_deliveries(
        boto3.client("logs"),
        "/aws/lambda/hello-notifier",
        since=since,
        channels_=[good, broken, silent],
        alarm_name="hello-service-down",
        bound=20,
        clock=lambda: float(next(ticks)),
        sleep=lambda s: None,
    )
    assert not ok
    assert report_lines[0] == f"ok    {good.label}: hello-service-down ALARM delivered (attempts 1)"
    assert report_lines[1] == f"ok    {good.label}: hello-service-down OK delivered (attempts 1)"
    assert report_lines[2].startswith(f"FAIL  {broken.label}: hello-service-down ALARM not delivered: ")
    assert report_lines[4] == f"FAIL  {silent.label}: no delivery of hello-service-down ALARM logged within 20 s"


def test_make_drill_without_channels_says_nothing_and_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert tool.main(["deliveries", "--since", "0"]) == 0
    assert capsys.readouterr().out == ""


def test_a_bad_channel_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert tool.main(["preview", "-c", 'alertChannels=[{"type": "irc", "secret": "x"}]']) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: context key 'alertChannels'[0] has type 'irc'") and err.count("\n") == 1


def test_make_drill_reads_the_log_group_from_the_outputs_and_passes_when_every_channel_took_it(
    aws_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    since = time.time() - 5
    lines: list[str] = []
    handler._cache.clear()
    with provider_server("discord") as server:
        channel = store("discord", server.secret)
        for name in ("composite_alarm", "composite_recovery"):
            handler.notify(
                event(name),
                settings([channel]),
                lambda svc: boto3.client(svc),
                deadline=time.monotonic() + 5,
                log=lines.append,
            )
    _logged(lines, "/aws/lambda/hello-notifier-x")
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "HelloWorldHealth": {
                    "AlertTopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
                    "ServiceDownAlarmName": "hello-service-down",
                    "NotifierLogGroup": "/aws/lambda/hello-notifier-x",
                }
            }
        )
    )
    context = json.dumps([{"type": "discord", "secret": channel.secret}])
    code = tool.main(["deliveries", "--since", str(since), "--outputs", str(outputs), "-c", f"alertChannels={context}"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0, out
    assert out[1:] == [
        f"ok    {channel.label}: hello-service-down ALARM delivered (attempts 1)",
        f"ok    {channel.label}: hello-service-down OK delivered (attempts 1)",
    ]


def test_the_drills_own_options_pass_through(capsys: pytest.CaptureFixture[str]) -> None:
    """make drill gives this tool its ARGS whole: options of the drill's are not an error."""
    assert tool.main(["deliveries", "--since", "0", "--max-seconds", "30", "--mode", "alarm"]) == 0


def test_deploying_channels_without_email_warns_that_nobody_would_be_emailed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tools.deploy_check import check

    check(["-c", f"alertChannels={json.dumps([SLACK])}"])
    assert capsys.readouterr().err.startswith("warning: alertChannels without alertEmail")
    check(["-c", f"alertChannels={json.dumps([SLACK])}", "-c", "alertEmail=oncall@example.com"])
    assert capsys.readouterr().err == ""
