"""Turns probe results into CloudWatch datapoints and publishes them in one call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from checker_lambda import contract
from checker_lambda.probe import ProbeResult

# probe phase name -> metric name
PHASES = {
    "dns": contract.DNS_TIME,
    "connect": contract.CONNECT_TIME,
    "tls": contract.TLS_TIME,
    "first_byte": contract.FIRST_BYTE_TIME,
}
MAX_DATUMS_PER_CALL = 1000  # PutMetricData limit


def _values(
    r: ProbeResult, location: str | None = None, *, details: bool = True
) -> list[tuple[str, float, str, list[dict[str, str]]]]:
    """(metric name, value, unit, dimensions) for one probe. Without `details`, only what the
    alarms and the per-location dashboard read: availability, latency and failures."""
    dims = contract.dimensions(r.target, location=location)
    values = [(contract.AVAILABILITY, 1.0 if r.ok else 0.0, "None", dims)]
    if not r.ok and r.reason is not None:
        values.append((contract.FAILURES, 1.0, "Count", contract.dimensions(r.target, r.reason, location)))
    if r.status is not None:  # an answer came back: its timings mean something
        values.append((contract.LATENCY, r.phases["total"], "Milliseconds", dims))
        if details:
            values += [
                (name, r.phases[phase], "Milliseconds", dims) for phase, name in PHASES.items() if phase in r.phases
            ]
    if r.cert_days_remaining is not None and details:
        values.append((contract.CERT_DAYS_REMAINING, r.cert_days_remaining, "None", dims))
    return values


def most_datums_per_probe(*, https: bool) -> int:
    """Datapoints one probe can produce at most: a wrong answer has a status, all timings and a reason."""
    r = ProbeResult(target="t", url="", started_at=0.0, ok=False, reason=contract.Reason.STATUS, status=500)
    r.phases = {"total": 0.0} | {phase: 0.0 for phase in PHASES if https or phase != "tls"}
    r.cert_days_remaining = 0.0 if https else None
    return len(_values(r))


def metric_data(
    results: Sequence[ProbeResult], *, high_resolution: bool, location: str | None = None, details: bool = True
) -> list[dict[str, Any]]:
    resolution = 1 if high_resolution else 60
    return [
        {
            "MetricName": name,
            "Dimensions": dimensions,
            "Timestamp": datetime.fromtimestamp(r.slot if r.slot is not None else r.started_at, tz=UTC),
            "Value": value,
            "Unit": unit,
            "StorageResolution": resolution,
        }
        for r in results
        for name, value, unit, dimensions in _values(r, location, details=details)
    ]


class CloudWatchPublisher:
    """Publishes one invocation's results with a single PutMetricData call.

    Errors propagate: a checker that cannot report must fail loudly. Its Errors alarm sees the
    failed invocation (from another region, the CheckerErrors count the handler sends home), and
    the heartbeat alarm, which treats missing data as breaching, sees the silence; the
    availability alarm ignores missing data (cdk_app/alarm_plan.py).
    """

    def __init__(
        self, client: Any, *, high_resolution: bool, location: str | None = None, details: bool = True
    ) -> None:
        self.client = client
        self.high_resolution = high_resolution
        self.location = location  # the Location dimension, when the checker runs in several regions
        # Timing phases and certificate days: each is a billed metric per location, and the
        # dashboard and the certificate alarm read them from the home checker only.
        self.details = details
        self._extra: list[dict[str, Any]] = []  # this invocation's own counts, sent with its next batch

    def count_url_read_failures(self, count: int, when: float) -> None:
        """This invocation's failed URL reads (0: none), stamped `when` (its scheduled time), to go
        with its next batch of probes. Added to what an earlier invocation left unsent (one that
        published nothing: every slot skipped, or its probes dropped at the deadline), under the
        earlier stamp, so a failed read is never lost and a batch carries one such datapoint."""
        if not count:
            return
        if self._extra:
            self._extra[0]["Value"] += float(count)
        else:
            self._extra = [url_read_failures_datum(count, when)]

    def publish(self, results: Sequence[ProbeResult]) -> int:
        data = metric_data(results, high_resolution=self.high_resolution, location=self.location, details=self.details)
        if not data:
            return 0
        data = self._extra + data
        if len(data) > MAX_DATUMS_PER_CALL:
            raise ValueError(f"{len(data)} datapoints exceed one PutMetricData call ({MAX_DATUMS_PER_CALL})")
        self.client.put_metric_data(Namespace=contract.NAMESPACE, MetricData=data)
        self._extra = []
        return len(data)


# Datapoints an invocation adds to its probes' at most (url_read_failures_datum).
EXTRA_DATUMS_PER_RUN = 1


def _count_datum(name: str, dimensions: list[dict[str, str]], count: int, when: float) -> dict[str, Any]:
    """A count of the checker's own, standard resolution, in the period of `when`."""
    return {
        "MetricName": name,
        "Dimensions": dimensions,
        "Timestamp": datetime.fromtimestamp(when, tz=UTC),
        "Value": float(count),
        "Unit": "Count",
        "StorageResolution": 60,
    }


def url_read_failures_datum(count: int, when: float) -> dict[str, Any]:
    """No dimensions, from every location alike: one metric and one alarm for all of them (an
    alarm per location would add $0.10 a month to each); the log lines say where."""
    return _count_datum(contract.URL_READ_FAILURES, [], count, when)


def report_error(client: Any, location: str, when: float) -> None:
    """Count one failed invocation of the checker at `location` (one PutMetricData call)."""
    datum = _count_datum(contract.CHECKER_ERRORS, contract.location_dimensions(location), 1, when)
    client.put_metric_data(Namespace=contract.NAMESPACE, MetricData=[datum])
