"""cdk.json's "app": run the CDK app with this repository's virtualenv, so a bare `cdk synth`
(or deploy, diff, ...) typed in a shell works.

The CDK CLI runs "app" with whichever `python3` comes first on PATH, which rarely has
aws-cdk-lib. This script needs only the standard library: it hands over to .venv's Python
(made by `make install`), else to the running Python if it has the CDK (an activated
environment, the tests), else says to run `make install`, in one line.
"""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"


class Missing(Exception):
    pass


def interpreter() -> str:
    python = VENV / "bin" / "python"
    full = any(VENV.glob(".installed-*"))  # `make install`'s stamp; `make local` installs less
    if python.exists() and full:
        return str(python)
    if find_spec("aws_cdk") is not None:
        return sys.executable
    if python.exists():
        raise Missing(f"{VENV} has only what `make local` needs, not the CDK: run `make install` first")
    raise Missing(f"the CDK app needs this repository's virtualenv ({VENV}): run `make install` first")


def main(argv: list[str]) -> int:
    try:
        python = interpreter()
    except Missing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # The CDK CLI waits on this process: replace it rather than add a child.
    os.execv(python, [python, *argv])  # noqa: S606  # nosec B606


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
