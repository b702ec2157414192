"""Benchmark: the checker's cold start and per-probe cost, each next to a baseline from the same run.

- cold start: importing the Lambda handler and creating its CloudWatch client and monitor,
  versus a bare `import boto3, requests` plus `boto3.client("cloudwatch")` and a
  `requests.Session()` (what a minimal requests-based checker would do). Each sample is a
  fresh interpreter; interpreter start-up itself is excluded from both.
- per probe: CPU time (this process, all threads) and wall time of `Prober.probe` against the
  real service on 127.0.0.1, versus a raw `http.client` GET of the same URL.

Prints the figures; docs/benchmarks.md records a run. Usage: python -m bench.checker_overhead
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    **os.environ,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",  # noqa: S105  # nosec B105 - never sent anywhere
    "CHECK_TARGETS": json.dumps([{"name": "hello", "url": "http://127.0.0.1:1/hello"}]),
}
OURS = (
    "import time; t = time.perf_counter()\n"
    "from checker_lambda import handler\n"
    "from checker_lambda.settings import Settings\n"
    "handler.Checker.build(Settings.from_env())\n"
    "print(time.perf_counter() - t)"
)
BASELINE = (
    "import time; t = time.perf_counter()\n"
    "import boto3, requests\n"
    "boto3.client('cloudwatch'); requests.Session()\n"
    "print(time.perf_counter() - t)"
)


def cold_start(code: str) -> float:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "15"))
    probes = int(os.environ.get("BENCH_PROBES", "300"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")

    ours, base = [], []
    for _ in range(rounds):  # interleaved, so drift affects both alike
        ours.append(cold_start(OURS))
        base.append(cold_start(BASELINE))
    o, b = statistics.median(ours), statistics.median(base)
    print(f"cold start (median of {rounds}): checker {o * 1000:.1f} ms, baseline {b * 1000:.1f} ms, ratio {o / b:.2f}x")

    sys.path.insert(0, str(ROOT))
    from checker_lambda.probe import Prober
    from checker_lambda.settings import Target
    from tests.conftest import start_service

    with tempfile.TemporaryDirectory(prefix="bench-service-") as logs:
        service = start_service(Path(logs), DRAIN_DELAY_SECONDS="0")
        try:
            target = Target(name="hello", url=f"{service.url}/hello", expect_body="Hello World")
            prober = Prober()

            def ours_probe() -> None:
                assert prober.probe(target).ok

            def raw_probe() -> None:
                conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
                conn.request("GET", "/hello")
                response = conn.getresponse()
                assert response.status == 200 and response.read() == b"Hello World"
                conn.close()

            def measure(fn) -> tuple[float, float]:
                for _ in range(20):
                    fn()
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(probes):
                    fn()
                return (time.process_time() - cpu) / probes, (time.perf_counter() - wall) / probes

            results: dict[str, list[tuple[float, float]]] = {"ours": [], "raw": []}
            for _ in range(3):
                results["raw"].append(measure(raw_probe))
                results["ours"].append(measure(ours_probe))
            oc, ow = (statistics.median(x) for x in zip(*results["ours"], strict=True))
            rc, rw = (statistics.median(x) for x in zip(*results["raw"], strict=True))
            print(
                f"per probe CPU (median of 3 x {probes}): checker {oc * 1000:.3f} ms,"
                f" raw http.client {rc * 1000:.3f} ms, overhead {(oc - rc) * 1000:.3f} ms"
            )
            print(
                f"per probe wall: checker {ow * 1000:.3f} ms, raw http.client {rw * 1000:.3f} ms,"
                f" overhead {(ow - rw) * 1000:.3f} ms"
            )
        finally:
            service.stop()


if __name__ == "__main__":
    main()
