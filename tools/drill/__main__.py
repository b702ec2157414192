"""`python -m tools.drill`."""

import sys

from tools.drill.cli import main

raise SystemExit(main(sys.argv[1:]))
