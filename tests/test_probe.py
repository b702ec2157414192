"""The probe against real local servers: healthy, broken, slow, hostile, HTTPS."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import pytest

from checker_lambda.contract import Reason
from checker_lambda.probe import Prober
from checker_lambda.settings import Target
from tests.conftest import RunningService
from tests.peers import closed_port_url, http_peer, make_certificate, server_tls


def target(url: str, **kw) -> Target:
    return Target(name="t", url=url, expect_body=kw.pop("expect_body", "Hello World"), **kw)


def test_healthy_service_passes_with_phases_timed(live_service: RunningService) -> None:
    result = Prober().probe(target(f"{live_service.url}/hello"))
    assert result.ok and result.reason is None
    assert result.status == 200 and result.body_bytes == len("Hello World")
    assert set(result.phases) == {"dns", "connect", "first_byte", "total"}
    assert all(v >= 0 for v in result.phases.values())
    assert result.phases["total"] >= result.phases["first_byte"]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("error", Reason.STATUS), ("wrong_body", Reason.BODY), ("garbage", Reason.PROTOCOL)],
)
def test_wrong_answers_fail_with_their_reason(mode: str, reason: Reason) -> None:
    with http_peer(mode) as url:
        result = Prober().probe(target(url))
    assert not result.ok and result.reason is reason, result.detail


def test_regex_expectation() -> None:
    with http_peer("ok") as url:
        assert Prober().probe(Target(name="t", url=url, expect_regex=r"^Hello \w+$")).ok
        result = Prober().probe(Target(name="t", url=url, expect_regex=r"^Bye"))
    assert result.reason is Reason.BODY


def test_refused_connection() -> None:
    result = Prober().probe(target(closed_port_url()))
    assert result.reason is Reason.REFUSED and result.status is None


def test_unresolvable_name() -> None:
    result = Prober().probe(target("http://does-not-exist.invalid/hello"))
    assert result.reason is Reason.DNS


def test_a_dns_server_that_never_answers_is_cut_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    # The C resolver has no timeout of its own; make it hang as a dead DNS server would.
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: time.sleep(5))
    started = time.monotonic()
    result = Prober().probe(target("http://slow-dns.example/hello", timeout=0.5))
    assert result.reason is Reason.TIMEOUT and result.detail.startswith("dns")
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("mode", ["hang", "drip"])
def test_hanging_and_dripping_servers_time_out_on_time(mode: str) -> None:
    with http_peer(mode) as url:
        started = time.monotonic()
        result = Prober().probe(target(url, timeout=0.8))
        elapsed = time.monotonic() - started
    assert result.reason is Reason.TIMEOUT, result.detail
    assert elapsed < 0.8 + 0.5


def test_endless_body_is_cut_at_the_byte_limit() -> None:
    with http_peer("endless") as url:
        started = time.monotonic()
        result = Prober(max_body_bytes=4096).probe(target(url, timeout=5))
    assert result.reason is Reason.TOO_LARGE
    assert 4096 < result.body_bytes <= 4096 + 16 * 1024
    assert time.monotonic() - started < 2


def test_body_over_the_limit_is_too_large_even_with_a_length() -> None:
    with http_peer("big") as url:
        result = Prober(max_body_bytes=1024).probe(target(url))
    assert result.reason is Reason.TOO_LARGE


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


def test_untrusted_certificate_is_a_tls_failure(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, days=90)
    with http_peer("ok", tls=server_tls(cert, key)) as url:
        result = Prober().probe(target(url))  # system CAs only: self-signed is not trusted
    assert result.reason is Reason.TLS
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail


def test_plain_http_to_an_https_port_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, days=90)
    with http_peer("ok", tls=server_tls(cert, key)) as url:
        result = Prober().probe(target(url.replace("https://", "http://"), timeout=1))
    assert not result.ok and result.reason in (Reason.PROTOCOL, Reason.TIMEOUT)
