"""The real server with one extra slow route, to test draining of a request being processed."""

import time

from service.app import AccessLog, Lifecycle, create_app
from service.server import ServerSettings, build_server, serve

lifecycle = Lifecycle()
log = AccessLog(interval=0.1)
app = create_app(lifecycle=lifecycle, access_log=log)


@app.get("/slow")
def slow() -> str:
    time.sleep(1.5)
    return "slow done"


config = ServerSettings.from_env()
raise SystemExit(serve(build_server(app, config, log), lifecycle, config, log))
