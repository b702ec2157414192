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


def _values(r: ProbeResult) -> list[tuple[str, float, str, list[dict[str, str]]]]:
    """(metric name, value, unit, dimensions) for one probe."""
    dims = contract.dimensions(r.target)
    values = [(contract.AVAILABILITY, 1.0 if r.ok else 0.0, "None", dims)]
    if not r.ok and r.reason is not None:
        values.append((contract.FAILURES, 1.0, "Count", contract.dimensions(r.target, r.reason)))
    if r.status is not None:  # an answer came back: its timings mean something
        values.append((contract.LATENCY, r.phases["total"], "Milliseconds", dims))
        values += [(name, r.phases[phase], "Milliseconds", dims) for phase, name in PHASES.items() if phase in r.phases]
    if r.cert_days_remaining is not None:
        values.append((contract.CERT_DAYS_REMAINING, r.cert_days_remaining, "None", dims))
    return values


def metric_data(results: Sequence[ProbeResult], *, high_resolution: bool) -> list[dict[str, Any]]:
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
        for name, value, unit, dimensions in _values(r)
    ]


class CloudWatchPublisher:
    """Publishes one invocation's results with a single PutMetricData call.

    Errors propagate: a checker that cannot report must fail loudly (the Lambda's Errors
    metric and the missing-data-as-breaching availability alarm both see it).
    """

    def __init__(self, client: Any, *, high_resolution: bool) -> None:
        self.client = client
        self.high_resolution = high_resolution

    def publish(self, results: Sequence[ProbeResult]) -> int:
        data = metric_data(results, high_resolution=self.high_resolution)
        if not data:
            return 0
        if len(data) > MAX_DATUMS_PER_CALL:
            raise ValueError(f"{len(data)} datapoints exceed one PutMetricData call ({MAX_DATUMS_PER_CALL})")
        self.client.put_metric_data(Namespace=contract.NAMESPACE, MetricData=data)
        return len(data)
