"""`python -m tools.preflight`."""

from tools.preflight.cli import main

raise SystemExit(main())
