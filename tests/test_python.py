"""One Python: the image, the Lambda, the tests and the workflows run the minor in .python-version.

The shipped code once ran on interpreters nothing tested (tests on 3.11, image on 3.13, Lambda on
3.14; 3.13 changed what ssl.create_default_context() accepts).
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cdk_app.checker import RUNTIME
from tests.infra import ROOT

MINOR = (ROOT / ".python-version").read_text().strip()


def test_the_version_file_names_one_minor() -> None:
    assert re.fullmatch(r"3\.\d+", MINOR), MINOR


def test_the_image_runs_it() -> None:
    [base] = re.findall(r"^FROM python:(\d+\.\d+)\.\d+-", (ROOT / "Dockerfile").read_text(), re.M)
    assert base == MINOR


def test_the_lambda_runs_it() -> None:
    assert RUNTIME.name == f"python{MINOR}"


def test_the_workflows_set_up_that_python() -> None:
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        steps = [s for job in yaml.safe_load(path.read_text())["jobs"].values() for s in job.get("steps", [])]
        setups = [s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python")]
        assert setups, path.name
        for step in setups:
            assert step["with"] == {"python-version-file": ".python-version"}, path.name


def _real_minor() -> str | None:
    """This machine's python<MINOR>, if it has one (pyenv's included)."""
    pyenv = sorted(glob.glob(str(Path.home() / f".pyenv/versions/{MINOR}*/bin/python{MINOR}")))
    found = [*pyenv, shutil.which(f"python{MINOR}")]
    for candidate in filter(None, found):
        if "/shims/" in candidate:  # pyenv's shims need pyenv itself: its binaries are listed first
            continue
        done = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
        )
        if done.returncode == 0 and done.stdout.strip() == str(tuple(map(int, MINOR.split(".")))):
            return candidate
    return None


def _other_python() -> str | None:
    """An interpreter of another minor than MINOR: what python3 is on a machine without it."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" != MINOR:
        return sys.executable
    candidates = sorted(glob.glob("/usr/bin/python3.*")) + sorted(
        glob.glob(str(Path.home() / ".pyenv/versions/3.*/bin/python3"))
    )
    for candidate in candidates:
        if not re.search(r"python3\.\d+$|/bin/python3$", candidate):
            continue
        done = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
        )
        if done.returncode == 0 and done.stdout.strip() not in ("", MINOR):
            return candidate
    return None


def _make_install(tmp_path: Path, *, with_minor: bool) -> str:
    """What `make install` would run on a machine with, or without, python<MINOR>."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # python3 is another minor: with python<MINOR> linked too, make must prefer it; without, warn.
    other = _other_python()
    if other is None:
        pytest.skip(f"no Python other than {MINOR} on this machine to stand in for python3")
    (bin_dir / "python3").symlink_to(other)
    if with_minor:
        (bin_dir / f"python{MINOR}").symlink_to(_real_minor() or sys.executable)
    for tool in ("make", "bash", "sh", "cat", "cksum", "cut", "test", "rm", "touch", "env"):
        found = shutil.which(tool)
        if found and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    done = subprocess.run(
        ["make", "-n", "install", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},  # no pyenv either
    )
    return done.stdout + done.stderr


def test_make_uses_that_python_when_this_machine_has_it(tmp_path: Path) -> None:
    out = _make_install(tmp_path, with_minor=True)
    assert f"python{MINOR} -m venv" in out
    if _real_minor():  # a stand-in of another version is (rightly) warned about
        assert "not found" not in out


def test_make_falls_back_to_python3_saying_so(tmp_path: Path) -> None:
    out = _make_install(tmp_path, with_minor=False)
    assert "python3 -m venv" in out
    assert f"warning: Python {MINOR} (what the image and the Lambda run) not found; using python3" in out
