"""The probe against real local servers: healthy, broken, slow, hostile, HTTPS."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from checker_lambda.contract import Reason
from checker_lambda.probe import Prober, ProbeResult, resolve
from checker_lambda.settings import SettingsError, Target
from tests import raw_peers
from tests.conftest import RunningService
from tests.peers import closed_port_url, http_peer, make_certificate, server_tls
from tools.net import free_port


def target(url: str, **kw) -> Target:
    return Target(name="t", url=url, expect_body=kw.pop("expect_body", "Hello World"), **kw)


def verdict(result: ProbeResult) -> tuple[bool, Reason | None, int | None, str]:
    """What a probe concluded, as the log line and the Failures metric report it."""
    return result.ok, result.reason, result.status, result.detail


def test_healthy_service_passes_with_phases_timed(live_service: RunningService) -> None:
    result = Prober().probe(target(f"{live_service.url}/hello"))
    assert result.ok and result.reason is None
    assert result.status == 200 and result.body_bytes == len("Hello World")
    assert set(result.phases) == {"dns", "connect", "first_byte", "total"}
    assert all(v >= 0 for v in result.phases.values())
    assert result.phases["total"] >= result.phases["first_byte"]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # The 500's body lacks "Hello World" too: the status is judged first, and is the reason.
        ("error", (False, Reason.STATUS, 500, "status 500, expected 200")),
        ("wrong_body", (False, Reason.BODY, 200, "body does not contain 'Hello World': 'Goodbye'")),
        ("garbage", (False, Reason.PROTOCOL, None, "bad response: BadStatusLine: this is not http\r\n")),
    ],
)
def test_wrong_answers_fail_with_their_reason(mode: str, expected: tuple) -> None:
    with http_peer(mode) as url:
        result = Prober().probe(target(url))
    assert verdict(result) == expected


def test_regex_expectation() -> None:
    with http_peer("ok") as url:
        assert verdict(Prober().probe(Target(name="t", url=url, expect_regex=r"^Hello \w+$"))) == (True, None, 200, "")
        # Searched for anywhere in the body (re.search), not only at its start.
        anywhere = Prober().probe(Target(name="t", url=url, expect_regex=r"Wor+ld"))
        result = Prober().probe(Target(name="t", url=url, expect_regex=r"^Bye"))
    assert verdict(anywhere) == (True, None, 200, "")
    assert verdict(result) == (False, Reason.BODY, 200, "body does not match /^Bye/: 'Hello World'")


def test_refused_connection() -> None:
    url = closed_port_url()
    result = Prober().probe(target(url))
    assert verdict(result) == (False, Reason.REFUSED, None, f"{urlsplit(url).netloc} refused the connection")
    assert set(result.phases) == {"dns", "total"}  # no connect time for a connection never made


def test_unresolvable_name() -> None:
    result = Prober().probe(target("http://does-not-exist.invalid/hello"))
    assert verdict(result)[:3] == (False, Reason.DNS, None)
    # What follows the name is the resolver's own words ("Name or service not known" offline).
    assert result.detail.startswith("does-not-exist.invalid: "), result.detail
    assert set(result.phases) == {"total"}


def test_a_resolver_that_returns_no_address_is_a_dns_failure() -> None:
    """getaddrinfo raises rather than return nothing; a resolver given to the Prober may not."""
    result = Prober(resolver=lambda _host, _port, _timeout: []).probe(target("http://empty.test/hello"))
    assert verdict(result) == (False, Reason.DNS, None, "empty.test: no address")


def test_a_dns_server_that_never_answers_is_cut_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import threading

    # The C resolver has no timeout of its own; make it hang as a dead DNS server would, until the
    # test is over (a probe that waited for it would get a DNS failure, after 30 s at most).
    over = threading.Event()

    def dead_dns(*_a: object, **_k: object) -> None:
        over.wait(30)
        raise socket.gaierror("the test is over")

    monkeypatch.setattr(socket, "getaddrinfo", dead_dns)
    try:
        result = Prober().probe(target("http://slow-dns.example/hello", timeout=0.5))
    finally:
        over.set()
    # Cut by the deadline while the lookup still hangs; no wall-clock bound (a loaded machine
    # missed one of 1 s).
    assert verdict(result) == (False, Reason.TIMEOUT, None, "dns: DNS lookup of slow-dns.example took longer than 0.5s")


@pytest.mark.parametrize(("mode", "status"), [("hang", None), ("drip", 200)])
def test_hanging_and_dripping_servers_time_out_on_time(mode: str, status: int | None) -> None:
    """A timeout after the headers keeps the status that came: the answer did start. The peer
    hangs 30 s, or drips a byte every 0.2 s for 200 s: a probe that waited for it would end with
    a protocol error or the whole body, and one whose socket timeout restarted with every byte
    would never time out against the drip. TIMEOUT is the deadline cutting it; no wall-clock
    bound (a loaded machine missed one of 0.5 s over the deadline)."""
    with http_peer(mode) as url:
        result = Prober().probe(target(url, timeout=0.8))
    assert verdict(result) == (False, Reason.TIMEOUT, status, "timed out waiting for the response")


def test_https_reports_tls_phase_and_certificate_days(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, days=90)
    with http_peer("ok", tls=server_tls(cert, key)) as url:
        result = Prober(ssl_context=ssl.create_default_context(cafile=str(cert))).probe(target(url))
    assert result.ok, result.detail
    assert "tls" in result.phases
    assert result.cert_days_remaining is not None and 89 < result.cert_days_remaining <= 90


def test_certificate_expiring_soon_is_reported(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, days=3)
    with http_peer("ok", tls=server_tls(cert, key)) as url:
        result = Prober(ssl_context=ssl.create_default_context(cafile=str(cert))).probe(target(url))
    assert result.ok and result.cert_days_remaining is not None and 2 < result.cert_days_remaining <= 3


def test_certificate_days_are_counted_from_the_probes_clock_to_the_hundredth(tmp_path: Path) -> None:
    """89.996 days left is reported as 90.0 (a day of 86,400 s, two decimals): a day one second
    longer makes it 89.99, three decimals 89.996, none an integer."""
    from cryptography import x509

    cert, key = make_certificate(tmp_path, days=90)
    expires = x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc.timestamp()
    prober = Prober(ssl_context=ssl.create_default_context(cafile=str(cert)), wall_clock=lambda: expires - 7_775_654.4)
    with http_peer("ok", tls=server_tls(cert, key)) as url:
        result = prober.probe(target(url))
    assert result.ok, result.detail
    assert result.cert_days_remaining == 90.0 and isinstance(result.cert_days_remaining, float)


def test_untrusted_certificate_is_a_tls_failure(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, days=90)
    with http_peer("ok", tls=server_tls(cert, key)) as url:
        result = Prober().probe(target(url))  # system CAs only: self-signed is not trusted
    assert verdict(result) == (False, Reason.TLS, None, "tls: CERTIFICATE_VERIFY_FAILED: self-signed certificate")
    assert result.cert_days_remaining is None


@pytest.mark.parametrize(
    ("days", "host", "why"),
    [
        (-0.5, "localhost", "certificate has expired"),
        (90, "other.test", "Hostname mismatch, certificate is not valid for 'other.test'."),
    ],
    ids=["expired", "wrong-name"],
)
def test_a_certificate_that_fails_verification_says_which_check_failed(
    tmp_path: Path, days: float, host: str, why: str
) -> None:
    """A trusted certificate that expired, or names another host: a TLS failure, and the detail
    tells the one from the other (both were "CERTIFICATE_VERIFY_FAILED" alone)."""
    cert, key = make_certificate(tmp_path, days=days)
    with raw_peers.raw_peer(raw_peers.echo_host, tls=server_tls(cert, key)) as port:

        def to_peer(_host: str, _port: int, timeout: float) -> list:
            return resolve("127.0.0.1", port, timeout)

        prober = Prober(ssl_context=ssl.create_default_context(cafile=str(cert)), resolver=to_peer)
        result = prober.probe(target(f"https://{host}:{port}/hello", expect_body=None))
    assert verdict(result) == (False, Reason.TLS, None, f"tls: CERTIFICATE_VERIFY_FAILED: {why}")
    assert result.cert_days_remaining is None


def test_plain_http_to_an_https_port_is_a_protocol_failure_not_a_crash(tmp_path: Path) -> None:
    """The TLS server drops a connection that opens with "GET": the probe gets a reset or an
    end of stream (which one is the kernel's timing), never an answer."""
    cert, key = make_certificate(tmp_path, days=90)
    with http_peer("ok", tls=server_tls(cert, key)) as url:
        result = Prober().probe(target(url.replace("https://", "http://"), timeout=1))
    assert verdict(result)[:3] == (False, Reason.PROTOCOL, None)
    assert result.detail.startswith(("bad response: ConnectionResetError", "bad response: RemoteDisconnected"))


# --- one deadline over every phase, HTTP and HTTPS ------------------------------------------

DEADLINE = 1.0
MARGIN = 0.75  # generous: a loaded 2-core machine must not make these flaky


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"), days=90)


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
@pytest.mark.parametrize(
    ("behaviour", "phase"),
    [(raw_peers.silent, "tls"), (raw_peers.drip_headers, "first_byte"), (raw_peers.drip_body, "body")],
    ids=["silent", "drip_headers", "drip_body"],
)
def test_every_phase_ends_at_the_deadline(https: bool, behaviour, phase: str, tls_files: tuple[Path, Path]) -> None:
    """A server that never finishes the TLS handshake (or, over HTTP, never answers), one that
    drips its headers and one that drips its body: each probe ends at its deadline."""
    cert, key = tls_files
    with raw_peers.raw_peer(behaviour, tls=server_tls(cert, key) if https and phase != "tls" else None) as port:
        url = f"{'https' if https else 'http'}://127.0.0.1:{port}/hello"
        prober = Prober(ssl_context=ssl.create_default_context(cafile=str(cert)))
        started = time.monotonic()
        result = prober.probe(target(url, timeout=DEADLINE))
        elapsed = time.monotonic() - started
    # Over HTTPS, the silent server never finishes the handshake; the others did answer.
    detail = "tls handshake timed out" if https and phase == "tls" else "timed out waiting for the response"
    assert verdict(result) == (False, Reason.TIMEOUT, 200 if phase == "body" else None, detail)
    assert elapsed < DEADLINE + MARGIN, f"took {elapsed:.2f}s"
    assert result.phases["total"] / 1000 >= DEADLINE - 0.05


def test_a_tls_handshake_dripped_a_byte_at_a_time_ends_at_the_deadline(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    with (
        raw_peers.raw_peer(raw_peers.echo_host, tls=server_tls(cert, key)) as upstream,
        raw_peers.raw_peer(raw_peers.drip_from(upstream)) as port,
    ):
        prober = Prober(ssl_context=ssl.create_default_context(cafile=str(cert)))
        started = time.monotonic()
        result = prober.probe(target(f"https://127.0.0.1:{port}/hello", timeout=DEADLINE))
        elapsed = time.monotonic() - started
    assert result.reason is Reason.TIMEOUT and "tls" in result.detail, result.detail
    assert elapsed < DEADLINE + MARGIN, f"took {elapsed:.2f}s"


def test_a_connect_that_never_completes_ends_at_the_deadline() -> None:
    with raw_peers.stalled_listener() as port:
        started = time.monotonic()
        result = Prober().probe(target(f"http://127.0.0.1:{port}/hello", timeout=DEADLINE))
        elapsed = time.monotonic() - started
    assert verdict(result) == (False, Reason.TIMEOUT, None, f"connect to 127.0.0.1:{port} timed out")
    assert elapsed < DEADLINE + MARGIN, f"took {elapsed:.2f}s"


def test_the_command_line_keeps_its_timeout_over_https(tls_files: tuple[Path, Path]) -> None:
    """The issue's reproduction, as a user runs it: it did not return within 40 s."""
    cert, key = tls_files
    with raw_peers.raw_peer(raw_peers.drip_headers, tls=server_tls(cert, key)) as port:
        started = time.monotonic()
        done = subprocess.run(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "checker_lambda", f"https://127.0.0.1:{port}/hello"]
            + ["--timeout", "1", "--ca-bundle", str(cert)],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert "reason=timeout" in done.stdout
    assert elapsed < 1 + 3, f"took {elapsed:.2f}s (interpreter start included)"


# --- every address, and the Host header --------------------------------------------------------


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")


def test_host_header_keeps_a_non_default_port() -> None:
    with raw_peers.raw_peer(raw_peers.echo_host) as port:
        result = Prober().probe(target(f"http://127.0.0.1:{port}/hello", expect_body=f"127.0.0.1:{port}"))
    assert result.ok, result.detail


@needs_ipv6
def test_ipv6_literal_url_is_probed_with_a_bracketed_host_and_a_readable_name() -> None:
    with raw_peers.raw_peer(raw_peers.echo_host, host="::1") as port:
        url = f"http://[::1]:{port}/hello"
        parsed = Target.parse({"url": url, "expect_body": f"[::1]:{port}"}, "t")
        result = Prober().probe(parsed)
    assert result.ok, result.detail
    assert parsed.name == f"0--1-{port}-hello"


def test_default_host_header_has_no_port() -> None:
    with raw_peers.raw_peer(raw_peers.echo_host) as port:
        # The resolver sends "default-port.test":80 to the peer's real port.
        def to_peer(host: str, _port: int, timeout: float) -> list:
            return resolve("127.0.0.1", port, timeout)

        result = Prober(resolver=to_peer).probe(
            target("http://default-port.test/hello", expect_body="default-port.test")
        )
    assert result.ok, result.detail
    assert result.body_bytes == len("default-port.test")


@needs_ipv6
@pytest.mark.parametrize("first", ["refused", "stalled"])
def test_every_resolved_address_is_tried_within_the_deadline(first: str) -> None:
    """A name with an IPv4 address that refuses (or drops the SYN) and an IPv6 one that answers."""
    with contextlib.ExitStack() as stack:
        port = stack.enter_context(raw_peers.stalled_listener()) if first == "stalled" else free_port()
        stack.enter_context(raw_peers.raw_peer(raw_peers.echo_host, host="::1", port=port))

        def dual_stack(_host: str, _port: int, timeout: float) -> list:
            return resolve("127.0.0.1", port, timeout) + resolve("::1", port, timeout)

        started = time.monotonic()
        dual = target(f"http://dual.test:{port}/hello", expect_body=f"dual.test:{port}", timeout=DEADLINE)
        result = Prober(resolver=dual_stack).probe(dual)
        elapsed = time.monotonic() - started
    assert result.ok, result.detail
    assert elapsed < DEADLINE + MARGIN


@needs_ipv6
def test_all_addresses_refused_is_refused_and_names_each() -> None:
    port = free_port()

    def dual_stack(_host: str, _port: int, timeout: float) -> list:
        return resolve("127.0.0.1", port, timeout) + resolve("::1", port, timeout)

    result = Prober(resolver=dual_stack).probe(target(f"http://dual.test:{port}/hello"))
    assert verdict(result) == (
        False,
        Reason.REFUSED,
        None,
        f"127.0.0.1:{port} refused the connection; [::1]:{port} refused the connection",
    )


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("http://[::1]:8080/hello", "0--1-8080-hello"),
        ("https://[2001:db8::1]/", "2001-db8--1"),
        ("http://[2001:db8::]/x", "2001-db8--0-x"),
        ("http://127.0.0.1:8080/hello", "127.0.0.1-8080-hello"),  # unchanged: names key the alarms
        ("https://a.example/health", "a.example-health"),
    ],
)
def test_default_target_names_read_well(url: str, name: str) -> None:
    assert Target.parse({"url": url}, "t").name == name


