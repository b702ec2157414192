"""What `make local` stores in the emulator and reads back from it: the stack's single-region
availability alarm, as planned, and the summary at the end of a run (each location's probes and
the quorum alarm evaluated on what they published, with --locations)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any


def quorum_lines(failed: dict[str, dict[int, bool]], *, quorum: int, confirm: int, interval: int) -> list[str]:
    """The stack's quorum alarm (cdk_app.alarm_plan.quorum_alarm) evaluated on what the locations
    published (failed[location][period]): per period its own expression over each location's
    Minimum (a location that has not published counts as healthy), then its M of N."""
    from cdk_app import alarm_plan as ap

    periods = sorted({p for by_period in failed.values() for p in by_period})
    if not periods:
        return ["  quorum: nothing published yet"]
    alarm = ap.quorum_alarm("hello", interval=interval, confirm=confirm, locations=list(failed), quorum=quorum)
    ids = [i for i, _ in alarm.named_metrics()]  # one per location, in failed's order
    periods = list(range(periods[0], periods[-1] + 1))
    minimum = [
        {
            i: None if p not in by_period else 0.0 if by_period[p] else 1.0
            for i, by_period in zip(ids, failed.values(), strict=True)
        }
        for p in periods
    ]
    counts = [sum(v == 0.0 for v in m.values()) for m in minimum]
    breaching = [bool(alarm.datapoint(m)) for m in minimum]
    n = alarm.periods
    state = ap.evaluate(breaching[-n:], n=n, m=alarm.datapoints, treat=alarm.missing, state=ap.OK)
    verdict = "ALARM (pages through service-down)" if state == ap.ALARM else state
    newest = counts[-n:]
    return [
        f"  quorum: {quorum} of {len(failed)} locations, {alarm.datapoints} of the newest {n} periods of {interval} s",
        f"    locations failing per period, oldest first: {' '.join(map(str, counts))}",
        f"    periods with at least {quorum}: {sum(breaching)} of {len(counts)}; "
        f"the newest {len(newest)}: {' '.join(map(str, newest))} -> {sum(breaching[-n:])} >= {alarm.datapoints}? "
        f"the quorum alarm would read {verdict}",
    ]


def _stats(
    cloudwatch: Any, name: str, dims: list[dict[str, str]], wanted: list[str], since: datetime, until: datetime
) -> dict[str, float]:
    """The statistics of one metric over the run, per minute summed up (empty: no datapoint)."""
    from checker_lambda import contract

    points = cloudwatch.get_metric_statistics(
        Namespace=contract.NAMESPACE,
        MetricName=name,
        Dimensions=dims,
        StartTime=since,
        EndTime=until,
        Period=60,
        Statistics=wanted,
    )["Datapoints"]
    if not points:
        return {}
    out: dict[str, float] = {"SampleCount": sum(p["SampleCount"] for p in points)}
    if "Sum" in wanted:
        out["Sum"] = sum(p["Sum"] for p in points)
    if "Average" in wanted:
        out["Average"] = sum(p["Average"] * p["SampleCount"] for p in points) / out["SampleCount"]
    if "Maximum" in wanted:
        out["Maximum"] = max(p["Maximum"] for p in points)
    return out


def _location_lines(
    cloudwatch: Any,
    since: datetime,
    until: datetime,
    *,
    locations: Sequence[str],
    quorum: int,
    confirm: int,
    interval: int,
) -> list[str]:
    """Each location's probes and availability, then the quorum alarm evaluated on what they published."""
    from checker_lambda import contract

    lines = []
    failed_by_location: dict[str, dict[int, bool]] = {}
    for location in locations:
        located = [{"Name": contract.TARGET, "Value": "hello"}, {"Name": contract.LOCATION, "Value": location}]
        here = _stats(cloudwatch, contract.AVAILABILITY, located, ["SampleCount", "Average"], since, until)
        if here:
            lines.append(
                f"  location {location}: probes {here['SampleCount']:.0f}, availability {100 * here['Average']:.1f}%"
            )
        points = cloudwatch.get_metric_statistics(
            Namespace=contract.NAMESPACE,
            MetricName=contract.AVAILABILITY,
            Dimensions=located,
            StartTime=since,
            EndTime=until,
            Period=interval,
            Statistics=["Minimum"],
        )["Datapoints"]
        failed_by_location[location] = {int(p["Timestamp"].timestamp() // interval): p["Minimum"] < 1 for p in points}
    return lines + quorum_lines(failed_by_location, quorum=quorum, confirm=confirm, interval=interval)


def _failure_lines(cloudwatch: Any, since: datetime, until: datetime) -> list[str]:
    """One line per failure reason (and location)."""
    from checker_lambda import contract

    listed = cloudwatch.list_metrics(Namespace=contract.NAMESPACE, MetricName=contract.FAILURES)["Metrics"]
    # The emulator may list a metric once per datapoint: one line per dimension set.
    unique = {tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in listed}
    lines = []
    for dims in sorted(unique):
        named = [{"Name": k, "Value": v} for k, v in dims]
        failed = _stats(cloudwatch, contract.FAILURES, named, ["SampleCount", "Sum"], since, until)
        if failed:
            where = f" from {dict(dims)[contract.LOCATION]}" if contract.LOCATION in dict(dims) else ""
            lines.append(f"  failures{where}, reason {dict(dims).get(contract.REASON)}: {failed['Sum']:.0f}")
    return lines


def summary(
    cloudwatch: Any,
    since: datetime,
    alarm_name: str | None,
    *,
    locations: Sequence[str] = (),
    quorum: int = 1,
    confirm: int = 3,
    interval: int = 5,
) -> str:
    """What the run published, read back from the emulator. With locations, each location and the
    quorum alarm's reading; without, the probes and the single-region alarm (`alarm_name`)."""
    from checker_lambda import contract

    until = datetime.now(UTC) + timedelta(minutes=1)
    lines = ["", "Summary, read back from the emulator's CloudWatch:"]
    target = [{"Name": contract.TARGET, "Value": "hello"}]
    if locations:
        lines += _location_lines(
            cloudwatch, since, until, locations=locations, quorum=quorum, confirm=confirm, interval=interval
        )
    elif avail := _stats(cloudwatch, contract.AVAILABILITY, target, ["SampleCount", "Average"], since, until):
        lines.append(f"  probes: {avail['SampleCount']:.0f}, availability {100 * avail['Average']:.1f}%")
    latency = _stats(cloudwatch, contract.LATENCY, target, ["SampleCount", "Average", "Maximum"], since, until)
    if latency:
        lines.append(f"  latency: average {latency['Average']:.1f} ms, max {latency['Maximum']:.1f} ms")
    lines += _failure_lines(cloudwatch, since, until)
    names = sorted({m["MetricName"] for m in cloudwatch.list_metrics(Namespace=contract.NAMESPACE)["Metrics"]})
    lines.append(f"  metrics stored in {contract.NAMESPACE}: {', '.join(names)}")
    if alarm_name is not None:
        [alarm] = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
        lines.append(
            f"  alarm {alarm_name}: stored (period {alarm['Period']} s, {alarm['DatapointsToAlarm']} of "
            f"{alarm['EvaluationPeriods']}, missing data {alarm['TreatMissingData']}); the emulator does not "
            "evaluate alarms, so its state means nothing here"
        )
    return "\n".join(lines)


def put_availability_alarm(cloudwatch: Any, args: argparse.Namespace, topic: str) -> str:
    """The stack's single-region availability alarm, as planned (cdk_app/alarm_plan.py), stored in
    the emulator; its name."""
    from cdk_app import alarm_plan as ap

    alarm = ap.availability_alarm("hello", interval=args.interval, confirm=args.confirm)
    [metric] = alarm.metrics()
    name = "hello-availability"
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmDescription=alarm.description,
        Namespace=metric.namespace,
        MetricName=metric.name,
        Dimensions=[{"Name": k, "Value": v} for k, v in metric.dimensions],
        Statistic=metric.statistic,
        Period=metric.period,
        EvaluationPeriods=alarm.periods,
        DatapointsToAlarm=alarm.datapoints,
        Threshold=alarm.threshold,
        ComparisonOperator=alarm.comparison.value,
        TreatMissingData=alarm.missing.value,
        AlarmActions=[topic],
        OKActions=[topic],
    )
    return name
