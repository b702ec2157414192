"""Benchmark: the service as the container runs it, against two baselines, driven by wrk.

For each server (ours: `python -m service` with its access log on and kubelet-like probes
hitting /livez and /readyz; bare Flask and raw WSGI on the same waitress settings) and each
connection count, runs wrk on 127.0.0.1 and prints requests/s, p50, p99, errors, and the
ratios to the baselines; then a soak of our service at 64 connections for 30 s (target: zero
socket errors, zero non-2xx), its peak memory, and a drain run: SIGTERM in the middle of a wrk
run, reporting requests accepted but never answered (target 0) and the time to exit.

Usage: python -m bench.service   (BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS, BENCH_SOAK_SECONDS)
"""

from __future__ import annotations

import http.client
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tools.net import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "16,64,128").split(",")]
SOAK_SECONDS = int(os.environ.get("BENCH_SOAK_SECONDS", "30"))
# Server on CPU 0, wrk on CPU 1: without pinning the two fight over both cores and p99 moves
# by +-40% from run to run; pinned, it repeats within a few percent.
PIN = bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2
SERVER_CPU = ["taskset", "-c", "0"] if PIN else []
CLIENT_CPU = ["taskset", "-c", "1"] if PIN else []
WRK_THREADS = "1" if PIN else "2"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    socket_errors: int
    non_2xx: int


def median(results: list[Result]) -> Result:
    """Field by field: the median run's throughput and the median p50/p99."""

    def mid(values: list[float]) -> float:
        return statistics.median(values)

    return Result(
        rps=mid([r.rps for r in results]),
        p50_ms=mid([r.p50_ms for r in results]),
        p99_ms=mid([r.p99_ms for r in results]),
        requests=sum(r.requests for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        non_2xx=sum(r.non_2xx for r in results),
    )


class Server:
    def __init__(self, module: list[str], **env: str) -> None:
        self.port = free_port()
        self.log = Path(tempfile.mkstemp(prefix="bench-", suffix=".log")[1])
        with self.log.open("w") as sink:  # like the container runtime, stdout is consumed
            self.proc = subprocess.Popen(
                [*SERVER_CPU, sys.executable, "-m", *module],
                cwd=ROOT,
                env={**os.environ, "PORT": str(self.port), "HOST": "127.0.0.1", **env},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port)

    def peak_rss_mib(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


class Prober(threading.Thread):
    """Kubelet-like: GET /livez and /readyz once a second each."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.stopped, self.failures = port, threading.Event(), 0

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            for path in ("/livez", "/readyz"):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                    conn.request("GET", path)
                    if conn.getresponse().status != 200:
                        self.failures += 1
                    conn.close()
                except OSError:
                    self.failures += 1


def wrk(port: int, connections: int, seconds: int) -> Result:
    out = subprocess.run(
        [
            *CLIENT_CPU,
            "wrk",
            "--latency",
            f"-t{WRK_THREADS}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            f"http://127.0.0.1:{port}/hello",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if not m:
            raise SystemExit(f"cannot read {label}% from wrk:\n{out}")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Result(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=ms("50"),
        p99_ms=ms("99"),
        requests=int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        socket_errors=sum(int(x) for x in errors.groups()) if errors else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def line(name: str, c: int, r: Result, base: dict[str, Result] | None = None) -> str:
    text = (
        f"{name:<8} c={c:<4} {r.rps:>9.0f} req/s  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms  "
        f"errors {r.socket_errors}  non-2xx {r.non_2xx}"
    )
    if base:
        flask, raw = base["flask"], base["wsgi"]
        text += (
            f"  | vs flask: {r.rps / flask.rps:.2f}x rps, {r.p99_ms / flask.p99_ms:.2f}x p99"
            f"  | vs wsgi: {r.rps / raw.rps:.2f}x rps, {r.p99_ms / raw.p99_ms:.2f}x p99"
        )
    return text


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: `apt-get install wrk` (Debian/Ubuntu) or `brew install wrk`")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"wrk -t{WRK_THREADS}, {SECONDS} s per run, median of {ROUNDS} interleaved rounds, 127.0.0.1, "
        + ("server pinned to CPU 0, wrk to CPU 1" if PIN else "not pinned")
    )
    modules = {"flask": ["bench.baselines", "flask"], "wsgi": ["bench.baselines", "wsgi"], "ours": ["service"]}
    servers = {name: Server(module) for name, module in modules.items()}
    prober = Prober(servers["ours"].port)
    prober.start()
    results: dict[int, dict[str, Result]] = {}
    try:
        for server in servers.values():
            wrk(server.port, 16, 2)  # warm-up
        for c in CONNECTIONS:
            # Interleaved rounds, median of each: the machine's noise hits all three alike.
            runs: dict[str, list[Result]] = {name: [] for name in servers}
            for _ in range(ROUNDS):
                for name, server in servers.items():
                    runs[name].append(wrk(server.port, c, SECONDS))
            results[c] = {name: median(rs) for name, rs in runs.items()}
            for name in ("wsgi", "flask"):
                print(line(name, c, results[c][name]))
            print(line("ours", c, results[c]["ours"], results[c]), flush=True)
    finally:
        prober.stopped.set()
        for server in servers.values():
            server.stop()
    print(f"probe failures during the runs: {prober.failures}")

    server = Server(["service"])
    prober = Prober(server.port)
    prober.start()
    soak = wrk(server.port, 64, SOAK_SECONDS)
    prober.stopped.set()
    print(
        f"soak: ours c=64 for {SOAK_SECONDS} s: {soak.requests} requests, {soak.rps:.0f} req/s, "
        f"p99 {soak.p99_ms:.2f} ms, socket errors {soak.socket_errors}, non-2xx {soak.non_2xx}, "
        f"probe failures {prober.failures}, peak RSS {server.peak_rss_mib():.1f} MiB"
    )
    server.stop()
    drain()


def drain() -> None:
    """SIGTERM while wrk runs: every request the service accepted must be answered."""
    server = Server(["service"], DRAIN_DELAY_SECONDS="2", DRAIN_TIMEOUT_SECONDS="10")
    result: list[Result] = []
    runner = threading.Thread(target=lambda: result.append(wrk(server.port, 64, 10)))
    runner.start()
    time.sleep(3)
    sent = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(timeout=60)
    exit_seconds = time.monotonic() - sent
    runner.join()
    answered = result[0].requests
    handled = sum(1 for entry in server.log.read_text().splitlines() if '"path":"/hello"' in entry)
    print(
        f"drain: SIGTERM after 3 s of wrk c=64; exit code {code} after {exit_seconds:.2f} s "
        f"(drain delay 2 s); requests handled by the app {handled}, answered to wrk {answered}, "
        f"accepted but lost {max(0, handled - answered)}; wrk socket errors {result[0].socket_errors} "
        "(connections refused or closed after the listener shut, before a request was accepted)"
    )


if __name__ == "__main__":
    main()
