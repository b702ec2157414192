"""`make local` end to end: service, emulator and checker; an outage shows as failures."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, free_port


def test_local_run_reports_probes_and_an_outage_when_the_service_stops() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.local",
            "--port",
            str(free_port()),
            "--interval",
            "1",
            "--schedule",
            "6",
            "--confirm",
            "2",
            "--duration",
            "30",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    pid = None
    killed = interrupted = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if pid is None and (m := re.search(r"\(pid (\d+);", line)):
            pid = int(m.group(1))
        if pid and not killed and sum(" UP " in x for x in lines) >= 3:
            os.kill(pid, signal.SIGKILL)  # the service dies: an outage
            killed = True
        # Publishing early never stops probing: wait for the invocation to end with its verdict.
        if not interrupted and sum(" DOWN " in x for x in lines) >= 3 and '"hello": "down"' in line:
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            interrupted = True
    rest, _ = proc.communicate(timeout=30)
    out = "".join(lines) + rest
    assert proc.returncode == 0, out
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
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.local", "--port", str(free_port()), "--interval", "1", "--schedule", "6"]
        + ["--confirm", "2", "--duration", "30", "--locations", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    pid = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if pid is None and (m := re.search(r"\(pid (\d+);", line)):
            pid = int(m.group(1))
        ups = {loc for loc in ("local-1", "local-2") if sum(f"[{loc}]" in x and " UP " in x for x in lines) >= 2}
        if pid and len(ups) == 2:
            os.kill(pid, signal.SIGKILL)  # an outage both locations see
            pid = 0
    rest, _ = proc.communicate(timeout=30)
    out = "".join(lines) + rest
    assert proc.returncode == 0, out
    assert re.search(r"\[local-1\] .*DOWN\s+hello", out) and re.search(r"\[local-2\] .*DOWN\s+hello", out), out
    for loc in ("local-1", "local-2"):
        assert re.search(rf"location {loc}: probes \d+, availability [\d.]+%", out), out
        assert re.search(rf"failures from {loc}, reason refused: [1-9]", out), out
    assert "quorum: 2 of 2 locations, 2 of the newest 3 periods of 1 s" in out
    assert "the quorum alarm would read ALARM" in out, out
