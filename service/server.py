"""Serve the app with waitress, with explicit limits and a graceful drain on SIGTERM.

waitress has no graceful shutdown of its own: its run() loop exits on a signal and drops
whatever is in flight. So we drive its event loop ourselves and, on SIGTERM:
1. report not ready (GET /readyz -> 503) while still serving, for `drain_delay` seconds, so
   the load balancer and the endpoints controller stop routing here;
2. close the listening socket, so new connections are refused;
3. close idle keep-alive connections, and wait (at most `drain_timeout`) for connections
   with a request being read, processed or sent;
4. stop the worker threads and exit 0.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from types import FrameType

from flask import Flask
from waitress import create_server, wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask

from service import settings
from service.app import AccessLog, Lifecycle, access_line, create_app

LOOP_TICK_SECONDS = 0.05


@dataclass(frozen=True)
class ServerSettings:
    # A container must listen on its pod IP, so on every interface.
    host: str = "0.0.0.0"  # noqa: S104  # nosec B104
    port: int = settings.PORT
    drain_delay: float = settings.DRAIN_DELAY_SECONDS
    drain_timeout: float = settings.DRAIN_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, environ: dict[str, str] | os._Environ[str] = os.environ) -> ServerSettings:
        def number(key: str, default: float, low: float, high: float) -> float:
            raw = environ.get(key)
            if raw is None or raw == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                raise SystemExit(f"{key}={raw!r} is not a number (allowed: {low}..{high})") from None
            if not low <= value <= high:
                raise SystemExit(f"{key}={raw!r} is out of range (allowed: {low}..{high})")
            return value

        port = number("PORT", settings.PORT, 1, 65535)
        if port != int(port):
            raise SystemExit(f"PORT={environ['PORT']!r} is not an integer (allowed: 1..65535)")
        return cls(
            host=environ.get("HOST", cls.host),
            port=int(port),
            drain_delay=number("DRAIN_DELAY_SECONDS", settings.DRAIN_DELAY_SECONDS, 0, 300),
            drain_timeout=number("DRAIN_TIMEOUT_SECONDS", settings.DRAIN_TIMEOUT_SECONDS, 0, 300),
        )


def build_server(app: Flask, config: ServerSettings, log: AccessLog | None = None) -> BaseWSGIServer:
    server = create_server(
        app,
        host=config.host,
        port=config.port,
        threads=settings.THREADS,
        connection_limit=settings.CONNECTION_LIMIT,
        channel_timeout=settings.CHANNEL_TIMEOUT_SECONDS,
        max_request_body_size=settings.MAX_REQUEST_BODY_BYTES,
        max_request_header_size=settings.MAX_REQUEST_HEADER_BYTES,
        asyncore_use_poll=True,  # select() tops out at 1024 descriptors
        ident="",  # no Server: waitress header
        expose_tracebacks=False,
    )
    if log is not None:
        server.channel_class = _channel_logging_errors(log)
    return server  # type: ignore[no-any-return]


def _channel_logging_errors(log: AccessLog) -> type[HTTPChannel]:
    """Requests waitress rejects itself (431 headers too large, 413 body too large, 400) never
    reach the app and its access log middleware: log them as the channel answers them."""

    class LoggedErrorTask(ErrorTask):  # type: ignore[misc]
        def execute(self) -> None:
            started = time.perf_counter()  # the request's arrival is not recorded by waitress
            super().execute()
            request = self.request
            log.line(
                access_line(
                    getattr(request, "command", ""),  # unset when the request line was not parsed
                    getattr(request, "path", ""),
                    self.status[:3],
                    started,
                    str(self.content_length),
                    str(self.channel.addr[0]),
                    request.headers.get("USER_AGENT", ""),
                )
            )

    return type("LoggedChannel", (HTTPChannel,), {"error_task_class": LoggedErrorTask})


def _channels(server: BaseWSGIServer) -> list[HTTPChannel]:
    return [c for c in list(server._map.values()) if isinstance(c, HTTPChannel)]


def _busy(channel: HTTPChannel) -> bool:
    return bool(channel.requests or channel.request is not None or channel.total_outbufs_len)


def serve(
    server: BaseWSGIServer,
    lifecycle: Lifecycle,
    config: ServerSettings,
    log: AccessLog,
) -> int:
    """Run the event loop until SIGTERM/SIGINT, then drain. Returns the exit status."""
    draining_since: float | None = None

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal draining_since
        if draining_since is None:
            draining_since = time.monotonic()
            lifecycle.start_draining()
            log.write({"event": "draining", "signal": signal.Signals(signum).name})

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.write({"event": "listening", "host": config.host, "port": server.effective_port})

    listening = True
    closed_at = 0.0
    while True:
        wasyncore.loop(timeout=LOOP_TICK_SECONDS, use_poll=True, map=server._map, count=1)
        if draining_since is None:
            continue
        now = time.monotonic()
        if listening and now - draining_since >= config.drain_delay:
            wasyncore.dispatcher.close(server)  # the listening socket only; keep the trigger
            listening = False
            closed_at = now
        if listening:
            continue
        busy = []
        for channel in _channels(server):
            if _busy(channel):
                busy.append(channel)
            else:
                channel.handle_close()
        if not busy:
            break
        if now - closed_at >= config.drain_timeout:
            log.write({"event": "drain_timeout", "open_connections": len(busy)})
            break

    server.task_dispatcher.shutdown(timeout=1)
    wasyncore.close_all(server._map)
    stopped = {"event": "stopped", "drain_seconds": round(time.monotonic() - (draining_since or 0), 3)}
    log.write({**stopped, "access_log_dropped": log.dropped})
    log.flush()
    return 0


def parse_args(argv: list[str] | None) -> None:
    """The service takes no options, only environment variables (as a container does); --help
    lists them, and anything else is refused rather than silently starting the server."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="The hello service: GET /hello, /livez, /readyz, served by waitress. No options: "
        "set environment variables.",
        epilog=(
            f"environment: PORT (default {settings.PORT}, 1..65535), HOST (default {ServerSettings.host}), "
            f"DRAIN_DELAY_SECONDS (default {settings.DRAIN_DELAY_SECONDS:g}, 0..300: serve 'not ready' after "
            f"SIGTERM), DRAIN_TIMEOUT_SECONDS (default {settings.DRAIN_TIMEOUT_SECONDS:g}, 0..300: wait for "
            "requests in flight)"
        ),
    )
    parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    parse_args(sys.argv[1:] if argv is None else argv)
    config = ServerSettings.from_env()
    lifecycle = Lifecycle()
    log = AccessLog(interval=settings.LOG_FLUSH_SECONDS)
    app = create_app(lifecycle=lifecycle, access_log=log)
    try:
        server = build_server(app, config, log)
    except OSError as exc:  # typically the port is taken: one line, not a traceback
        raise SystemExit(
            f"error: cannot listen on {config.host}:{config.port}: {exc.strerror or exc} "
            "(is it in use by another process? set PORT to a free port)"
        ) from None
    return serve(server, lifecycle, config, log)
