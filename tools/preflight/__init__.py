"""`make preflight`: can this account, region and machine take a first `make deploy`?

One line per check (`ok`, `warn`, `FAIL`, `skip`), then exit 0 when nothing failed, 1 when
something did, 2 for a bad argument or configuration. Every AWS call is a read (Get*,
Describe*): free, nothing is created. The calls run concurrently under one deadline,
each with short botocore timeouts and one retry, so the whole run takes seconds. Nothing here
calls AWS at import time.

Configuration is the app's own: cdk.json's context with `-c key=value` over it, validated by
AppConfig.from_context exactly as synth does.
"""
