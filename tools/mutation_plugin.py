"""A pytest plugin for `make mutation` only (pyproject [tool.mutmut] pytest_add_cli_args).

mutmut runs the tests once in its own process to learn which tests call which function, then
forks one process per mutant that runs only those tests. Two things a fork inherits would make a
mutant's verdict wrong, and this plugin handles both:

- jsii (the CDK's runtime) talks to one Node.js process, started when aws_cdk is imported; two
  forked workers writing to that one pipe corrupt each other. The first run records every test
  that calls into jsii (itself, through a fixture, or through tests/infra.py's cached synths);
  in a fork each such test is reported skipped. Running it in a process of its own instead (a
  new jsii and a new synth) took about a minute a test on 2 cores: too slow for every mutant.
- functools caches filled by the first run hold what the unmutated code computed, and paths into
  that run's temporary directory, which a later pytest session on the machine may delete: every
  session (the clean run after the first, and each fork) clears every cache in the project's
  modules before its tests run.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest.reports import TestReport

_FIRST_PID = os.getpid()  # mutmut's own process: forks inherit this value, not the pid
_RECORD = Path("jsii-tests.json")  # in mutants/, where mutmut runs the tests
_PACKAGES = ("checker_lambda", "cdk_app", "service", "tools", "tests")
_current: list[str] = []  # the test or fixture being run, innermost last
_tests: set[str] = set()
_fixtures: set[str] = set()


def _forked() -> bool:
    return os.getpid() != _FIRST_PID


def pytest_configure(config: pytest.Config) -> None:
    if _forked():
        return
    from jsii._kernel.providers import process

    send = process._NodeProcess.send
    if getattr(send, "_records", False):
        return

    @functools.wraps(send)
    def recording_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        _record()
        return send(self, *args, **kwargs)

    recording_send._records = True  # type: ignore[attr-defined]
    process._NodeProcess.send = recording_send  # type: ignore[method-assign]


def _record() -> None:
    if _current:
        (_fixtures if _current[-1].startswith("fixture:") else _tests).add(_current[-1].removeprefix("fixture:"))
        if len(_current) > 1:
            _tests.add(_current[0])


def pytest_collection_finish(session: pytest.Session) -> None:
    """tests/infra.py caches each synthesis: a test that finds one cached calls no jsii in the
    first run, but would in a fork, where the caches are empty. Its cached helpers count as jsii."""
    infra = sys.modules.get("tests.infra")
    if _forked() or infra is None:
        return
    for name, value in list(vars(infra).items()):
        if callable(getattr(value, "cache_clear", None)) and not getattr(value, "_records", False):

            def recording(*args: Any, _cached: Any = value, **kwargs: Any) -> Any:
                _record()
                return _cached(*args, **kwargs)

            recording._records = True  # type: ignore[attr-defined]
            recording.cache_clear = value.cache_clear  # type: ignore[attr-defined]
            setattr(infra, name, recording)


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Iterator[None]:
    _current.append(f"fixture:{fixturedef.argname}")
    try:
        yield
    finally:
        _current.pop()


def _clear_caches(keep: tuple[str, ...] = ()) -> None:
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in _PACKAGES or name in keep:
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


def pytest_sessionstart(session: pytest.Session) -> None:
    _clear_caches()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """In the first run, each test computes afresh what a cache would hand it (a plan, a replay's
    timeline), so that mutmut records it as calling those functions: else only the first test to
    fill a cache is run for their mutants. tests/infra.py's synths stay cached: the tests that
    read them are recorded as calling jsii, and are not run in a fork anyway."""
    if not _forked():
        _clear_caches(keep=("tests.infra",))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _forked() and (_tests or _fixtures):
        known = json.loads(_RECORD.read_text()) if _RECORD.exists() else {"tests": [], "fixtures": []}
        known["tests"] = sorted(_tests | set(known["tests"]))
        known["fixtures"] = sorted(_fixtures | set(known["fixtures"]))
        _RECORD.write_text(json.dumps(known, indent=1))


def _uses_jsii(item: pytest.Item) -> bool:
    if not _RECORD.exists():
        return False
    known = json.loads(_RECORD.read_text())
    return item.nodeid in known["tests"] or bool(set(getattr(item, "fixturenames", ())) & set(known["fixtures"]))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if not _forked():
        _current.append(item.nodeid)
        return None  # pytest runs it; pytest_runtest_logfinish pops it
    if not _uses_jsii(item):
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    path, line, _ = item.location
    report = TestReport(
        item.nodeid,
        item.location,
        keywords={},
        outcome="skipped",
        longrepr=(path, (line or 0) + 1, "Skipped: calls the CDK (jsii): not in a forked mutmut worker"),
        when="call",
    )
    item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    if not _forked() and _current and _current[-1] == nodeid:
        _current.pop()
