"""The Flask app through its test client, then the real server (python -m service) on 127.0.0.1."""

from __future__ import annotations

import http.client
import io
import json
import signal
import socket
import time

import pytest

from service import settings
from service.app import AccessLog, Lifecycle, create_app
from service.server import ServerSettings
from tests.conftest import RunningService, StartService


@pytest.fixture
def log_stream() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def lifecycle() -> Lifecycle:
    return Lifecycle()


@pytest.fixture
def client(log_stream: io.StringIO, lifecycle: Lifecycle):
    app = create_app({"TESTING": True}, lifecycle=lifecycle, access_log=AccessLog(log_stream))
    return app.test_client()


def test_hello_says_hello_world_as_plain_text(client) -> None:
    response = client.get("/hello")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "Hello World"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nope", 404), ("POST", "/hello", 405), ("DELETE", "/hello", 405), ("GET", "/hello/x", 404)],
)
def test_errors_are_short_plain_text_without_traceback(client, method: str, path: str, status: int) -> None:
    response = client.open(path, method=method)
    body = response.get_data(as_text=True)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/plain")
    assert len(body) < 40 and "Traceback" not in body and "<html" not in body.lower()
    if status == 405:
        assert "GET" in response.headers["Allow"]


def test_readiness_turns_503_while_draining_and_liveness_stays_up(client, lifecycle: Lifecycle) -> None:
    assert client.get(settings.READINESS_PATH).status_code == 200
    lifecycle.start_draining()
    assert client.get(settings.READINESS_PATH).status_code == 503
    assert client.get(settings.LIVENESS_PATH).status_code == 200
    assert client.get(settings.HELLO_PATH).status_code == 200


def test_one_json_access_log_line_per_request(client, log_stream: io.StringIO) -> None:
    client.get("/hello", headers={"User-Agent": "pytest"})
    client.get("/missing")
    lines = log_stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["method"] == "GET" and first["path"] == "/hello" and first["status"] == 200
    assert first["user_agent"] == "pytest" and first["bytes"] == len("Hello World")
    assert first["duration_ms"] >= 0
    assert second["status"] == 404


def test_unexpected_error_is_a_plain_500(log_stream: io.StringIO) -> None:
    app = create_app(access_log=AccessLog(log_stream))

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret detail")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert "secret" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "http"}, "PORT='http' is not a number"),
        ({"PORT": "70000"}, "PORT='70000' is out of range"),
        ({"DRAIN_TIMEOUT_SECONDS": "-1"}, "DRAIN_TIMEOUT_SECONDS='-1' is out of range"),
    ],
)
def test_bad_server_settings_fail_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        ServerSettings.from_env(env)


# --- the real server ---------------------------------------------------------------------


def request(service: RunningService, method: str, path: str, **kwargs) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
    try:
        conn.request(method, path, **kwargs)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_real_server_answers_hello_and_errors(live_service: RunningService) -> None:
    assert request(live_service, "GET", "/hello") == (200, b"Hello World")
    assert request(live_service, "GET", "/nope")[0] == 404
    assert request(live_service, "POST", "/hello")[0] == 405


def test_real_server_rejects_an_oversized_header(live_service: RunningService) -> None:
    status, _ = request(live_service, "GET", "/hello", headers={"X-Big": "a" * (settings.MAX_REQUEST_HEADER_BYTES + 1)})
    assert status == 431


def test_real_server_rejects_an_oversized_body(live_service: RunningService) -> None:
    status, _ = request(live_service, "POST", "/hello", body=b"x" * (settings.MAX_REQUEST_BODY_BYTES + 1))
    assert status == 413


def _raw(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_0(services: StartService) -> None:
    service = services(DRAIN_DELAY_SECONDS="0.5", DRAIN_TIMEOUT_SECONDS="5")
    # A request whose headers are half sent when SIGTERM arrives: in flight, not yet complete.
    in_flight = _raw(service.port, b"GET /hello HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.2)
    started = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    # During the drain delay the service still serves, but says it is not ready.
    assert request(service, "GET", "/readyz")[0] == 503
    assert request(service, "GET", "/hello")[0] == 200
    time.sleep(0.8)  # past the drain delay: the listener is closed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", service.port), timeout=2)
    in_flight.sendall(b"Connection: close\r\n\r\n")
    answer = _read_all(in_flight)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"Hello World")
    assert service.proc.wait(timeout=10) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 5 + 2
    out = service.output()
    events = [json.loads(line).get("event") for line in out.splitlines() if line.startswith("{")]
    assert events[0] == "listening" and "draining" in events and events[-1] == "stopped"


def test_sigterm_waits_for_a_slow_response_then_exits_0(services: StartService) -> None:
    service = services("tests.slow_service", DRAIN_DELAY_SECONDS="0", DRAIN_TIMEOUT_SECONDS="5")
    sock = _raw(service.port, b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    time.sleep(0.3)  # the app is now sleeping inside the request
    service.proc.send_signal(signal.SIGTERM)
    answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"slow done")
    assert service.proc.wait(timeout=10) == 0


def test_drain_gives_up_after_the_timeout_and_still_exits_0(services: StartService) -> None:
    service = services("tests.slow_service", DRAIN_DELAY_SECONDS="0", DRAIN_TIMEOUT_SECONDS="0.3")
    sock = _raw(service.port, b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # never completed
    time.sleep(0.2)
    started = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 3
    sock.close()
