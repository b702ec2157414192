"""A new user's first run: a taken port, stopping `make local` every way it can stop.

Real processes throughout: the behaviour under test is about processes, ports and signals.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import ROOT, free_port


@contextmanager
def held_port() -> Iterator[int]:
    """A port some other program listens on (and never answers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return not alive(pid)


class Local:
    """`python -m tools.local` as a process, its stdout read with a deadline on every wait."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.local", "--port", str(free_port()), *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.buffer = b""

    def read_until(self, pattern: str, seconds: float = 60) -> tuple[list[str], re.Match[str]]:
        """Lines of stdout up to the first one matching `pattern`; fails after `seconds`."""
        assert self.proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            while b"\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\n", 1)
                lines.append(line := raw.decode() + "\n")
                if m := re.search(pattern, line):
                    return lines, m
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            chunk = os.read(self.proc.stdout.fileno(), 65536) if ready else b""
            if ready and not chunk:
                break  # end of output
            self.buffer += chunk
        self.proc.kill()
        raise AssertionError(f"no line matching {pattern!r} within {seconds} s: {''.join(lines)}")

    def communicate(self, seconds: float = 30) -> tuple[str, str]:
        out, err = self.proc.communicate(timeout=seconds)
        return (self.buffer + out).decode(), err.decode()


def service_pid(local: Local) -> int:
    _, m = local.read_until(r"\(pid (\d+);")
    return int(m.group(1))


def test_service_on_a_taken_port_says_so_in_one_line_and_exits_non_zero() -> None:
    with held_port() as port:
        done = subprocess.run(
            [sys.executable, "-m", "service"],
            cwd=ROOT,
            env={**os.environ, "PORT": str(port), "HOST": "127.0.0.1"},
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode != 0
    [line] = done.stderr.splitlines()
    assert line.startswith("error:") and f"127.0.0.1:{port}" in line and "in use" in line, done.stderr


def test_make_local_on_a_taken_port_says_so_exits_2_and_probes_nothing() -> None:
    with held_port() as port:
        done = subprocess.run(
            [sys.executable, "-m", "tools.local", "--port", str(port), "--interval", "1", "--duration", "4"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert f"--port {port}" in line and "in use" in line and "ARGS=" in line, line
    assert " UP " not in done.stdout and " DOWN " not in done.stdout


def test_make_local_stops_the_service_when_terminated() -> None:
    local = Local("--interval", "1", "--schedule", "6", "--confirm", "2")
    pid = service_pid(local)
    assert alive(pid)
    local.proc.send_signal(signal.SIGTERM)
    out, err = local.communicate()
    assert gone_within(pid, 15), f"service {pid} still running after make local was terminated"
    assert local.proc.returncode == 0, err
    assert "Summary" in out and "Traceback" not in err


def test_make_local_stops_the_service_when_its_reader_goes_away() -> None:
    """`make local | head`: head exits, the next line cannot be written."""
    local = Local("--interval", "1", "--schedule", "6", "--confirm", "2")
    pid = service_pid(local)
    local.read_until(r" UP ")
    assert local.proc.stdout is not None
    local.proc.stdout.close()
    _, err = local.proc.communicate(timeout=30)
    assert gone_within(pid, 15), f"service {pid} still running after make local's output was closed"
    assert "Traceback" not in err.decode(), err.decode()


def test_ctrl_c_mid_invocation_keeps_that_invocations_probes_in_the_summary() -> None:
    # confirm 5 of 10 probes: the invocation is still under way when Ctrl-C comes.
    local = Local("--interval", "1", "--schedule", "10", "--confirm", "5")
    service_pid(local)
    lines, _ = local.read_until(r" UP ")
    lines += local.read_until(r" UP ")[0]
    local.proc.send_signal(signal.SIGINT)
    out, err = local.communicate()
    assert local.proc.returncode == 0, err
    printed = sum(" UP " in x for x in lines + out.splitlines())
    assert "-- invocation" not in "".join(lines)  # interrupted before it published
    m = re.search(r"probes: (\d+), availability ([\d.]+)%", out)
    assert m, out
    assert int(m.group(1)) == printed and float(m.group(2)) == 100.0


@pytest.mark.parametrize(
    ("args", "named"),
    [(["--interval", "0"], "--interval"), (["--port", "70000"], "--port"), (["--confirm", "9"], "--confirm")],
)
def test_make_local_bad_options_name_the_option_and_exit_2(args: list[str], named: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.local", *args, "--duration", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # argparse prints its usage above
    assert named in last and "Traceback" not in done.stderr, done.stderr
