"""The access log cannot kill the pod: it survives a broken stdout, its queue is bounded, what
it drops is counted and reported, and requests waitress rejects itself are logged too."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service import settings
from service.app import AccessLog
from tests.conftest import ROOT, StartService
from tools.net import free_port, wait_for_port


def read_until(fd: int, done: Callable[[list[dict]], bool], timeout: float = 10) -> list[dict]:
    """JSON lines read from `fd` until done(records) holds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    data = b""
    records: list[dict] = []
    while not done(records):
        left = deadline - time.monotonic()
        assert left > 0, f"gave up waiting; read so far: {data[-500:]!r}"
        ready, _, _ = select.select([fd], [], [], min(left, 0.2))
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        data += chunk
        *complete, rest = data.split(b"\n")
        records += [json.loads(line) for line in complete]
        data = rest
    return records


def reports(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("event") == "access_log_dropped"]


def test_a_stuck_stdout_cannot_grow_the_queue_and_what_is_dropped_is_counted() -> None:
    """A log consumer that stops reading: the writer blocks on the full pipe, lines beyond the
    queue's bound are dropped instead of kept in memory, and once the consumer reads again a
    report line says how many."""
    read_fd, write_fd = os.pipe()
    total = 50_000  # the pipe holds about 5,000 of these lines; the queue's bound is far below the rest
    try:
        with os.fdopen(write_fd, "w", closefd=False) as stream:
            log = AccessLog(stream, interval=0.01)
            for n in range(total):
                log.line(f'{{"n":{n}}}\n')

            def accounted(records: list[dict]) -> bool:
                written = sum("n" in r for r in records)
                return written + sum(r["lines"] for r in reports(records)) >= total

            lines = read_until(read_fd, accounted)
    finally:
        os.close(read_fd)
        os.close(write_fd)
    written = [r["n"] for r in lines if "n" in r]
    dropped = reports(lines)
    assert len(written) < total // 2
    assert sum(r["lines"] for r in dropped) == dropped[-1]["total"] == total - len(written)
    assert written == sorted(written)  # what is kept is written in order


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "stdout"
    os.mkfifo(path)
    yield path


def test_the_service_keeps_logging_after_its_stdout_breaks(fifo: Path) -> None:
    """The container runtime's log reader goes away and comes back: writes fail with
    BrokenPipeError meanwhile; the writer must keep going and report what it lost."""
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(fifo, os.O_WRONLY)
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "DRAIN_DELAY_SECONDS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service"], cwd=ROOT, env=env, stdout=writer, stderr=subprocess.DEVNULL
    )  # noqa: S603
    os.close(writer)
    try:
        wait_for_port(port)
        read_until(reader, lambda rs: any(r.get("event") == "listening" for r in rs))
        os.close(reader)  # nobody reads: the service's next write gets EPIPE
        for _ in range(3):
            assert get(port, "/hello") == 200
        time.sleep(1.5)  # the writer flushes every 0.1 s: it has met the broken pipe by now
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        assert get(port, "/hello?after") == 200
        records = read_until(reader, lambda rs: any(r.get("path") == "/hello" and r.get("status") for r in rs))
        records += read_until(reader, lambda rs: True, timeout=1)  # the rest of that batch
        [report] = reports(records)
        assert report["lines"] == 3
        proc.send_signal(signal.SIGTERM)
        records += read_until(reader, lambda rs: any(r.get("event") == "stopped" for r in rs))
        [stopped] = [r for r in records if r.get("event") == "stopped"]
        assert stopped["access_log_dropped"] == 3
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(reader)


def get(port: int, path: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return int(sock.recv(64).split()[1])


@pytest.mark.parametrize(
    ("request_bytes", "status", "method"),
    [
        (
            f"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * (settings.MAX_REQUEST_HEADER_BYTES + 1)}\r\n\r\n",
            431,
            None,
        ),
        (
            f"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: {settings.MAX_REQUEST_BODY_BYTES + 1}\r\n\r\n",
            413,
            "POST",
        ),
    ],
    ids=["431", "413"],
)
def test_rejections_waitress_answers_itself_are_logged_like_any_request(
    services: StartService, request_bytes: str, status: int, method: str | None
) -> None:
    # A service of its own: the run's shared one also logs other tests' 413s and 431s (test_service
    # sends both), and a line of theirs, or one of theirs still queued, was taken for this test's.
    service = services(DRAIN_DELAY_SECONDS="0")
    raw = request_bytes.replace("Host: x\r\n", "Host: x\r\nUser-Agent: pytest\r\n").encode()
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as sock:
        sock.sendall(raw + b"x" * (settings.MAX_REQUEST_BODY_BYTES + 1 if status == 413 else 0))
        assert sock.recv(64).split()[1] == str(status).encode()
    # The access log is written in batches; stopping the service writes what is queued (the drain
    # waits for the request's task, which queues the line), so nothing here waits on the clock.
    assert service.stop() == 0
    [line] = [json.loads(x) for x in service.output().splitlines() if f'"status":{status}' in x]
    assert line["status"] == status and line["remote"] == "127.0.0.1" and line["duration_ms"] >= 0
    assert isinstance(line["bytes"], int) and line["bytes"] > 0
    if method is not None:  # a 431 may come before the request line is fully parsed
        assert (line["method"], line["path"], line["user_agent"]) == (method, "/hello", "pytest")
