"""Benchmark: what the notifier costs per page, next to a baseline from the same run.

- cold start: importing the notifier's handler in a fresh interpreter (what Lambda's init
  pays), versus a bare `import boto3` (interpreter start-up excluded from both).
- per page: wall time of one composite-alarm page to all seven channel types at once, each a
  local server answering as its provider does (tests/providers.py), versus one raw
  `http.client` POST of a page body to one of them. Secrets come from memory, failure counts
  are not read (no CloudWatch): this is the notifier's own overhead.

Prints the figures; docs/benchmarks.md records a run. Usage: python -m bench.notifier
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import time
import urllib.parse
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = 15


def cold(code: str) -> float:
    timed = f"import time; t = time.perf_counter()\n{code}\nprint(time.perf_counter() - t)"
    runs = [
        float(
            subprocess.run([sys.executable, "-c", timed], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        )
        for _ in range(SAMPLES)
    ]
    return statistics.median(runs) * 1000


def main() -> None:
    from notifier import handler
    from notifier.contract import TYPES, Channel
    from notifier.page import Context
    from tests.providers import provider_server
    from tests.test_notifier import event

    print(
        f"cold start, median of {SAMPLES}: import notifier.handler {cold('import notifier.handler'):.0f} ms, "
        f"import boto3 {cold('import boto3'):.0f} ms"
    )
    with ExitStack() as stack:
        servers = {kind: stack.enter_context(provider_server(kind)) for kind in TYPES}
        secrets = {f"bench/{kind}": server.secret for kind, server in servers.items()}

        class Secrets:
            def get_secret_value(self, SecretId: str) -> dict[str, str]:  # noqa: N803 - boto3's name
                return {"SecretString": secrets[SecretId]}

        def clients(service: str) -> Any:
            return Secrets()

        settings = handler.Settings(channels=tuple(Channel(k, f"bench/{k}") for k in TYPES), context=Context("hello"))
        page = event("composite_alarm")
        ours = []
        for _ in range(SAMPLES):
            handler._cache.clear()
            start = time.perf_counter()
            handler.notify(page, settings, clients, deadline=time.monotonic() + 30, log=lambda line: None)
            ours.append(time.perf_counter() - start)
        url = urllib.parse.urlsplit(servers["slack"].secret)
        body = json.dumps({"text": "hello is down"}).encode()
        raw = []
        for _ in range(SAMPLES):
            start = time.perf_counter()
            conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=5)
            conn.request("POST", url.path, body, {"Content-Type": "application/json"})
            conn.getresponse().read()
            conn.close()
            raw.append(time.perf_counter() - start)
    print(
        f"one page to all {len(TYPES)} channel types, median of {SAMPLES}: {statistics.median(ours) * 1000:.1f} ms; "
        f"one raw POST to one of them: {statistics.median(raw) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
