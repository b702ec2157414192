"""The metric contract between the checker (which publishes) and the alarms/dashboard (which read).

cdk_app imports this module; so does the Lambda. Nothing else spells these names.
"""

from __future__ import annotations

from enum import StrEnum

NAMESPACE = "HelloWorld/HealthCheck"

# Dimensions
TARGET = "Target"
REASON = "Reason"
# Where the probe ran (the checker's region), on every metric when the checker runs in several
# regions (the checkerRegions context key); absent when it runs in one: then the metrics are
# exactly those of a single-region deploy.
LOCATION = "Location"

# Metrics, all with the TARGET dimension (FAILURES with TARGET and REASON as well).
AVAILABILITY = "Availability"  # 1 healthy probe, 0 failed probe; unit None
LATENCY = "Latency"  # whole request, ms
DNS_TIME = "DnsTime"  # ms
CONNECT_TIME = "ConnectTime"  # TCP handshake, ms
TLS_TIME = "TlsTime"  # TLS handshake, ms (HTTPS targets only)
FIRST_BYTE_TIME = "FirstByteTime"  # request sent -> response headers, ms
CERT_DAYS_REMAINING = "CertificateDaysRemaining"  # days (HTTPS targets only)
FAILURES = "Failures"  # count of failed probes, by REASON
# With the LOCATION dimension only: a checker in another region counts its own failed
# invocations here, because its AWS/Lambda Errors stay in its region, where no alarm of the home
# region can read them. The home checker does not publish it (its Errors alarm reads AWS/Lambda).
CHECKER_ERRORS = "CheckerErrors"  # count of failed invocations; unit Count
# No dimensions, from every location alike (one metric and one alarm for all of them; the log
# lines say where): invocations whose URL read failed and that probed the last good URL instead
# (checker_lambda/urls.py). Published only then, in the home region, with that invocation's probes.
URL_READ_FAILURES = "UrlReadFailures"  # count of invocations; unit Count

PHASE_METRICS = (DNS_TIME, CONNECT_TIME, TLS_TIME, FIRST_BYTE_TIME)


class Reason(StrEnum):
    """Why a probe failed: a closed set, used as the REASON dimension and in the probe log."""

    DNS = "dns"  # the name did not resolve
    REFUSED = "refused"  # TCP connection refused (nothing listening)
    CONNECT = "connect"  # other TCP connect errors (unreachable, reset during connect)
    TIMEOUT = "timeout"  # the probe's deadline passed, in any phase
    TLS = "tls"  # handshake or certificate verification failed
    PROTOCOL = "protocol"  # not a valid HTTP response, or the connection dropped mid-answer
    STATUS = "status"  # unexpected HTTP status
    BODY = "body"  # the body did not contain / match what was expected


def location_dimensions(location: str | None) -> list[dict[str, str]]:
    """The dimensions of CHECKER_ERRORS (none without a location)."""
    return [{"Name": LOCATION, "Value": location}] if location is not None else []


def dimensions(target: str, reason: Reason | None = None, location: str | None = None) -> list[dict[str, str]]:
    dims = [{"Name": TARGET, "Value": target}]
    if location is not None:
        dims.append({"Name": LOCATION, "Value": location})
    if reason is not None:
        dims.append({"Name": REASON, "Value": reason.value})
    return dims
