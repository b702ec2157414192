"""The drill's two ways to stop early: a usage or environment problem (one line, exit 2), a signal."""

from __future__ import annotations


class DrillError(Exception):
    """A usage or environment problem, one line for the user: exit 2."""


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived: unwind (restoring on the way) and exit 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def one_line(exc: BaseException) -> str:
    """An AWS error in one line, naming the permission when one was denied."""
    from botocore.exceptions import ClientError

    from tools.preflight.results import explain

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if "AccessDenied" in code or code in ("UnauthorizedOperation", "Forbidden"):
            return f"access denied to {exc.operation_name}: grant it to your identity ({code})"
    return " ".join(explain(exc).split())
