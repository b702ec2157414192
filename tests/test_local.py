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
