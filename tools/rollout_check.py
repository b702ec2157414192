"""`make rollout-check`: restart the deployment and prove that no request is lost while it rolls.

Reads the public URL from cdk-outputs.json (written by `make deploy`) or from CloudFormation,
checks that kubectl reaches the cluster (the kubeconfig `aws eks update-kubeconfig` writes:
the stack's KubeconfigCommand output), then runs `kubectl rollout restart` and probes the URL
about 5 times a second until the rollout is done and the old pods have had their whole grace
period to go. It prints every failed request, the rollout's duration and when each new pod's
target turned healthy in the load balancer (its readiness gate's transition). Exit 0 when no
request failed, the rollout finished and every new pod carried the readiness gate, 1 otherwise;
without credentials, a stack or a reachable cluster, one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess  # nosec B404  # kubectl only, fixed verbs, arguments from argparse
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from cdk_app.config import STACK_NAME
from cdk_app.manifests import APP
from cdk_app.rollout import READINESS_GATE_LABEL, TIMING
from checker_lambda.aws_env import NO_CREDENTIALS, session_region

ROOT = Path(__file__).resolve().parent.parent
PROBE_EVERY = 0.2  # seconds: about 5 requests a second
GATE = "target-health.elbv2.k8s.aws/"


class CheckError(Exception):
    """One line for the user: what is missing and how to give it."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="make rollout-check", description=__doc__.splitlines()[0])
    p.add_argument("--outputs", type=Path, default=ROOT / "cdk-outputs.json", help="the outputs file of make deploy")
    p.add_argument("--region", help="the stack's region (default: your AWS configuration)")
    p.add_argument("--namespace", default="hello", help="the service's namespace (context key namespace)")
    p.add_argument("--timeout", type=int, default=600, help="seconds the rollout may take (default 600)")
    p.add_argument(
        "--settle",
        type=float,
        default=float(TIMING.termination_grace_period),
        help="seconds to keep probing after the rollout, while old pods drain (default: their grace period)",
    )
    return p.parse_args(argv)


def hello_url(args: argparse.Namespace) -> str:
    if args.outputs.exists():
        try:
            url = json.loads(args.outputs.read_text()).get(STACK_NAME, {}).get("HelloUrl")
        except (ValueError, AttributeError):
            url = None
        if url:
            return str(url)
    import boto3
    from botocore.exceptions import ClientError

    session = boto3.Session()
    region = args.region or session_region(session, os.environ)[0]
    if not region:
        raise CheckError("no AWS region: export AWS_REGION=<region>, or make rollout-check ARGS='--region <region>'")
    if session.get_credentials() is None:
        raise CheckError(NO_CREDENTIALS)
    try:
        [stack] = session.client("cloudformation", region_name=region).describe_stacks(StackName=STACK_NAME)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            raise CheckError(f"no stack {STACK_NAME} in {region}: no cluster to roll (make deploy)") from None
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if "HelloUrl" not in outputs:
        raise CheckError(f"stack {STACK_NAME} in {region} has no HelloUrl output: is its deploy finished?")
    return outputs["HelloUrl"]


