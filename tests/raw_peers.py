"""Peers that misbehave below HTTP: they stall the TCP or TLS handshake, drip the response
headers or body a byte at a time, or answer on IPv6 only. Real sockets on loopback, one
thread per connection, every wait bounded so the threads end with the test.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# What a peer does with one accepted connection (already TLS-wrapped when the peer has TLS).
Behaviour = Callable[[socket.socket, threading.Event], None]

DRIP_SECONDS = 0.25  # one byte this often: slow enough that no probe deadline covers it
# Every wait ends: a peer stops after this long, so a probe that ignores its deadline makes
# its test fail on the time taken instead of hanging the run.
GIVE_UP_SECONDS = 8.0


def _read_request(conn: socket.socket) -> bytes:
    conn.settimeout(5)
    data = b""
    with contextlib.suppress(OSError):
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def _drip(conn: socket.socket, stop: threading.Event, byte: bytes = b"x") -> None:
    for _ in range(int(GIVE_UP_SECONDS / DRIP_SECONDS)):
        if stop.wait(DRIP_SECONDS):
            return
        conn.sendall(byte)


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accept the TCP connection, read what comes (a request, a TLS ClientHello), say nothing."""
    conn.settimeout(0.1)
    for _ in range(int(GIVE_UP_SECONDS / 0.1)):
        if stop.is_set():
            return
        try:
            if not conn.recv(4096):
                return
        except TimeoutError:
            continue


def drip_headers(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    _drip(conn, stop)


def drip_body(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nHello World")
    _drip(conn, stop)


def echo_host(conn: socket.socket, stop: threading.Event) -> None:
    """Answer 200 with the request's Host header as the body."""
    request = _read_request(conn).decode("latin-1")
    host = next(
        (line.split(":", 1)[1].strip() for line in request.split("\r\n") if line.lower().startswith("host:")), ""
    )
    body = host.encode("latin-1")
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))


def drip_from(upstream: int) -> Behaviour:
    """Relay to 127.0.0.1:`upstream`, passing its bytes back one at a time: in front of a TLS
    peer, a server whose handshake arrives a byte every DRIP_SECONDS."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        with socket.create_connection(("127.0.0.1", upstream), timeout=5) as up:
            conn.settimeout(0.05)
            up.settimeout(0.05)
            for _ in range(int(GIVE_UP_SECONDS / DRIP_SECONDS)):
                with contextlib.suppress(TimeoutError):
                    if data := conn.recv(65536):
                        up.sendall(data)
                with contextlib.suppress(TimeoutError):
                    if byte := up.recv(1):
                        conn.sendall(byte)
                if stop.wait(DRIP_SECONDS):
                    return

    return behave


def big_body(size: int, *, length: bool = True, tail: bytes = b"") -> Behaviour:
    """'Hello World', `size` more bytes, then `tail`; with a Content-Length or ended by closing."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        _read_request(conn)
        body = b"Hello World" + b"!" * size + tail
        head = b"Content-Length: %d\r\n" % len(body) if length else b""
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + head + b"Connection: close\r\n\r\n")
        with contextlib.suppress(OSError):  # the probe may stop reading and close first
            conn.sendall(body)

    return behave


@contextmanager
def raw_peer(
    behaviour: Behaviour, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[int]:
    """Serve `behaviour` on host:port (0: any free port); yields the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(16)
    listener.settimeout(0.05)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            if tls is not None:
                conn.settimeout(5)
                conn = tls.wrap_socket(conn, server_side=True)
            behaviour(conn, stop)

    def accept() -> None:
        with listener:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                threading.Thread(target=handle, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join(timeout=2)


@contextmanager
def stalled_listener(host: str = "127.0.0.1", port: int = 0) -> Iterator[int]:
    """A port whose TCP handshake never completes: the accept queue is full and never served,
    so the kernel drops further SYNs, as a firewall that drops packets would."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((host, port))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(16):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.settimeout(0.2)
            fillers.append(probe)
            try:
                probe.connect((host, port))
            except TimeoutError:
                break
        else:
            raise RuntimeError("could not fill the accept queue: connects never stalled")
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


def short_body(conn: socket.socket, stop: threading.Event) -> None:
    """Promises 1000 bytes, sends 11, closes: a connection dropped mid-answer."""
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nHello World")


@contextmanager
def hanging_endpoint() -> Iterator[tuple[str, list[socket.socket]]]:
    """An HTTP endpoint that accepts connections and never reads nor answers: yields its URL and
    the connections accepted so far (a test counts the attempts a client made)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", held
    finally:
        listener.close()
        for conn in held:
            conn.close()


def answer(raw: bytes, *, whole_request: bool = True) -> Behaviour:
    """Send exactly `raw`, then close. After the whole request; or, with `whole_request=False`,
    after the first bytes that come, as a server does that answers whatever it was sent (a TLS
    ClientHello has no blank line to wait for)."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        if whole_request:
            _read_request(conn)
        else:
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                conn.recv(65536)
        with contextlib.suppress(OSError):
            conn.sendall(raw)

    return behave


def reset_after(raw: bytes, *, whole_request: bool = True) -> Behaviour:
    """As `answer`, but the connection ends with a reset (RST, not FIN): a server or middlebox
    that dies mid-answer."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        answer(b"", whole_request=whole_request)(conn, stop)
        with contextlib.suppress(OSError):
            conn.sendall(raw)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close() sends RST

    return behave