def test_a_body_cut_short_of_its_content_length_is_a_protocol_failure() -> None:
    """Once reported UP: http.client's read returns b'' at the end of the stream without raising."""
    with raw_peers.raw_peer(raw_peers.short_body) as port:
        result = Prober().probe(target(f"http://127.0.0.1:{port}/hello", expect_body="Hello"))
    assert not result.ok and result.reason == Reason.PROTOCOL
    assert result.detail == "connection closed after 11 of 1000 bytes"


def test_a_non_ascii_url_is_refused_at_validation_not_crashed_on() -> None:
    """It once escaped the probe as UnicodeEncodeError and failed the whole run."""
    for url in ("http://127.0.0.1/café", "https://bücher.example/"):
        with pytest.raises(SettingsError, match="must be ASCII"):
            Target.parse({"url": url}, "t")


# --- what each failure is called: statuses, answers cut short, connects that fail ---------------


def answer_with(status_line: str, body: bytes = b"Hello World", headers: str = "") -> raw_peers.Behaviour:
    head = f"HTTP/1.1 {status_line}\r\nContent-Length: {len(body)}\r\n{headers}Connection: close\r\n\r\n"
    return raw_peers.answer(head.encode("ascii") + body)


@pytest.mark.parametrize(
    ("status_line", "expect_status", "expected"),
    [
        ("201 Created", 200, (False, Reason.STATUS, 201, "status 201, expected 200")),  # 2xx is not "200"
        ("201 Created", 201, (True, None, 201, "")),
        ("200 OK", 500, (False, Reason.STATUS, 200, "status 200, expected 500")),
        ("500 Internal Server Error", 500, (True, None, 500, "")),
        ("404 Not Found", 404, (True, None, 404, "")),
        # The right body does not save a wrong status.
        ("503 Service Unavailable", 200, (False, Reason.STATUS, 503, "status 503, expected 200")),
        ("599 Odd", 200, (False, Reason.STATUS, 599, "status 599, expected 200")),
    ],
)
def test_a_status_is_an_exact_match(status_line: str, expect_status: int, expected: tuple) -> None:
    with raw_peers.raw_peer(answer_with(status_line)) as port:
        result = Prober().probe(target(f"http://127.0.0.1:{port}/hello", expect_status=expect_status))
    assert verdict(result) == expected


