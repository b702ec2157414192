"""Real local HTTP(S) servers that misbehave on purpose, and certificates made on the spot."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tools.net import free_port

CHECKIP_ADDRESS = "203.0.113.7"  # TEST-NET-3 (RFC 5737)


class Behaviour(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "ok"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, body: bytes, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        mode = self.mode
        try:
            if mode == "ok":
                self._send(200, b"Hello World")
            elif mode == "error":
                self._send(500, b"Internal Server Error")
            elif mode == "wrong_body":
                self._send(200, b"Goodbye")
            elif mode == "hang":
                time.sleep(30)
            elif mode == "endless":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()  # no length: the body ends when the connection does, never
                chunk = b"Hello World " * 1000
                for _ in range(100_000):
                    self.wfile.write(chunk)
            elif mode == "drip":
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif mode == "garbage":
                self.wfile.write(b"this is not http\r\n\r\n")
            elif mode == "checkip":  # what https://checkip.amazonaws.com answers
                self._send(200, f"{CHECKIP_ADDRESS}\n".encode())
            elif mode == "big":
                self._send(200, b"Hello World" + b"!" * 200_000)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass


@contextmanager
def http_peer(mode: str, *, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    handler = type(f"Peer_{mode}", (Behaviour,), {"mode": mode})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    scheme = "http"
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://localhost:{server.server_address[1]}/hello"
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/hello"


def make_certificate(directory: Path, *, days: float, name: str = "cert") -> tuple[Path, Path]:
    """A self-signed certificate for localhost/127.0.0.1 that expires in `days` days."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
