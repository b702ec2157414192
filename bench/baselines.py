"""Baselines for bench/service.py, served with exactly the service's waitress settings.

python -m bench.baselines flask   # a bare Flask app with one route
python -m bench.baselines wsgi    # a raw WSGI callable
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

from flask import Flask

from service.server import ServerSettings, build_server

BODY = b"Hello World"


def bare_flask() -> Flask:
    app = Flask(__name__)

    @app.get("/hello")
    def hello() -> str:
        return "Hello World"

    return app


def raw_wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]


if __name__ == "__main__":
    app = {"flask": bare_flask, "wsgi": lambda: raw_wsgi}[sys.argv[1]]()
    build_server(app, ServerSettings.from_env()).run()  # type: ignore[arg-type]
