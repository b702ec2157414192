"""The checker's log: one structured JSON line per event on stdout (the Lambda's log), for
CloudWatch Logs Insights. Standard library only."""

from __future__ import annotations

import json
import sys


def log_line(line: dict[str, object]) -> None:
    """One structured line on stdout."""
    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stdout.flush()
