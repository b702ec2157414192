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
import math
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

from tools.local_summary import put_availability_alarm, summary
from tools.net import free_port, port_in_use, wait_for_port

if TYPE_CHECKING:
    from checker_lambda.handler import Checker
    from checker_lambda.probe import ProbeResult
    from checker_lambda.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# Dummy credentials: the emulator accepts anything, and nothing here reaches AWS.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # nosec B105


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


def invocation_end(args: argparse.Namespace, settings: Settings, start: float, stop_at: float) -> float:
    """When an invocation that starts at `start` must end: as long as the stack's Lambda timeout
    (its last slot probed and published at their slowest), cut at --duration's end (`stop_at`), but
    never before its first slot can be probed and published: a run probes at least once, however
    short its --duration. A second to spare: the scheduled time travels as ISO text."""
    from checker_lambda import timing
    from checker_lambda.budgets import publish_budget

    slowest = max(t.timeout for t in settings.targets)
    run_for = timing.invocation_timeout(
        schedule=args.schedule, interval=args.interval, slowest_probe=slowest, publish_budget=publish_budget()
    )
    first = timing.slot_offset(args.interval) + slowest + publish_budget() + 1
    return start + min(run_for, max(stop_at - start, first))


class _Stopped(Exception):
    pass


def _scheduled(start: float) -> dict[str, str]:
    """The EventBridge event of an invocation due at `start`."""
    return {"time": datetime.fromtimestamp(start, tz=UTC).isoformat()}


def run_locations(
    args: argparse.Namespace,
    checkers: Sequence[Checker],
    describe: Callable[[ProbeResult], str],
    *,
    stop_at: float,
) -> None:
    """One thread per location, each invoking its checker on the schedule, started
    `interval / locations` apart (independent invocation phases, as rules in several regions
    have). Returns at --duration; on Ctrl-C the threads stop at their next wait, and what they
    had not published stays in each monitor's `pending`."""
    stop = threading.Event()

    def wait(seconds: float) -> None:
        if stop.wait(seconds):
            raise _Stopped

    def loop(i: int, checker: Checker) -> None:
        monitor = checker.monitor
        location = monitor.settings.location
        monitor.sleep = wait
        monitor.log = lambda r: print(f"[{location}] {describe(r)}", flush=True)
        try:
            wait(i * args.interval / len(checkers))
            while True:
                start = time.time()
                result = checker.invoke(_scheduled(start), invocation_end(args, monitor.settings, start, stop_at))
                print(f"-- [{location}] invocation: {json.dumps(result)}", flush=True)
                wait(max(0.0, min(start + args.schedule, stop_at) - time.time()))
                if stop_at - time.time() < args.interval:
                    return
        except _Stopped:
            return

    threads = [threading.Thread(target=loop, args=(i, c), daemon=True) for i, c in enumerate(checkers)]
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


class SingleChecker:
    """The one checker of a run without --locations, invoked in this (the main) thread as the Lambda
    is. Its probes are printed and kept until published, so that a Ctrl-C mid-invocation publishes
    them (`flush`), once."""

    def __init__(self, checker: Checker, describe: Callable[[ProbeResult], str]) -> None:
        self.checker = checker
        self.describe = describe
        self.pending: list[ProbeResult] = []
        self.publish = checker.monitor.publish
        checker.monitor.log = self._log
        checker.monitor.publish = self._publish_once

    def _log(self, r: ProbeResult) -> None:
        self.pending.append(r)
        print(self.describe(r), flush=True)

    def _publish_once(self, results: Sequence[ProbeResult]) -> object:
        # A Ctrl-C between the call and the bookkeeping would publish these twice. Python runs
        # signal handlers in the main thread, which is this one: hold a stop until both are done,
        # then act on it.
        held: list[int] = []
        stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, lambda signum, _frame: held.append(signum)) for sig in stops}
        try:
            done = self.publish(results)
            # Only these: a probe logged after them (a Ctrl-C mid-round, which the monitor publishes
            # on its way out without it) is still for `flush`.
            sent = {id(r) for r in results}
            self.pending[:] = [r for r in self.pending if id(r) not in sent]
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if held:
            raise KeyboardInterrupt
        return done

    def run(self, args: argparse.Namespace, stop_at: float) -> None:
        """Invocations every --schedule seconds until `stop_at` (at least one)."""
        settings = self.checker.monitor.settings
        while True:
            start = time.time()
            result = self.checker.invoke(_scheduled(start), invocation_end(args, settings, start, stop_at))
            print(f"-- invocation: {json.dumps(result)}", flush=True)
            time.sleep(max(0.0, min(start + args.schedule, stop_at) - time.time()))
            if stop_at - time.time() < args.interval:
                return

    def flush(self) -> None:
        if self.pending:
            self.publish(self.pending)


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


