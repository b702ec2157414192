"""Contract of the service shared with the Dockerfile, the Kubernetes manifests and the checker.

Everything that must agree between the running container and the infrastructure lives here:
the port, the paths the probes use, the body the checker expects.
"""

from __future__ import annotations

PORT = 8080
HELLO_PATH = "/hello"
HELLO_BODY = "Hello World"
LIVENESS_PATH = "/livez"
READINESS_PATH = "/readyz"

# Graceful shutdown budget, in seconds. Kubernetes' terminationGracePeriodSeconds and the load
# balancer's deregistration delay are derived from these in cdk_app/manifests.py.
# DRAIN_DELAY: after SIGTERM, keep serving (answering "not ready") so that whoever still routes
# traffic here notices before the listener closes.
DRAIN_DELAY_SECONDS = 5.0
# DRAIN_TIMEOUT: the longest we wait for in-flight requests once the listener is closed.
DRAIN_TIMEOUT_SECONDS = 10.0

# waitress limits: a GET-only service has no use for big bodies or headers.
THREADS = 8
CONNECTION_LIMIT = 256
# Idle keep-alive connections are kept longer than the load balancer keeps its own
# (LOAD_BALANCER_IDLE_TIMEOUT_SECONDS): if the service closed first, the ALB could send a
# request down a connection being closed and answer 502.
LOAD_BALANCER_IDLE_TIMEOUT_SECONDS = 60
CHANNEL_TIMEOUT_SECONDS = 75
MAX_REQUEST_BODY_BYTES = 1024
MAX_REQUEST_HEADER_BYTES = 8192

# The access log is written in batches this often (service/app.py, AccessLog).
LOG_FLUSH_SECONDS = 0.1
# At most this many lines wait to be written (about 3 MB); beyond, lines are dropped and counted.
LOG_QUEUE_LINES = 10_000
