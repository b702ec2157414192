"""A cluster in miniature for `make rollout-check`: real service processes as pods, a load balancer
in front of them that follows the target states (initial, healthy, draining), and a fake
`kubectl` on the PATH that drives a rolling update through them.

The load balancer sends each request round robin to a healthy target and answers 503 when there
is none, as an ALB does with only `initial` and `draining` targets. A rollout (maxSurge 1,
maxUnavailable 0) starts a new service process, registers it when its readiness path answers,
turns it healthy `health_after` seconds later, and only then (with the readiness gate) or at
once (without) stops an old pod: deregistered at once, SIGTERM after `pre_stop`, after which
the real service drains as it does in a pod.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cdk_app.manifests import APP
from service import settings as svc
from tests.conftest import RunningService, start_service

GATE = f"target-health.elbv2.k8s.aws/{APP}"


class FakePod:
    def __init__(self, name: str, service: RunningService, state: str, *, gated: bool = False) -> None:
        self.name, self.service, self.state, self.gated = name, service, state, gated
        self.gate_true_at: float | None = None
        self.created = time.time()


class FakeCluster:
    def __init__(self, log_dir: Path, *, gate: bool, replicas: int = 2, health_after: float = 2.0) -> None:
        self.log_dir, self.gate, self.health_after = log_dir, gate, health_after
        self.pre_stop = 0.5
        self.lock = threading.Lock()
        self.turn = 0
        self.pods = [FakePod(f"{APP}-old-{i}", self._service(), "healthy") for i in range(replicas)]
        self.rollout: threading.Thread | None = None
        self.stopping: list[threading.Thread] = []
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                cluster.handle(self)

            def do_POST(self) -> None:  # noqa: N802
                cluster.handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _service(self) -> RunningService:
        return start_service(self.log_dir, DRAIN_DELAY_SECONDS="0.5", DRAIN_TIMEOUT_SECONDS="2")

    # --- the load balancer and the API the fake kubectl calls -------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        if request.path == svc.HELLO_PATH:
            status, body = self._forward()
        elif request.path == "/_k8s/restart" and request.command == "POST":
            self.rollout = threading.Thread(target=self._roll, daemon=True)
            self.rollout.start()
            status, body = 200, b"restarted"
        elif request.path == "/_k8s/status":
            done = self.rollout is not None and not self.rollout.is_alive()
            status, body = 200, json.dumps({"done": done}).encode()
        elif request.path == "/_k8s/pods":
            status, body = 200, json.dumps({"items": [self._pod_json(p) for p in self.pods]}).encode()
        else:
            status, body = 404, b"not found"
        request.send_response(status)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def _forward(self) -> tuple[int, bytes]:
        with self.lock:
            healthy = [p for p in self.pods if p.state == "healthy"]
            if not healthy:
                return 503, b"no healthy target"
            self.turn += 1
            pod = healthy[self.turn % len(healthy)]
        try:
            with urllib.request.urlopen(pod.service.url + svc.HELLO_PATH, timeout=2) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, b"upstream error"
        except OSError:
            return 502, b"target closed the connection"

    def _pod_json(self, pod: FakePod) -> dict[str, Any]:
        conditions = []
        if self.gate and pod.gate_true_at is not None:
            when = datetime.fromtimestamp(pod.gate_true_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            conditions.append({"type": GATE, "status": "True", "lastTransitionTime": when})
        created = datetime.fromtimestamp(pod.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        gates = [{"conditionType": GATE}] if pod.gated else []  # the old pods predate the label
        return {
            "metadata": {"name": pod.name, "creationTimestamp": created},
            "spec": {"readinessGates": gates},
            "status": {"conditions": conditions},
        }

    # --- the Deployment controller and the load balancer controller -------------------------

    def _roll(self) -> None:
        old = [p for p in self.pods if p.state == "healthy"]
        for i, going in enumerate(old):
            pod = FakePod(f"{APP}-new-{i}", self._service(), "starting", gated=self.gate)
            with self.lock:
                self.pods.append(pod)
            self._wait_ready(pod)
            pod.state = "initial"
            timer = threading.Timer(self.health_after, self._healthy, args=(pod,))
            timer.daemon = True
            timer.start()
            while self.gate and pod.gate_true_at is None:
                time.sleep(0.05)
            with self.lock:
                going.state = "draining"
            self.stopping.append(threading.Thread(target=self._stop, args=(going,), daemon=True))
            self.stopping[-1].start()

    def _healthy(self, pod: FakePod) -> None:
        with self.lock:
            pod.state = "healthy"
            pod.gate_true_at = time.time()

    @staticmethod
    def _wait_ready(pod: FakePod) -> None:
        for _ in range(200):
            with contextlib.suppress(OSError), urllib.request.urlopen(pod.service.url + svc.READINESS_PATH, timeout=1):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{pod.name} never answered {svc.READINESS_PATH}")

    def _stop(self, pod: FakePod) -> None:
        time.sleep(self.pre_stop)
        pod.service.stop(timeout=10)
        pod.state = "gone"

    def close(self) -> None:
        if self.rollout is not None:
            self.rollout.join(timeout=30)
        for thread in self.stopping:
            thread.join(timeout=15)
        for pod in self.pods:
            with contextlib.suppress(Exception):
                pod.service.stop(timeout=5)
        self.server.shutdown()


KUBECTL = '''#!{python}
"""kubectl for tests/fake_cluster.py: the verbs make rollout-check uses, against FAKE_CLUSTER."""
import json, os, sys, time, urllib.request

args = sys.argv[1:]
base = os.environ.get("FAKE_CLUSTER", "http://127.0.0.1:9")


def call(path, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, method=method), timeout=10) as r:
            return r.read().decode()
    except OSError:
        sys.exit("The connection to the server 127.0.0.1 was refused - did you specify the right host or port?")


if "-n" not in args or args[args.index("-n") + 1] != "{namespace}":
    sys.exit("Error from server (NotFound): namespaces not found")
if args[:2] == ["get", "deployment/{app}"]:
    call("/_k8s/status")
    print("deployment.apps/{app}")
elif args[:2] == ["rollout", "restart"]:
    call("/_k8s/restart", "POST")
    print("deployment.apps/{app} restarted")
elif args[:2] == ["rollout", "status"]:
    while not json.loads(call("/_k8s/status"))["done"]:
        time.sleep(0.1)
    print('deployment "{app}" successfully rolled out')
elif args[:2] == ["get", "pods"]:
    print(call("/_k8s/pods"))
else:
    sys.exit("fake kubectl: unexpected arguments " + " ".join(args))
'''


def install_kubectl(bin_dir: Path, namespace: str = "hello") -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "kubectl"
    path.write_text(KUBECTL.replace("{python}", sys.executable).replace("{namespace}", namespace).replace("{app}", APP))
    path.chmod(0o755)
    return path