def test_a_redirect_is_not_followed_it_is_the_status() -> None:
    """The probe judges the first answer a client gets: a service that moved or loops on
    redirects is not what a client asking this URL is served, even if the new place is healthy."""
    with (
        raw_peers.raw_peer(answer_with("200 OK")) as healthy,
        raw_peers.raw_peer(
            answer_with("301 Moved Permanently", b"", f"Location: http://127.0.0.1:{healthy}/hello\r\n")
        ) as port,
    ):
        result = Prober().probe(target(f"http://127.0.0.1:{port}/hello"))
        moved = Prober().probe(target(f"http://127.0.0.1:{port}/hello", expect_status=301, expect_body=None))
    assert verdict(result) == (False, Reason.STATUS, 301, "status 301, expected 200")
    assert verdict(moved) == (True, None, 301, "")


@pytest.mark.parametrize(
    ("behaviour", "status", "detail"),
    [
        (
            raw_peers.answer(b""),
            None,
            "bad response: RemoteDisconnected: Remote end closed connection without response",
        ),
        (
            raw_peers.reset_after(b"HTTP/1.1 200 OK\r\nContent-"),
            None,
            "bad response: ConnectionResetError: [Errno 104] Connection reset by peer",
        ),
        (
            raw_peers.reset_after(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHello"),
            200,
            "bad response: ConnectionResetError: [Errno 104] Connection reset by peer",
        ),
        (
            raw_peers.answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nHello World\r\n"),
            200,
            "bad response: IncompleteRead: IncompleteRead(0 bytes read)",
        ),
        (
            raw_peers.answer(b"HTTP/1.1 1000 Odd\r\nContent-Length: 0\r\n\r\n"),
            None,
            "bad response: BadStatusLine: HTTP/1.1 1000 Odd\r\n",
        ),
    ],
    ids=["closed-without-answer", "reset-in-headers", "reset-in-body", "bad-chunk-size", "status-out-of-range"],
)
def test_an_answer_that_breaks_off_or_is_not_http_is_a_protocol_failure(behaviour, status, detail: str) -> None:
    """Not a timeout (the deadline is far) and not a connect failure (the connection was made)."""
    with raw_peers.raw_peer(behaviour) as port:
        result = Prober().probe(target(f"http://127.0.0.1:{port}/hello", timeout=DEADLINE))
    assert verdict(result) == (False, Reason.PROTOCOL, status, detail)


@pytest.mark.parametrize(
    ("behaviour", "detail"),
    [
        (raw_peers.answer(b"", whole_request=False), "tls: UNEXPECTED_EOF_WHILE_READING"),
        (raw_peers.reset_after(b"", whole_request=False), "tls: [Errno 104] Connection reset by peer"),
        # A plain HTTP server's "400 Bad Request" to the ClientHello; OpenSSL's words for it vary.
        (raw_peers.answer(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", whole_request=False), None),
    ],
    ids=["closed-in-handshake", "reset-in-handshake", "plain-http-server"],
)
def test_a_handshake_that_fails_is_a_tls_failure(behaviour, detail: str | None) -> None:
    with raw_peers.raw_peer(behaviour) as port:
        result = Prober().probe(target(f"https://127.0.0.1:{port}/hello", timeout=DEADLINE))
    assert verdict(result)[:3] == (False, Reason.TLS, None)
    assert result.detail == detail if detail else result.detail.startswith("tls: "), result.detail
    assert result.cert_days_remaining is None


def test_a_connect_error_other_than_refused_or_timeout_is_connect() -> None:
    """The kernel refuses a TCP connection to a multicast address at once (ENETUNREACH), as it
    does to any unreachable network."""
    result = Prober().probe(target("http://224.0.0.1/hello", timeout=DEADLINE))
    assert verdict(result) == (
        False,
        Reason.CONNECT,
        None,
        "connect to 224.0.0.1:80: [Errno 101] Network is unreachable",
    )


SHORT = 0.6  # the deadline of probes that wait on a stalled connect: the test waits for it


@pytest.mark.parametrize(
    ("kinds", "reason"),
    [
        (("refused", "refused"), Reason.REFUSED),
        (("stalled", "stalled"), Reason.TIMEOUT),
        (("refused", "stalled"), Reason.CONNECT),
        (("stalled", "refused"), Reason.CONNECT),
        (("refused", "unreachable"), Reason.CONNECT),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, tuple) else str(v),
)
def test_a_name_whose_addresses_fail_differently_is_a_connect_failure(kinds: tuple[str, str], reason: Reason) -> None:
    """Every address refused: nothing listens, REFUSED. Every address timed out: TIMEOUT. Mixed
    (one refuses, another drops the SYN): neither says what happened to the target, so it is
    CONNECT, and the detail names what each address did, in the order tried. Each address had
    its share of the deadline, so the probe still ends on time."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        # One port on every address, as DNS gives: two loopback addresses, or a multicast one.
        hosts = ["224.0.0.1" if kind == "unreachable" else f"127.0.0.{2 + i}" for i, kind in enumerate(kinds)]
        for kind, host in zip(kinds, hosts, strict=True):
            if kind == "stalled":
                stack.enter_context(raw_peers.stalled_listener(host, port))

        def two_addresses(_host: str, _port: int, _timeout: float) -> list:
            return [(socket.AF_INET, (host, port)) for host in hosts]

        started = time.monotonic()
        result = Prober(resolver=two_addresses).probe(target(f"http://two.test:{port}/hello", timeout=SHORT))
        elapsed = time.monotonic() - started
    said = {
        "refused": "{}:{} refused the connection",
        "stalled": "connect to {}:{} timed out",
        "unreachable": "connect to {}:{}: [Errno 101] Network is unreachable",
    }
    detail = "; ".join(said[kind].format(host, port) for kind, host in zip(kinds, hosts, strict=True))
    assert verdict(result) == (False, reason, None, detail)
    assert elapsed < SHORT + MARGIN, f"took {elapsed:.2f}s"
    if kinds[-1] == "stalled":  # the last address has all the time the others left, not a share
        assert result.phases["total"] / 1000 >= SHORT - 0.05, result.phases


# The clock's readings before each phase's check of the time left: the start, then per phase done
# its own check and its lap.
@pytest.mark.parametrize(("phase", "readings"), [("dns", 1), ("connect", 3), ("tls", 5)])
def test_a_deadline_reached_exactly_before_a_phase_is_a_timeout_naming_it(phase: str, readings: int) -> None:
    """Time left of exactly 0 is no time: given to a socket as its timeout, 0 would make the
    next call non-blocking instead (a clock that jumps to the deadline, as a paused Lambda's can)."""
    times = iter([0.0] * readings)  # every later reading is the deadline itself
    with raw_peers.raw_peer(raw_peers.silent) as port:  # connects, then says nothing
        url = f"{'https' if phase == 'tls' else 'http'}://127.0.0.1:{port}/hello"
        result = Prober(clock=lambda: next(times, 0.5)).probe(target(url, timeout=0.5))
    assert verdict(result) == (False, Reason.TIMEOUT, None, f"deadline passed before {phase}")


def test_a_host_name_tls_cannot_encode_is_a_tls_failure_not_a_crash() -> None:
    """A name with an empty label resolves here (the resolver is the probe's collaborator), but
    the TLS layer refuses it as a server name before any handshake."""
    with raw_peers.raw_peer(raw_peers.silent) as port:
        prober = Prober(resolver=lambda host, p, timeout: [(socket.AF_INET, ("127.0.0.1", port))])
        result = prober.probe(target(f"https://.example:{port}/hello", timeout=DEADLINE))
    assert verdict(result)[:3] == (False, Reason.TLS, None)
    assert result.detail.startswith("tls: 'idna' codec can't encode"), result.detail
