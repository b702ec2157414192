"""The Hello World Flask application (app factory)."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

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
    """One JSON line per request, written with a single write() so lines never interleave."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()


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

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        started = g.get("started")
        log.write(
            {
                "time": round(time.time(), 3),
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3) if started else None,
                "bytes": response.calculate_content_length(),
                "remote": request.remote_addr,
                "user_agent": request.user_agent.string,
            }
        )
        return response

    return app
