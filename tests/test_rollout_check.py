"""`make rollout-check` against moto (the stack's URL output) and a fake kubectl on the PATH
driving real service processes behind a load balancer that follows the target states
(tests/fake_cluster.py): a clean rollout, one that drops requests, and the one-line refusals."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from cdk_app.config import STACK_NAME
from tests.conftest import ROOT, no_aws
from tests.fake_cluster import FakeCluster, install_kubectl
from tools import rollout_check


def put_stack(url: str) -> None:
    """The cluster stack as CloudFormation holds it, as far as the check reads it: its HelloUrl."""
    template = (
        '{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"HelloUrl": {"Value": "' + url + '"}}}'
    )
    boto3.client("cloudformation").create_stack(StackName=STACK_NAME, TemplateBody=template)


@pytest.fixture
def kubectl_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    install_kubectl(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    return bin_dir


@pytest.fixture
def cluster_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeCluster]]:
    made: list[FakeCluster] = []

    def make(**kwargs: object) -> FakeCluster:
        made.append(FakeCluster(tmp_path, **kwargs))  # type: ignore[arg-type]
        monkeypatch.setenv("FAKE_CLUSTER", made[-1].url)
        return made[-1]

    yield make  # type: ignore[misc]
    for cluster in made:
        cluster.close()


def run_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[int, str]:
    code = rollout_check.main(["--outputs", str(tmp_path / "absent.json"), "--settle", "2"])
    return code, capsys.readouterr().out


def test_a_clean_rollout_behind_the_readiness_gate_loses_no_request(
    aws_env: str, kubectl_on_path: Path, cluster_factory, capsys, tmp_path: Path
) -> None:
    cluster = cluster_factory(gate=True, health_after=1.5)
    put_stack(cluster.url + "/hello")
    code, out = run_check(capsys, tmp_path)
    assert code == 0, out
    assert "rollout finished after" in out and ", 0 failed" in out
    assert "target of hello-new-0 healthy " in out and "target of hello-new-1 healthy " in out
    assert "no readiness gate" not in out  # the old pods, which have none, are not the rollout's
    seconds = [float(line.split(" healthy ")[1].split()[0]) for line in out.splitlines() if "target of" in line]
    assert len(seconds) == 2 and all(1 <= s <= 60 for s in seconds), out  # creation to gate, on one clock
    sent = int(out.rsplit("\n", 2)[-2].split()[0])
    assert sent >= 5 * 3  # about 5 a second over the rollout (>= 3 s) and the settling
    assert [p.state for p in cluster.pods if p.name.startswith("hello-old")] == ["gone", "gone"]


def test_a_rollout_without_the_gate_drops_requests_and_says_when(
    aws_env: str, kubectl_on_path: Path, cluster_factory, capsys, tmp_path: Path
) -> None:
    # New targets turn healthy long after the rollout, however slowly the services start here.
    cluster = cluster_factory(gate=False, health_after=30.0)
    put_stack(cluster.url + "/hello")
    code, out = run_check(capsys, tmp_path)
    assert code == 1, out
    assert "FAILED request at" in out and "HTTP 503" in out
    assert "FAILED: hello-new-0 has no readiness gate" in out and "FAILED: hello-new-1 has no readiness gate" in out
    failed = int(out.rsplit("\n", 2)[-2].split(", ")[1].split()[0])
    assert failed >= 3


def test_no_cluster_stack_is_one_line_and_exit_2(aws_env: str, kubectl_on_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.rollout_check", "--outputs", "/nonexistent/outputs.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: no stack {STACK_NAME} in us-east-1")


def test_kubectl_that_cannot_reach_the_cluster_is_one_line_and_exit_2(
    aws_env: str, kubectl_on_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_CLUSTER", "http://127.0.0.1:9")  # nothing listens there
    put_stack("http://127.0.0.1:9/hello")
    code = rollout_check.main(["--outputs", str(tmp_path / "absent.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "kubectl cannot read deployment/hello in hello" in err and "update-kubeconfig" in err


@pytest.mark.parametrize(
    ("extra", "says"),
    [({}, "error: no AWS region"), ({"AWS_DEFAULT_REGION": "us-east-1"}, "error: no AWS credentials found")],
)
def test_without_a_region_or_credentials_one_line_and_exit_2(extra: dict[str, str], says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.rollout_check", "--outputs", "/nonexistent/outputs.json"],
        cwd=ROOT,
        env=no_aws(**extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(says), done.stderr


def test_new_pods_without_the_readiness_gate_fail_the_check_even_when_nothing_dropped(
    aws_env: str, kubectl_on_path: Path, cluster_factory, capsys, tmp_path: Path
) -> None:
    """Lucky timing is not safety: targets healthy at once here, so no request drops, but a real
    ALB takes 20 s or more and the next rollout would."""
    cluster = cluster_factory(gate=False, health_after=0.0)
    put_stack(cluster.url + "/hello")
    code, out = run_check(capsys, tmp_path)
    assert ", 0 failed" in out, out
    assert code == 1 and "FAILED: hello-new-0 has no readiness gate" in out