def _quiet_stdout() -> None:
    """`make local | head`: the reader is gone; what is left to print goes nowhere."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class Emulator:
    """moto in server mode on a free port of 127.0.0.1, standing in for CloudWatch and SNS."""

    def __init__(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop()


class LocalRun:
    """One `make local`, in steps: `prepare` (the Lambda's environment, pointed at the emulator;
    the topic and the alarm in it), `start` (the service), `check` (the checkers, until
    --duration or Ctrl-C), `finish` (stop the service, publish what is pending, the summary)."""

    def __init__(self, args: argparse.Namespace, emulator: Emulator) -> None:
        self.args = args
        self.emulator = emulator
        self.locations = location_names(args.locations)
        self.quorum = args.quorum or len(self.locations) // 2 + 1
        self.service: subprocess.Popen[bytes] | None = None
        self.single: SingleChecker | None = None
        self.located: list[Checker] = []  # with --locations: one checker per location
        self.output_closed = False
        self.cloudwatch: Any = None
        self.alarm_name: str | None = None
        self.topic = ""
        self.since = datetime.now(UTC) - timedelta(minutes=1)

    def prepare(self) -> None:
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.emulator.url,
                **EMULATOR_CREDENTIALS,
                "AWS_DEFAULT_REGION": "us-east-1",
                **checker_settings(self.args).to_env(),
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        import boto3

        self.cloudwatch = boto3.client("cloudwatch")
        self.topic = boto3.client("sns").create_topic(Name="hello-alerts")["TopicArn"]
        # With locations the stack pages through the quorum alarm, which the summary evaluates.
        if not self.locations:
            self.alarm_name = put_availability_alarm(self.cloudwatch, self.args, self.topic)
        self.since = datetime.now(UTC) - timedelta(minutes=1)

    def start(self) -> None:
        args = self.args
        self.service = _start_service(args.port)
        pid = self.service.pid
        print(f"service  http://127.0.0.1:{args.port}/hello  (pid {pid}; `kill {pid}` to cause an outage)")
        print(f"emulator {self.emulator.url}  (CloudWatch, SNS topic {self.topic})")
        print(
            f"checker  every {args.schedule} s, probing every {args.interval} s, "
            f"{args.confirm} probes confirm a change; Ctrl-C for the summary",
            flush=True,
        )
        if self.locations:
            print(
                f"locations {', '.join(self.locations)}: one checker each, phases "
                f"{args.interval / len(self.locations):g} s apart, publishing with a Location; the summary "
                f"shows the quorum ({self.quorum} of {len(self.locations)})",
                flush=True,
            )

    def check(self) -> None:
        from checker_lambda.__main__ import describe
        from checker_lambda.handler import Checker
        from checker_lambda.settings import Settings

        settings = Settings.from_env()  # the same validation the Lambda runs
        stop_at = time.time() + self.args.duration if self.args.duration else math.inf
        if self.locations:
            self.located = [
                Checker.build(dataclasses.replace(settings, location=location)) for location in self.locations
            ]
            run_locations(self.args, self.located, describe, stop_at=stop_at)
        else:
            self.single = SingleChecker(Checker.build(settings), describe)
            self.single.run(self.args, stop_at)

    def finish(self) -> None:
        _stop_service(self.service)
        if self.service is None:
            return
        try:
            if self.single is not None:
                self.single.flush()
            for c in self.located:  # what the interrupted invocations had not published yet
                if c.monitor.pending:
                    c.monitor.publish(c.monitor.pending)
            if not self.output_closed:
                summarized = summary(
                    self.cloudwatch,
                    self.since,
                    self.alarm_name,
                    locations=self.locations,
                    quorum=self.quorum,
                    confirm=self.args.confirm,
                    interval=self.args.interval,
                )
                print(summarized, flush=True)
        except BrokenPipeError:
            _quiet_stdout()


def refusal(args: argparse.Namespace) -> str | None:
    """Why this run cannot start, in one line naming the option; None when it can."""
    if problem := invalid_options(args):
        return problem
    if port_in_use(args.port):
        return (
            f"--port {args.port}: 127.0.0.1:{args.port} is in use by another process; stop it, "
            f"or choose another port: make local ARGS='--port {args.port + 1}'"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if problem := refusal(args):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    emulator = Emulator()
    run = LocalRun(args, emulator)
    status = 0
    try:
        run.prepare()
        run.start()
        run.check()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `make local | head`: stop, quietly
        run.output_closed = True
        _quiet_stdout()
    except ServiceExited as exc:
        status = 1
        print(f"error: the service exited (status {exc.args[0]}) before it listened; see above", file=sys.stderr)
    finally:
        # Cleanup runs to the end: a second Ctrl-C or SIGTERM must not leave the service behind.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        run.finish()
        emulator.stop()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