def kubectl(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    # kubectl from PATH, as the user runs it; never through a shell.
    return subprocess.run(  # nosec B603 B607
        ["kubectl", *argv], capture_output=True, text=True, timeout=timeout, check=False
    )


def reach_cluster(namespace: str) -> None:
    if shutil.which("kubectl") is None:
        raise CheckError("kubectl is not on PATH: install it (docs/operations.md, Prerequisites)")
    done = kubectl("get", f"deployment/{APP}", "-n", namespace, "-o", "name", "--request-timeout=15s")
    if done.returncode != 0:
        why = " ".join((done.stderr or done.stdout).split())[:200]
        raise CheckError(
            f"kubectl cannot read deployment/{APP} in {namespace} ({why}): run the stack's KubeconfigCommand "
            "output (aws eks update-kubeconfig ...)"
        )


class Prober(threading.Thread):
    """GET the URL every PROBE_EVERY seconds; keep (seconds since start, what went wrong) per failure."""

    def __init__(self, url: str, start: float) -> None:
        super().__init__(daemon=True)
        self.url, self.start_at = url, start
        self.sent = 0
        self.failures: list[tuple[float, str]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            at = time.monotonic()
            self.sent += 1
            try:
                with urllib.request.urlopen(self.url, timeout=2) as answer:  # noqa: S310  # nosec B310
                    answer.read()
            except urllib.error.HTTPError as exc:
                self.failures.append((at - self.start_at, f"HTTP {exc.code}"))
            except (OSError, urllib.error.URLError) as exc:
                self.failures.append((at - self.start_at, " ".join(str(exc).split())[:120]))
            self.stopping.wait(max(0.0, PROBE_EVERY - (time.monotonic() - at)))


def pods(namespace: str) -> list[dict[str, Any]]:
    done = kubectl("get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/name={APP}", "-o", "json")
    return json.loads(done.stdout).get("items", []) if done.returncode == 0 else []


def _server_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def new_pod_gates(namespace: str, old: set[str]) -> tuple[list[tuple[str, float]], list[str]]:
    """For the pods not in `old`: (pod, seconds from its creation to its readiness gate turning
    True), and the names of those that carry no gate at all. Both times are the API server's, so
    this machine's clock does not enter."""
    healthy: list[tuple[str, float]] = []
    ungated: list[str] = []
    for pod in pods(namespace):
        name = pod["metadata"]["name"]
        if name in old:
            continue
        if not any(g.get("conditionType", "").startswith(GATE) for g in pod.get("spec", {}).get("readinessGates", [])):
            ungated.append(name)
            continue
        for condition in pod.get("status", {}).get("conditions", []):
            if condition.get("type", "").startswith(GATE) and condition.get("status") == "True":
                created = _server_time(pod["metadata"]["creationTimestamp"])
                healthy.append((name, _server_time(condition["lastTransitionTime"]) - created))
    return sorted(healthy, key=lambda p: p[1]), sorted(ungated)


def check(args: argparse.Namespace) -> int:
    url = hello_url(args)
    reach_cluster(args.namespace)
    old = {p["metadata"]["name"] for p in pods(args.namespace)}
    start = time.monotonic()
    prober = Prober(url, start)
    prober.start()
    print(f"probing {url} every {PROBE_EVERY:g} s; restarting deployment/{APP} in {args.namespace}", flush=True)
    restarted = kubectl("rollout", "restart", f"deployment/{APP}", "-n", args.namespace)
    status = restarted
    if restarted.returncode == 0:
        status = kubectl(
            "rollout",
            "status",
            f"deployment/{APP}",
            "-n",
            args.namespace,
            f"--timeout={args.timeout}s",
            timeout=args.timeout + 30,
        )
    rolled = time.monotonic() - start
    prober.stopping.wait(args.settle)  # the old pods drain for up to their grace period
    prober.stopping.set()
    prober.join()
    ok = status.returncode == 0
    print(
        f"rollout {'finished' if ok else 'FAILED'} after {rolled:.1f} s" + ("" if ok else f": {status.stderr.strip()}")
    )
    healthy, ungated = new_pod_gates(args.namespace, old)
    for pod, after in healthy:
        print(f"  target of {pod} healthy {after:.0f} s after the pod was created")
    for pod in ungated:
        print(
            f"  FAILED: {pod} has no readiness gate ({GATE}...): it counts as Ready before its target is healthy; "
            f"is the namespace labelled {READINESS_GATE_LABEL}=enabled, and was the binding there first?"
        )
    for at, what in prober.failures:
        print(f"  FAILED request at {at:.1f} s: {what}")
    print(f"{prober.sent} requests, {len(prober.failures)} failed")
    return 0 if ok and not prober.failures and not ungated else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return check(args)
    except CheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except (BotoCoreError, ClientError) as exc:
        print(f"error: AWS: {' '.join(str(exc).split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
