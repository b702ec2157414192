"""`python -m service`: the container's entry point."""

from service.server import main

raise SystemExit(main())
