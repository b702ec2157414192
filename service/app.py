"""The Hello World Flask application (app factory)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii as _q  # C-accelerated string quoting
from typing import TYPE_CHECKING, Any, TextIO

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

from service import settings

TEXT = "text/plain; charset=utf-8"


class Lifecycle:
    """Readiness shared between the server (which flips it on SIGTERM) and the app."""

    def __init__(self) -> None:
        self._draining = threading.Event()

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    def start_draining(self) -> None:
        self._draining.set()


class AccessLog:
    """One JSON line per request (and per lifecycle event) on stdout.

    Request threads only append the line to a deque; one writer thread sends what has
    gathered every `interval` seconds in a single os.write(). Writing from each request
    thread instead released and re-took the GIL around every write and halved throughput
    (docs/benchmarks.md). `flush()` on shutdown sends the rest; a SIGKILL loses at most one
    interval of lines. `interval=0` writes synchronously (tests, events that must not wait).

    The log must never take the service down: the queue holds at most `max_pending` lines
    (a stuck stdout would otherwise grow it until the pod is killed for memory), a failed
    write (a log reader gone: BrokenPipeError) loses that batch and the writer carries on,
    and lines lost either way are counted and reported by an `access_log_dropped` line once
    a write succeeds again (and in the `stopped` event, via `dropped`).
    """

    MAX_FIELD = 512

    def __init__(
        self, stream: TextIO | None = None, *, interval: float = 0.0, max_pending: int = settings.LOG_QUEUE_LINES
    ) -> None:
        self._stream = stream if stream is not None else sys.stdout
        try:
            self._fd: int | None = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self._pending: deque[str] = deque()
        self._max_pending = max_pending
        self._lock = threading.Lock()  # one flush at a time
        self._count_lock = threading.Lock()  # the drop counters (taken only when dropping)
        self._dropped = 0  # lines lost since the start
        self._reported = 0  # of which a report line has been written
        self._interval = interval
        if interval > 0:
            threading.Thread(target=self._run, name="access-log", daemon=True).start()

    @property
    def dropped(self) -> int:
        """Lines lost since the start: queue full, or the write failed."""
        return self._dropped

    def write(self, record: dict[str, Any]) -> None:
        self.line(json.dumps(record, separators=(",", ":")) + "\n")

    def line(self, text: str) -> None:
        """Queue one already-formatted JSON line (ending in a newline)."""
        if len(self._pending) >= self._max_pending:
            self._drop(1)
            return
        self._pending.append(text)
        if self._interval <= 0:
            self.flush()

    def _drop(self, lines: int) -> None:
        with self._count_lock:
            self._dropped += lines

    def flush(self) -> None:
        with self._lock:
            lines = []
            while self._pending:
                lines.append(self._pending.popleft())
            dropped = self._dropped
            report = ""
            if dropped > self._reported:
                report = (
                    f'{{"time":{time.time():.3f},"event":"access_log_dropped",'
                    f'"lines":{dropped - self._reported},"total":{dropped}}}\n'
                )
            if not lines and not report:
                return
            data = (report + "".join(lines)).encode()
            written = self._send(data)
            if written >= len(report):  # ASCII: as many bytes as characters
                self._reported = dropped
            # Lines not written in full are lost; the report line is not a request.
            lost = data.count(b"\n", written) - (1 if report and written < len(report) else 0)
            if lost:
                self._drop(lost)

    def _send(self, data: bytes) -> int:
        """Write `data`; returns how many bytes went out before an error (all, normally)."""
        if self._fd is None:
            try:
                self._stream.write(data.decode())
                self._stream.flush()
            except (OSError, ValueError):
                return 0
            return len(data)
        view = memoryview(data)
        written = 0
        while written < len(data):
            try:
                written += os.write(self._fd, view[written:])
            except InterruptedError:
                continue
            except OSError:  # BrokenPipeError when the reader has gone, EAGAIN, EIO...
                break
        return written

    def _run(self) -> None:
        while True:
            time.sleep(self._interval)
            self.flush()


def access_line(method: str, path: str, status: str, started: float, length: str, remote: str, agent: str) -> str:
    """One access log line. Formatted by hand: json.dumps of a dict costs more than the rest
    of the request path. `started` is the request's time.perf_counter() at arrival."""
    cut = AccessLog.MAX_FIELD
    return (
        f'{{"time":{time.time():.3f},"method":{_q(method)},"path":{_q(path[:cut])},"status":{status},'
        f'"duration_ms":{(time.perf_counter() - started) * 1000:.3f},"bytes":{length},'
        f'"remote":{_q(remote)},"user_agent":{_q(agent[:cut])}}}\n'
    )


class AccessLogMiddleware:
    """Times each request at the WSGI layer and logs it: cheaper than Flask's request hooks,
    and it sees every response, 404s and 405s included."""

    def __init__(self, app: WSGIApplication, log: AccessLog) -> None:
        self.app = app
        self.log = log

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        seen: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen[:] = (status, headers)
            return start_response(status, headers, exc_info)

        body = self.app(environ, capture)
        status, headers = seen or ("500", [])
        length = next((v for k, v in headers if k == "Content-Length"), "null")
        self.log.line(
            access_line(
                environ.get("REQUEST_METHOD", ""),
                environ.get("PATH_INFO", ""),
                status[:3],
                started,
                length,
                environ.get("REMOTE_ADDR", ""),
                environ.get("HTTP_USER_AGENT", ""),
            )
        )
        return body


def create_app(
    config: dict[str, Any] | None = None,
    *,
    lifecycle: Lifecycle | None = None,
    access_log: AccessLog | None = None,
) -> Flask:
    app = Flask(__name__)
    app.config.update(config or {})
    state = lifecycle or Lifecycle()
    log = access_log or AccessLog()
    app.extensions["lifecycle"] = state

    @app.get(settings.HELLO_PATH)
    def hello() -> Response:
        return Response(settings.HELLO_BODY, content_type=TEXT)

    @app.get(settings.LIVENESS_PATH)
    def live() -> Response:
        return Response("ok", content_type=TEXT)

    @app.get(settings.READINESS_PATH)
    def ready() -> Response:
        if state.draining:
            return Response("draining", status=503, content_type=TEXT)
        return Response("ok", content_type=TEXT)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        # Short plain text, never the HTML debug page or a traceback.
        response = Response(f"{exc.code} {exc.name}", status=exc.code or 500, content_type=TEXT)
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        app.logger.exception("unhandled error")
        return Response("500 Internal Server Error", status=500, content_type=TEXT)

    app.wsgi_app = AccessLogMiddleware(app.wsgi_app, log)  # type: ignore[method-assign]
    return app
