"""`make local` end to end: service, emulator and checker; an outage shows as failures."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from checker_lambda import handler
from checker_lambda.settings import Settings, Target
from tests.conftest import RunningService
from tests.test_first_run import ROOT, Local, service_pid
from tools.net import free_port


def test_local_run_reports_probes_and_an_outage_when_the_service_stops() -> None:
    local = Local("--interval", "1", "--schedule", "6", "--confirm", "2", "--duration", "30")
    pid = service_pid(local)
    lines: list[str] = []
    while sum(" UP " in x for x in lines) < 3:  # every wait below has a deadline
        lines += local.read_until(r" UP ")[0]
    os.kill(pid, signal.SIGKILL)  # the service dies: an outage
    while sum(" DOWN " in x for x in lines) < 3:
        lines += local.read_until(r" DOWN ")[0]
    # Publishing early never stops probing: wait for the invocation to end with its verdict.
    lines += local.read_until(r'"hello": "down"')[0]
    local.proc.send_signal(signal.SIGINT)  # Ctrl-C
    rest, err = local.communicate()
    out = "".join(lines) + rest
    assert local.proc.returncode == 0, out + err
    assert re.search(r"DOWN\s+hello\s+-\s+[\d.]+ ms.*reason=refused", out), out
    assert '"verdicts": {"hello": "down"}' in out
    assert "Summary, read back from the emulator's CloudWatch:" in out
    probes = int(re.search(r"probes: (\d+), availability ([\d.]+)%", out).group(1))
    availability = float(re.search(r"availability ([\d.]+)%", out).group(1))
    # Ctrl-C publishes the probes of the invocation it interrupts (tests/test_first_run.py).
    assert probes >= 3 and 0 < availability < 100
    assert len(re.findall(r"failures, reason refused: [1-9]", out)) == 1
    assert "alarm hello-availability: stored (period 1 s, 2 of 3, missing data ignore)" in out


def test_quorum_arithmetic_counts_failing_locations_per_period_and_missing_as_healthy() -> None:
    from tools.local_summary import quorum_lines

    failed = {"local-1": {10: False, 11: True, 12: True, 13: True}, "local-2": {11: True, 12: True, 13: False}}
    lines = quorum_lines(failed, quorum=2, confirm=2, interval=5)
    assert "oldest first: 0 2 2 1" in lines[1]
    assert "the newest 3: 2 2 1 -> 2 >= 2? the quorum alarm would read ALARM" in lines[2]
    one_alone = {"local-1": {10: True, 11: True, 12: True}, "local-2": {10: False}}  # local-2 silent after 10
    assert quorum_lines(one_alone, quorum=2, confirm=2, interval=5)[2].endswith("would read OK")


def test_local_runs_two_locations_against_one_emulator_and_sums_up_the_quorum() -> None:
    local = Local("--interval", "1", "--schedule", "6", "--confirm", "2", "--locations", "2")
    pid = service_pid(local)
    lines: list[str] = []
    for location in ("local-1", "local-2"):  # both probe the service and find it up
        lines += local.read_until(rf"\[{location}\] .* UP ")[0]
    os.kill(pid, signal.SIGKILL)  # an outage both locations see
    for location in ("local-1", "local-2"):
        lines += local.read_until(rf"-- \[{location}\] invocation: .*\"hello\": \"down\"")[0]
    local.proc.send_signal(signal.SIGINT)  # Ctrl-C: each location's unpublished probes go out first
    rest, err = local.communicate()
    out = "".join(lines) + rest
    assert local.proc.returncode == 0, out + err
    for location in ("local-1", "local-2"):
        assert re.search(rf"\[{location}\] .*DOWN\s+hello.*reason=refused", out), out
        assert re.search(rf"location {location}: probes \d+, availability [\d.]+%", out), out
        assert re.search(rf"failures from {location}, reason refused: [1-9]", out), out
    assert "quorum: 2 of 2 locations, 2 of the newest 3 periods of 1 s" in out
    assert "the quorum alarm would read ALARM" in out, out
    # The single-region alarm reads the metric without a Location, which no location publishes.
    assert "hello-availability" not in out, out


@pytest.mark.parametrize("locations", ["1", "2"])
def test_a_duration_shorter_than_a_slot_and_its_publish_still_probes_once(locations: str) -> None:
    """At the defaults a slot and its publish take up to 2.5 + 2 + 12 s before the deadline, which
    --duration 6 cuts short: each checker still probes once and the summary shows it."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "tools.local", "--port", str(free_port()), "--duration", "6", "--locations", locations],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    if locations == "1":
        assert re.search(r"probes: 1, availability 100\.0%", out), out
    else:
        for location in ("local-1", "local-2"):
            assert f"location {location}: probes 1, availability 100.0%" in out, out
    assert re.search(r"metrics stored in HelloWorld/HealthCheck: Availability, .*Latency", out), out
    # One probe each, not another minute's schedule: the run does not wait for a second slot.
    assert len(re.findall(r"^-- (\[[\w-]+\] )?invocation:", out, re.M)) == int(locations), out
    assert took < 55, took  # and not a whole schedule (60 s) either, however loaded the machine


class Sent:
    """A CloudWatch client that keeps what it is sent."""

    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []

    def put_metric_data(self, *, Namespace: str, MetricData: list[dict[str, Any]]) -> None:  # noqa: N803
        self.data += MetricData


def test_make_local_invokes_a_checker_built_as_the_lambdas_and_leaves_the_lambdas_own_alone(
    live_service: RunningService, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.local import SingleChecker, parse_args

    monkeypatch.setattr(handler, "_checker", None)  # a cold Lambda environment in this process
    target = Target(name="hello", url=f"{live_service.url}/hello", expect_body="Hello World", timeout=0.5)
    sent = Sent()
    checker = handler.Checker.build(Settings(targets=(target,), interval=2, schedule=2, confirm=1), sent)
    single = SingleChecker(checker, describe=lambda r: f"probed {r.target} ok={r.ok}")
    single.run(parse_args(["--interval", "2", "--schedule", "2", "--confirm", "1"]), stop_at=time.time() + 3)
    out = capsys.readouterr().out
    assert out.count("probed hello ok=True") == 1, out
    assert '-- invocation: {"probes": 1, "failed": 0, "verdicts": {"hello": "up"}}' in out, out
    assert [d["Value"] for d in sent.data if d["MetricName"] == "Availability"] == [1.0]
    assert single.pending == []
    assert handler._checker is None  # the Lambda entry builds its own, from its environment
