"""`make drill`: prove, on the deployed stack, that an outage pages someone, and time it.

Two modes:

- `alarm` (the default, safe in production): SetAlarmState puts the default target's
  availability alarm into ALARM. CloudWatch documents this as temporary: a metric alarm
  returns to its real state at its next evaluation. The composite `<prefix>-service-down` must
  follow, notify, and return to OK by itself. The composite is never set directly: AWS does not
  promise a composite returns to its real state. Users, metrics and the error budget are untouched.
- `outage`: the load balancer's listener answers a fixed 503 for a bounded time (ModifyListener),
  so the checker's real probes fail. The original default actions are saved to an undo file
  first, and restored on every exit (normal end, error, Ctrl-C, SIGTERM, SIGHUP, the
  `--max-seconds` cap); `make drill-undo` restores from the file if this process could not.

Both wait for the composite to reach ALARM, confirm from its alarm history that each alarm
action executed (history item "Successfully executed action ..." vs "Failed to execute action
..."), wait for OK, and print the times next to the bounds. Exit 0 when every bound held and
every action succeeded, 1 otherwise, 2 for a usage or environment error (one line each, never a
traceback). Nothing here calls AWS at import time.
"""
