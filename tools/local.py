"""`make local`: the whole product on this machine, no AWS account.

Starts the service on 127.0.0.1 exactly as the container does, a moto server standing in for
CloudWatch and SNS, and runs the checker Lambda's handler on a schedule against the service,
with AWS_ENDPOINT_URL pointing at moto. Prints one line per probe; on Ctrl-C (or after
--duration) prints a summary read back from the emulator's CloudWatch.

The emulator stores metrics and alarms but never evaluates alarms or sends email: the alarm
shown here stays as moto left it. See docs/operations.md, "What `make local` cannot show".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal

# subprocess starts this repository's own service, with a fixed argv.
import subprocess  # nosec B404
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from tools.net import free_port, port_in_use, wait_for_port

if TYPE_CHECKING:
    from checker_lambda.probe import ProbeResult
    from checker_lambda.run import Monitor
    from checker_lambda.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# Dummy credentials: the emulator accepts anything, and nothing here reaches AWS.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # nosec B105


class Context:
    """The part of the Lambda context the handler uses."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.time() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.time()) * 1000)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="make local", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8080, help="service port (default 8080)")
    p.add_argument("--interval", type=int, default=5, help="seconds between probes (default 5)")
    p.add_argument("--schedule", type=int, default=30, help="seconds between invocations (default 30)")
    p.add_argument("--confirm", type=int, default=3, help="probes that confirm a change (default 3)")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument(
        "--locations",
        type=int,
        default=1,
        help="checkers probing side by side as if from this many regions, each with its Location (default 1)",
    )
    p.add_argument("--quorum", type=int, default=0, help="locations that must fail to page (default: a majority)")
    args = p.parse_args(argv)
    if not 1 <= args.locations <= 8:
        p.error(f"--locations {args.locations}: allowed is 1..8")
    if args.quorum and not 1 <= args.quorum <= args.locations:
        p.error(f"--quorum {args.quorum}: allowed is 0 (a majority) or 1..{args.locations} (--locations)")
    if not 1 <= args.port <= 65535:
        p.error(f"--port {args.port}: allowed is 1..65535")
    if not 1 <= args.interval <= 60:
        p.error(f"--interval {args.interval}: allowed is 1..60 seconds")
    return args


# The checker's rules, naming make local's options.
OPTION_LABELS = {
    "interval": lambda v: f"--interval {v:g}",
    "schedule": lambda v: f"--schedule {v:g}",
    "confirm": lambda v: f"--confirm {v}",
    "timeout": lambda v: f"the probe timeout {v:g}s (half of --interval, at most 2 s)",
}


def checker_settings(args: argparse.Namespace) -> Settings:
    """What the Lambda would run with, for the local service."""
    from checker_lambda.settings import Settings, Target

    target = Target(
        name="hello",
        url=f"http://127.0.0.1:{args.port}/hello",
        expect_body="Hello World",
        timeout=min(2.0, args.interval / 2),
    )
    return Settings(targets=(target,), interval=args.interval, schedule=args.schedule, confirm=args.confirm)


def invalid_options(args: argparse.Namespace) -> str | None:
    """The checker's own validation (as in Lambda), its message naming make local's options."""
    from checker_lambda.settings import SettingsError

    try:
        checker_settings(args).validate(OPTION_LABELS)
    except SettingsError as exc:
        return str(exc)
    return None


def location_names(count: int) -> list[str]:
    return [f"local-{i + 1}" for i in range(count)] if count > 1 else []


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


