"""The checker's AWS clients, and the longest each of their calls can take.

One place for both, because the Lambda's timeout is derived from them: the synth
(cdk_app/config.py) reads the budgets, the checker builds its clients from the same
configurations. botocore's Config only: nothing here makes a client or imports boto3.
"""

from __future__ import annotations

from botocore.config import Config

# Short timeouts and one retry: a publish must fit in the time the loop keeps before the
# Lambda's deadline, and that time is derived from this configuration (publish_budget).
CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 2})
# A checker in another region publishes to the home region's CloudWatch: a new connection costs
# TCP and TLS round trips across the world (about 1 s at a 300 ms round trip), so it gets twice
# the margin. Its publish budget, and with it that Lambda's timeout, follow (publish_budget).
REMOTE_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 2})

# The URL parameter's read (checker_lambda/urls.py): one attempt, short timeouts. It comes before
# the invocation's first slot, and its budget is counted where the invocation's timing is
# (timing.invocation_timeout, config checker_limits). From another region, twice the margin.
URL_CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 1})
REMOTE_URL_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 1}
)


def client_config(*, remote: bool) -> Config:
    """The CloudWatch client's configuration: for the checker's own region, or another one."""
    return REMOTE_CLIENT_CONFIG if remote else CLIENT_CONFIG


def url_client_config(*, remote: bool) -> Config:
    """The SSM client's configuration, for the URL parameter's read."""
    return REMOTE_URL_CLIENT_CONFIG if remote else URL_CLIENT_CONFIG


# botocore's standard retry mode (botocore/retries/standard.py, ExponentialBackoff): the delay
# before retry i (0-based) is at most min(1 s * 2**i, 20 s) for a throttling error, raised by at
# most 5 s more when the response carries x-amz-retry-after.
_BACKOFF_BASE, _BACKOFF_MAX, _RETRY_AFTER_MAX = 1.0, 20.0, 5.0


def publish_budget(config: Config = CLIENT_CONFIG) -> float:
    """The longest one call can take with this client configuration, in seconds.

    Every attempt may spend its whole connect timeout and then its whole read timeout, and
    every retry waits its longest backoff first.
    """
    retries = config.retries or {}
    if retries.get("mode") != "standard":
        raise ValueError("publish_budget models botocore's 'standard' retry mode only")
    attempts = retries.get("total_max_attempts", retries.get("max_attempts", 2) + 1)
    per_attempt = config.connect_timeout + config.read_timeout
    backoff = sum(min(_BACKOFF_BASE * 2**i, _BACKOFF_MAX) + _RETRY_AFTER_MAX for i in range(attempts - 1))
    return attempts * per_attempt + backoff


def url_read_budget(*, remote: bool) -> float:
    """The longest one GetParameter call can take with that configuration, in seconds."""
    return publish_budget(url_client_config(remote=remote))
