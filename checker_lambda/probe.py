"""One HTTP(S) probe with timing phases, a hard deadline and a bounded body read.

Built on the standard library (socket, ssl, http.client) so each phase can be timed on its
own, as blackbox_exporter and Route 53 do: DNS, TCP connect, TLS handshake, first byte, total.
A failing target is a result, never an exception.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from checker_lambda.contract import Reason
from checker_lambda.settings import Target

USER_AGENT = "hello-health-checker/1.0"

Address = tuple[int, tuple]  # (socket family, sockaddr)
Resolver = Callable[[str, int, float], Address]
Clock = Callable[[], float]


@dataclass
class ProbeResult:
    target: str
    url: str
    started_at: float  # wall clock, epoch seconds
    slot: float | None = None  # the schedule slot this probe fills (its metric timestamp)
    ok: bool = False
    reason: Reason | None = None
    detail: str = ""
    status: int | None = None
    body_bytes: int = 0
    phases: dict[str, float] = field(default_factory=dict)  # ms: dns, connect, tls, first_byte, total
    cert_days_remaining: float | None = None

    def as_log(self) -> dict[str, object]:
        return {
            "target": self.target,
            "url": self.url,
            "time": round(self.started_at, 3),
            "ok": self.ok,
            "outcome": "ok" if self.ok else "fail",  # a string: easy to filter in Logs Insights
            "reason": self.reason.value if self.reason else None,
            "detail": self.detail,
            "status": self.status,
            "body_bytes": self.body_bytes,
            **{f"{k}_ms": v for k, v in self.phases.items()},
            "cert_days_remaining": self.cert_days_remaining,
        }


class _Failed(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def resolve(host: str, port: int, timeout: float) -> Address:
    """getaddrinfo with a deadline: the C resolver has none, so it runs in a daemon thread."""
    outcome: list[object] = []

    def work() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=work, name=f"resolve-{host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise TimeoutError(f"DNS lookup of {host} took longer than {timeout:.1f}s")
    found = outcome[0]
    if isinstance(found, OSError):
        raise found
    family, _type, _proto, _canon, sockaddr = found[0]  # type: ignore[index]
    return family, sockaddr


class Prober:
    """Probes targets. Collaborators are arguments so tests can drive every path."""

    def __init__(
        self,
        *,
        max_body_bytes: int = 64 * 1024,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver = resolve,
        clock: Clock = time.perf_counter,
        wall_clock: Clock = time.time,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.resolver = resolver
        self.clock = clock
        self.wall_clock = wall_clock

    def probe(self, target: Target) -> ProbeResult:
        result = ProbeResult(target=target.name, url=target.url, started_at=self.wall_clock())
        start = self.clock()
        deadline = start + target.timeout
        try:
            self._run(target, result, start, deadline)
        except _Failed as failed:
            result.reason, result.detail = failed.reason, failed.detail
        result.phases["total"] = round((self.clock() - start) * 1000, 3)
        result.ok = result.reason is None
        return result

    def _left(self, deadline: float, phase: str) -> float:
        left = deadline - self.clock()
        if left <= 0:
            raise _Failed(Reason.TIMEOUT, f"deadline passed before {phase}")
        return left

    def _run(self, target: Target, result: ProbeResult, start: float, deadline: float) -> None:
        parts = urlsplit(target.url)
        host = parts.hostname or ""
        port = parts.port or (443 if target.https else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        mark = start

        def lap(name: str) -> None:
            nonlocal mark
            now = self.clock()
            result.phases[name] = round((now - mark) * 1000, 3)
            mark = now

        try:
            family, sockaddr = self.resolver(host, port, self._left(deadline, "dns"))
        except TimeoutError as exc:
            raise _Failed(Reason.TIMEOUT, f"dns: {exc}") from None
        except OSError as exc:
            raise _Failed(Reason.DNS, f"{host}: {exc}") from None
        lap("dns")

        sock = socket.socket(family, socket.SOCK_STREAM)
        # A watchdog shuts the socket at the deadline: socket timeouts bound each recv, not the
        # sum of them, so a server that drips one byte a second would otherwise run forever.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(max(deadline - self.clock(), 0), expire)
        watchdog.daemon = True
        watchdog.start()
        conn = sock
        try:
            try:
                sock.settimeout(self._left(deadline, "connect"))
                sock.connect(sockaddr)
            except ConnectionRefusedError:
                raise _Failed(Reason.REFUSED, f"{host}:{port} refused the connection") from None
            except TimeoutError:
                raise _Failed(Reason.TIMEOUT, f"connect to {host}:{port} timed out") from None
            except OSError as exc:
                raise _Failed(Reason.TIMEOUT if expired.is_set() else Reason.CONNECT, f"connect: {exc}") from None
            lap("connect")

            if target.https:
                conn = self._handshake(sock, host, deadline, expired, result)
                lap("tls")

            self._exchange(conn, target, host, path, deadline, expired, result, lap)
        finally:
            watchdog.cancel()
            conn.close()
            sock.close()

    def _handshake(
        self, sock: socket.socket, host: str, deadline: float, expired: threading.Event, result: ProbeResult
    ) -> ssl.SSLSocket:
        try:
            sock.settimeout(self._left(deadline, "tls"))
            tls = self.ssl_context.wrap_socket(sock, server_hostname=host)
        except ssl.SSLError as exc:
            raise _Failed(Reason.TLS, f"tls: {exc.reason or exc}") from None
        except TimeoutError:
            raise _Failed(Reason.TIMEOUT, "tls handshake timed out") from None
        except OSError as exc:
            raise _Failed(Reason.TIMEOUT if expired.is_set() else Reason.TLS, f"tls: {exc}") from None
        cert = tls.getpeercert()
        if cert and "notAfter" in cert:
            expires = ssl.cert_time_to_seconds(str(cert["notAfter"]))
            result.cert_days_remaining = round((expires - self.wall_clock()) / 86400, 2)
        return tls

    def _exchange(
        self,
        conn: socket.socket,
        target: Target,
        host: str,
        path: str,
        deadline: float,
        expired: threading.Event,
        result: ProbeResult,
        lap: Callable[[str], None],
    ) -> None:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        ).encode("ascii", "strict")
        body = bytearray()
        response: http.client.HTTPResponse | None = None
        try:
            conn.settimeout(self._left(deadline, "request"))
            conn.sendall(request)
            response = http.client.HTTPResponse(conn, method="GET")  # type: ignore[arg-type]
            response.begin()
            lap("first_byte")
            result.status = response.status
            while True:
                conn.settimeout(self._left(deadline, "body"))
                chunk = response.read1(16 * 1024)
                if not chunk:
                    break
                body.extend(chunk)
                if len(body) > self.max_body_bytes:
                    raise _Failed(Reason.TOO_LARGE, f"body exceeds {self.max_body_bytes} bytes")
        except _Failed:
            raise
        except TimeoutError:
            raise _Failed(Reason.TIMEOUT, "timed out waiting for the response") from None
        except (http.client.HTTPException, OSError, ValueError) as exc:
            if expired.is_set():
                raise _Failed(Reason.TIMEOUT, "timed out waiting for the response") from None
            raise _Failed(Reason.PROTOCOL, f"bad response: {type(exc).__name__}: {exc}") from None
        finally:
            result.body_bytes = len(body)
            if response is not None:
                response.close()
        if expired.is_set():
            raise _Failed(Reason.TIMEOUT, "timed out waiting for the response")
        if result.status != target.expect_status:
            raise _Failed(Reason.STATUS, f"status {result.status}, expected {target.expect_status}")
        text = body.decode("utf-8", errors="replace")
        if target.expect_body is not None and target.expect_body not in text:
            raise _Failed(Reason.BODY, f"body does not contain {target.expect_body!r}: {text[:60]!r}")
        if target.expect_regex is not None and not re.search(target.expect_regex, text):
            raise _Failed(Reason.BODY, f"body does not match /{target.expect_regex}/: {text[:60]!r}")