def summary(
    cloudwatch: Any,
    since: datetime,
    alarm_name: str,
    *,
    locations: Sequence[str] = (),
    quorum: int = 1,
    confirm: int = 3,
    interval: int = 5,
) -> str:
    from checker_lambda import contract

    now = datetime.now(UTC) + timedelta(minutes=1)
    lines = ["", "Summary, read back from the emulator's CloudWatch:"]

    def stats(name: str, dims: list[dict[str, str]], wanted: list[str]) -> dict[str, float]:
        points = cloudwatch.get_metric_statistics(
            Namespace=contract.NAMESPACE,
            MetricName=name,
            Dimensions=dims,
            StartTime=since,
            EndTime=now,
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

    target = [{"Name": contract.TARGET, "Value": "hello"}]
    avail = stats(contract.AVAILABILITY, target, ["SampleCount", "Average"])
    if avail and not locations:  # with locations, each has its own line below
        lines.append(f"  probes: {avail['SampleCount']:.0f}, availability {100 * avail['Average']:.1f}%")
    failed_by_location: dict[str, dict[int, bool]] = {}
    for location in locations:
        located = [*target, {"Name": contract.LOCATION, "Value": location}]
        here = stats(contract.AVAILABILITY, located, ["SampleCount", "Average"])
        if here:
            lines.append(
                f"  location {location}: probes {here['SampleCount']:.0f}, availability {100 * here['Average']:.1f}%"
            )
        points = cloudwatch.get_metric_statistics(
            Namespace=contract.NAMESPACE,
            MetricName=contract.AVAILABILITY,
            Dimensions=located,
            StartTime=since,
            EndTime=now,
            Period=interval,
            Statistics=["Minimum"],
        )["Datapoints"]
        failed_by_location[location] = {int(p["Timestamp"].timestamp() // interval): p["Minimum"] < 1 for p in points}
    if locations:
        lines += quorum_lines(failed_by_location, quorum=quorum, confirm=confirm, interval=interval)
    latency = stats(contract.LATENCY, target, ["SampleCount", "Average", "Maximum"])
    if latency:
        lines.append(f"  latency: average {latency['Average']:.1f} ms, max {latency['Maximum']:.1f} ms")
    listed = cloudwatch.list_metrics(Namespace=contract.NAMESPACE, MetricName=contract.FAILURES)["Metrics"]
    # The emulator may list a metric once per datapoint: one line per dimension set.
    unique = {tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in listed}
    for dims in sorted(unique):
        failed = stats(contract.FAILURES, [{"Name": k, "Value": v} for k, v in dims], ["SampleCount", "Sum"])
        if failed:
            where = f" from {dict(dims)[contract.LOCATION]}" if contract.LOCATION in dict(dims) else ""
            lines.append(f"  failures{where}, reason {dict(dims).get(contract.REASON)}: {failed['Sum']:.0f}")
    names = sorted({m["MetricName"] for m in cloudwatch.list_metrics(Namespace=contract.NAMESPACE)["Metrics"]})
    lines.append(f"  metrics stored in {contract.NAMESPACE}: {', '.join(names)}")
    [alarm] = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
    lines.append(
        f"  alarm {alarm_name}: stored (period {alarm['Period']} s, {alarm['DatapointsToAlarm']} of "
        f"{alarm['EvaluationPeriods']}, missing data {alarm['TreatMissingData']}); the emulator does not "
        "evaluate alarms, so its state means nothing here"
    )
    return "\n".join(lines)


class _Stopped(Exception):
    pass


def run_locations(
    args: argparse.Namespace,
    monitors: Sequence[Monitor],
    describe: Callable[[ProbeResult], str],
    *,
    stop_at: float | None,
) -> None:
    """One thread per location, each running its checker's invocations on the schedule, started
    `interval / locations` apart (independent invocation phases, as rules in several regions
    have). Returns at --duration; on Ctrl-C the threads stop at their next wait, and what they
    had not published stays in each monitor's `pending`."""
    from checker_lambda import timing
    from checker_lambda.budgets import publish_budget
    from checker_lambda.run import first_slot

    stop = threading.Event()

    def wait(seconds: float) -> None:
        if stop.wait(seconds):
            raise _Stopped

    def loop(i: int, monitor: Monitor) -> None:
        location = monitor.settings.location
        monitor.sleep = wait
        monitor.log = lambda r: print(f"[{location}] {describe(r)}", flush=True)
        run_for = timing.invocation_timeout(
            schedule=args.schedule,
            interval=args.interval,
            slowest_probe=max(t.timeout for t in monitor.settings.targets),
            publish_budget=publish_budget(),
        )
        try:
            wait(i * args.interval / len(monitors))
            while stop_at is None or stop_at - time.time() >= args.interval:
                start = time.time()
                end = start + run_for if stop_at is None else min(start + run_for, stop_at)
                results = monitor.run(first_slot(start, time.time(), monitor.settings), end)
                verdicts = {name: ("up" if ok else "down") for name, ok in monitor.verdicts.items()}
                print(f"-- [{location}] invocation: {json.dumps({'probes': len(results), 'verdicts': verdicts})}")
                wait(max(0.0, start + args.schedule - time.time()))
        except _Stopped:
            return

    threads = [threading.Thread(target=loop, args=(i, m), daemon=True) for i, m in enumerate(monitors)]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
    finally:  # Ctrl-C (in this thread) or the end: the others stop at their next wait
        stop.set()
        for t in threads:
            t.join(timeout=30)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM (`kill`, make forwarding its own) and SIGHUP (terminal closed) stop as Ctrl-C does."""
    raise KeyboardInterrupt


def _start_service(port: int) -> subprocess.Popen[bytes]:
    service = subprocess.Popen(  # nosec B603
        [sys.executable, "-m", "service"],
        cwd=ROOT,
        env={**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "DRAIN_DELAY_SECONDS": "0"},
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while service.poll() is None:
            try:
                wait_for_port(port, timeout=0.2)
                return service
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
    except BaseException:  # Ctrl-C or SIGTERM while it starts: the caller has no handle on it yet
        _stop_service(service)
        raise
    # It wrote its one-line reason to stderr already; never probe whatever else holds the port.
    raise ServiceExited(service.returncode)


class ServiceExited(Exception):
    pass


def _stop_service(service: subprocess.Popen[bytes] | None) -> None:
    if service is None or service.poll() is not None:
        return
    service.terminate()
    try:
        service.wait(timeout=15)
    except subprocess.TimeoutExpired:
        service.kill()
        service.wait(timeout=5)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if problem := invalid_options(args):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if port_in_use(args.port):
        print(
            f"error: --port {args.port}: 127.0.0.1:{args.port} is in use by another process; stop it, "
            f"or choose another port: make local ARGS='--port {args.port + 1}'",
            file=sys.stderr,
        )
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    service: subprocess.Popen[bytes] | None = None
    status = 0
    output_closed = False
    # This invocation's probes until they are published: Ctrl-C mid-invocation publishes them.
    pending: list[ProbeResult] = []
    publish: Callable[[Sequence[ProbeResult]], object] | None = None
    located: list[Monitor] = []  # with --locations: one checker per location
    locations: list[str] = []
    quorum = 1
    try:
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
                **EMULATOR_CREDENTIALS,
                "AWS_DEFAULT_REGION": "us-east-1",
                **checker_settings(args).to_env(),
            }
        )
        os.environ.pop("AWS_PROFILE", None)

        import boto3

        from cdk_app import alarm_plan as ap
        from checker_lambda import handler, timing
        from checker_lambda.__main__ import describe
        from checker_lambda.budgets import publish_budget
        from checker_lambda.settings import Settings

        settings = Settings.from_env()  # the same validation the Lambda runs
        locations = location_names(args.locations)
        quorum = args.quorum or len(locations) // 2 + 1
        sns = boto3.client("sns")
        cloudwatch = boto3.client("cloudwatch")
        topic = sns.create_topic(Name="hello-alerts")["TopicArn"]
        # The stack's single-region availability alarm, as planned (cdk_app/alarm_plan.py).
        alarm = ap.availability_alarm("hello", interval=args.interval, confirm=args.confirm)
        [metric] = alarm.metrics()
        alarm_name = "hello-availability"
        cloudwatch.put_metric_alarm(
            AlarmName=alarm_name,
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
        since = datetime.now(UTC) - timedelta(minutes=1)

        service = _start_service(args.port)
        print(
            f"service  http://127.0.0.1:{args.port}/hello  (pid {service.pid}; `kill {service.pid}` to cause an outage)"
        )
        print(f"emulator http://127.0.0.1:{moto_port}  (CloudWatch, SNS topic {topic})")
        print(
            f"checker  every {args.schedule} s, probing every {args.interval} s, "
            f"{args.confirm} probes confirm a change; Ctrl-C for the summary",
            flush=True,
        )
        if locations:
            print(
                f"locations {', '.join(locations)}: one checker each, phases {args.interval / len(locations):g} s "
                f"apart, publishing with a Location; the summary shows the quorum ({quorum} of {len(locations)})",
                flush=True,
            )
            located = [
                handler.build_monitor(dataclasses.replace(settings, location=location)) for location in locations
            ]
            run_locations(args, located, describe, stop_at=time.time() + args.duration if args.duration else None)
            raise KeyboardInterrupt  # --duration is over: the summary
        monitor = handler.build_monitor(settings)
        publish = monitor.publish

        def log(r: ProbeResult) -> None:
            pending.append(r)
            print(describe(r), flush=True)

        def publish_all(results: Sequence[ProbeResult]) -> object:
            # A Ctrl-C between the call and the bookkeeping would publish these twice. Python runs
            # signal handlers in the main thread, which is this one: hold a stop until both are
            # done, then act on it.
            held: list[int] = []
            stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
            previous = {sig: signal.signal(sig, lambda signum, _frame: held.append(signum)) for sig in stops}
            try:
                done = publish(results)
                # Only these: a probe logged after them (a Ctrl-C mid-round, which the monitor
                # publishes on its way out without it) is still for the finally below.
                sent = {id(r) for r in results}
                pending[:] = [r for r in pending if id(r) not in sent]
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            if held:
                raise KeyboardInterrupt
            return done

        monitor.log = log
        monitor.publish = publish_all
        handler._monitor = monitor
        stop_at = time.time() + args.duration if args.duration else float("inf")
        while stop_at - time.time() >= args.interval:
            start = time.time()
            scheduled = datetime.fromtimestamp(start, tz=UTC).isoformat()
            # As long as the stack's Lambda timeout: the last slot's probe and publish at their slowest.
            run_for = timing.invocation_timeout(
                schedule=args.schedule,
                interval=args.interval,
                slowest_probe=max(t.timeout for t in settings.targets),
                publish_budget=publish_budget(),
            )
            result = handler.handler({"time": scheduled}, Context(min(run_for, stop_at - start)))
            print(f"-- invocation: {json.dumps(result)}", flush=True)
            time.sleep(max(0.0, min(start + args.schedule, stop_at) - time.time()))
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `make local | head`: the reader is gone; stop, quietly
        output_closed = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except ServiceExited as exc:
        status = 1
        print(f"error: the service exited (status {exc.args[0]}) before it listened; see above", file=sys.stderr)
    finally:
        # Cleanup runs to the end: a second Ctrl-C or SIGTERM must not leave the service behind.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        _stop_service(service)
        if service is not None:
            try:
                if pending and publish is not None:
                    publish(pending)
                for m in located:  # what the interrupted invocations had not published yet
                    if m.pending:
                        m.publish(m.pending)
                if not output_closed:
                    summarized = summary(
                        cloudwatch,
                        since,
                        alarm_name,
                        locations=locations,
                        quorum=quorum,
                        confirm=args.confirm,
                        interval=args.interval,
                    )
                    print(summarized, flush=True)
            except BrokenPipeError:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        moto.stop()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
