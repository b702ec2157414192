"""One HTTP(S) probe with timing phases, a hard deadline and a bounded body read.

Built on the standard library (socket, ssl, http.client) so each phase can be timed on its
own, as blackbox_exporter and Route 53 do: DNS, TCP connect, TLS handshake, first byte, total.
A failing target is a result, never an exception.
"""

from __future__ import annotations

import http.client
import io
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from checker_lambda.contract import Reason
from checker_lambda.settings import Target

USER_AGENT = "hello-health-checker/1.0"

Address = tuple[int, tuple]  # (socket family, sockaddr)
Resolver = Callable[[str, int, float], list[Address]]
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
    body_bytes: int = 0  # bytes of body read (at most the target's max_body_bytes)
    body_truncated: bool = False  # the body was longer: reading stopped at the limit
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
            "body_truncated": self.body_truncated,
            **{f"{k}_ms": v for k, v in self.phases.items()},
            "cert_days_remaining": self.cert_days_remaining,
        }


class _Failed(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def resolve(host: str, port: int, timeout: float) -> list[Address]:
    """getaddrinfo with a deadline: the C resolver has none, so it runs in a daemon thread.
    Returns every address, in the resolver's order of preference, without duplicates."""
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
    addresses: list[Address] = []
    for family, _type, _proto, _canon, sockaddr in found:  # type: ignore[attr-defined]
        if (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    return addresses


class _DeadlineReader(io.RawIOBase):
    """The response stream http.client parses: every recv gets only the time left before the
    deadline, so a peer that drips bytes cannot stretch the read past it (a socket timeout
    alone bounds each recv, not their sum)."""

    def __init__(self, sock: socket.socket, left: Callable[[], float]) -> None:
        self._sock = sock
        self._left = left

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(self._left())
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What http.client.HTTPResponse needs of a socket: makefile()."""

    def __init__(self, sock: socket.socket, left: Callable[[], float]) -> None:
        self._reader = _DeadlineReader(sock, left)

    def makefile(self, _mode: str) -> io.BufferedReader:
        return io.BufferedReader(self._reader)


def _host_header(host: str, port: int, https: bool) -> str:
    name = f"[{host}]" if ":" in host else host  # an IPv6 literal
    return name if port == (443 if https else 80) else f"{name}:{port}"


class Prober:
    """Probes targets. Collaborators are arguments so tests can drive every path.

    One deadline covers the whole probe: before every blocking call (each connect attempt,
    the TLS handshake, each send and each recv) the socket's timeout is set to the time left,
    and CPython bounds each of those calls by its timeout as a whole. Only the DNS lookup runs
    in a thread, as getaddrinfo takes no timeout.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver = resolve,
        clock: Clock = time.perf_counter,
        wall_clock: Clock = time.time,
    ) -> None:
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
            addresses = self.resolver(host, port, self._left(deadline, "dns"))
        except TimeoutError as exc:
            raise _Failed(Reason.TIMEOUT, f"dns: {exc}") from None
        except OSError as exc:
            raise _Failed(Reason.DNS, f"{host}: {exc}") from None
        if not addresses:
            raise _Failed(Reason.DNS, f"{host}: no address")
        lap("dns")

        conn = self._connect(addresses, deadline)
        try:
            lap("connect")
            if target.https:
                conn = self._handshake(conn, host, deadline, result)
                lap("tls")
            self._exchange(conn, target, _host_header(host, port, target.https), path, deadline, result, lap)
        finally:
            conn.close()

    def _connect(self, addresses: list[Address], deadline: float) -> socket.socket:
        """Try each address in turn, each with an equal share of the time left, so one that
        drops packets cannot use up the deadline of the others."""
        failures: list[tuple[str, str]] = []  # (kind, "address: what happened")
        for i, (family, sockaddr) in enumerate(addresses):
            where = f"[{sockaddr[0]}]:{sockaddr[1]}" if family == socket.AF_INET6 else f"{sockaddr[0]}:{sockaddr[1]}"
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self._left(deadline, "connect") / (len(addresses) - i))
                sock.connect(sockaddr)
                return sock
            except ConnectionRefusedError:
                failures.append(("refused", f"{where} refused the connection"))
            except TimeoutError:
                failures.append(("timeout", f"connect to {where} timed out"))
            except OSError as exc:
                failures.append(("error", f"connect to {where}: {exc}"))
            except _Failed:
                sock.close()
                raise
            sock.close()
        kinds = {kind for kind, _ in failures}
        detail = "; ".join(text for _, text in failures)
        if kinds == {"refused"}:
            raise _Failed(Reason.REFUSED, detail)
        if kinds == {"timeout"}:
            raise _Failed(Reason.TIMEOUT, detail)
        raise _Failed(Reason.CONNECT, detail)

    def _handshake(self, sock: socket.socket, host: str, deadline: float, result: ProbeResult) -> ssl.SSLSocket:
        try:
            tls = self.ssl_context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
        except (ssl.SSLError, ValueError) as exc:
            sock.close()
            raise _Failed(Reason.TLS, f"tls: {exc}") from None
        try:
            tls.settimeout(self._left(deadline, "tls"))
            tls.do_handshake()  # one timeout for the whole handshake, however the peer paces it
        except TimeoutError:
            tls.close()
            raise _Failed(Reason.TIMEOUT, "tls handshake timed out") from None
        except ssl.SSLCertVerificationError as exc:
            tls.close()
            # Which check failed (expired, another host's name, an untrusted issuer) is what to fix.
            raise _Failed(Reason.TLS, f"tls: {exc.reason}: {exc.verify_message}") from None
        except ssl.SSLError as exc:
            tls.close()
            raise _Failed(Reason.TLS, f"tls: {exc.reason or exc}") from None
        except OSError as exc:
            tls.close()
            raise _Failed(Reason.TLS, f"tls: {exc}") from None
        except _Failed:
            tls.close()
            raise
        cert = tls.getpeercert()
        if cert and "notAfter" in cert:
            expires = ssl.cert_time_to_seconds(str(cert["notAfter"]))
            result.cert_days_remaining = round((expires - self.wall_clock()) / 86400, 2)
        return tls

    def _exchange(
        self,
        conn: socket.socket,
        target: Target,
        host_header: str,
        path: str,
        deadline: float,
        result: ProbeResult,
        lap: Callable[[str], None],
    ) -> None:
        request = memoryview(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {USER_AGENT}\r\n"
                "Accept: */*\r\nConnection: close\r\n\r\n"
            ).encode("ascii", "strict")
        )

        def left() -> float:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise TimeoutError("deadline passed")
            return remaining

        body = bytearray()
        response: http.client.HTTPResponse | None = None
        try:
            while request:
                conn.settimeout(left())
                request = request[conn.send(request) :]
            response = http.client.HTTPResponse(_DeadlineSocket(conn, left), method="GET")  # type: ignore[arg-type]
            response.begin()
            lap("first_byte")
            result.status = response.status
            # One byte past the limit tells a longer body from one that ends right at it.
            limit = target.max_body_bytes
            while len(body) <= limit and (chunk := response.read1(min(16 * 1024, limit + 1 - len(body)))):
                body.extend(chunk)
            if len(body) > limit:
                del body[limit:]
                result.body_truncated = True
            elif response.length:  # http.client's bytes still owed by Content-Length: closed early
                raise _Failed(
                    Reason.PROTOCOL, f"connection closed after {len(body)} of {len(body) + response.length} bytes"
                )
        except TimeoutError:
            raise _Failed(Reason.TIMEOUT, "timed out waiting for the response") from None
        except (http.client.HTTPException, OSError, ValueError) as exc:
            raise _Failed(Reason.PROTOCOL, f"bad response: {type(exc).__name__}: {exc}") from None
        finally:
            result.body_bytes = len(body)
            if response is not None:
                response.close()
        _judge(target, body, result)


def _judge(target: Target, body: bytearray, result: ProbeResult) -> None:
    """The answer against what the target expects: its status, then its body as far as it was read."""
    if result.status != target.expect_status:
        raise _Failed(Reason.STATUS, f"status {result.status}, expected {target.expect_status}")
    text = body.decode("utf-8", errors="replace")
    # A longer body is not a failure: what is asked of it is judged on what was read.
    read = (
        f" in the first {len(body)} bytes read (the body is longer; see max_body_bytes)"
        if result.body_truncated
        else ""
    )
    if target.expect_body is not None and target.expect_body not in text:
        raise _Failed(Reason.BODY, f"body does not contain {target.expect_body!r}{read}: {text[:60]!r}")
    if target.expect_regex is not None and not re.search(target.expect_regex, text):
        raise _Failed(Reason.BODY, f"body does not match /{target.expect_regex}/{read}: {text[:60]!r}")
    if result.body_truncated:
        asked = target.expect_body is not None or target.expect_regex is not None
        result.detail = f"read the first {len(body)} bytes of a longer body" + (
            "; expectation judged on those" if asked else ""
        )
