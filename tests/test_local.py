"""`make local` end to end: service, emulator and checker; an outage shows as failures."""

from __future__ import annotations

import os
import re
import signal

from tests.test_first_run import Local, service_pid


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


def test_quorum_arithmetic_counts_failing_locations_per_period_and_missing_as_healthy() -> None:
    from tools.local import quorum_lines

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
