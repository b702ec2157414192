"""Sending: one retry policy for every channel, each channel on its own thread and every one
bounded by the same deadline, so a slow or failing channel never delays or drops another.

Retried: 429 (after its Retry-After when one is given), 5xx, timeouts and connection errors,
while the deadline allows. Not retried: any other answer (a wrong URL or key stays wrong).
Nothing here logs or raises a URL, a key or a secret value: errors name the channel only.
"""

from __future__ import annotations

import concurrent.futures
import email.utils
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from notifier.channels import Request
from notifier.contract import Channel

ATTEMPT_TIMEOUT = 10.0  # seconds, one request at most
FIRST_BACKOFF = 0.5  # doubled after each retry, at most MAX_BACKOFF
MAX_BACKOFF = 8.0


@dataclass(frozen=True)
class Outcome:
    channel: Channel
    ok: bool
    attempts: int
    status: int | None  # the last HTTP status, None when there was none
    error: str = ""  # why it failed, without any secret
    seconds: float = 0.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a webhook that redirects is misconfigured: its 3xx is the answer


_OPENER = urllib.request.build_opener(_NoRedirect)


def retry_after(value: str | None, now: float) -> float | None:
    """Retry-After in seconds or as an HTTP date (RFC 9110 §10.2.3); None: not given or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def send(
    channel: Channel,
    request: Request,
    *,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """POST until delivered, refused for good, or out of time (`deadline` on `clock`)."""
    start, attempts, status, error, backoff = clock(), 0, None, "", FIRST_BACKOFF
    while True:
        left = deadline - clock()
        if left <= 0:
            return Outcome(channel, False, attempts, status, error or "no time left", clock() - start)
        attempts += 1
        wait: float | None = None
        try:
            # https, or http to this machine only (channels._url)
            req = urllib.request.Request(request.url, data=request.body, headers=request.headers, method="POST")  # noqa: S310
            with _OPENER.open(req, timeout=min(ATTEMPT_TIMEOUT, left)) as answer:
                answer.read(65536)
                return Outcome(channel, True, attempts, answer.status, "", clock() - start)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
            exc.close()
            if exc.code == 429:
                wait = retry_after(exc.headers.get("Retry-After"), wall())
                if wait is not None:
                    wait = max(wait, FIRST_BACKOFF)  # "Retry-After: 0" or a past date: no tight loop
            elif exc.code < 500:
                return Outcome(channel, False, attempts, status, error, clock() - start)
        except (TimeoutError, OSError) as exc:  # URLError is an OSError; refused, reset, timed out
            reason = getattr(exc, "reason", exc)
            error = "timed out" if isinstance(reason, TimeoutError) else f"{type(reason).__name__}"
        if wait is None:
            wait, backoff = backoff, min(MAX_BACKOFF, backoff * 2)
        if clock() + wait >= deadline:
            error = f"{error}; the next try, {wait:g} s later, would pass the deadline"
            return Outcome(channel, False, attempts, status, error, clock() - start)
        sleep(wait)


def send_all(
    jobs: Sequence[tuple[Channel, Callable[[], Request]]],
    *,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
) -> list[Outcome]:
    """Every channel at once, each on its own thread; what is not done at the deadline failed.
    A job builds its request itself (reading its secret), so a missing secret fails its channel only."""

    def run(channel: Channel, build: Callable[[], Request]) -> Outcome:
        try:
            request = build()
        except Exception as exc:  # noqa: BLE001 - one channel's bad secret must not stop the others
            return Outcome(channel, False, 0, None, _describe(exc))
        try:
            return send(channel, request, deadline=deadline, clock=clock)
        except Exception as exc:  # noqa: BLE001 - e.g. http.client.InvalidURL, whose message is the URL
            return Outcome(channel, False, 1, None, f"could not send ({type(exc).__name__})")

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(jobs)), thread_name_prefix="channel")
    futures = [pool.submit(run, channel, build) for channel, build in jobs]
    concurrent.futures.wait(futures, timeout=max(0.0, deadline - clock()) + 1.0)
    pool.shutdown(wait=False, cancel_futures=True)
    return [
        f.result() if f.done() else Outcome(channel, False, 0, None, "still sending at the deadline")
        for f, (channel, _) in zip(futures, jobs, strict=True)
    ]


def _describe(exc: Exception) -> str:
    """An exception named without its message when the message could hold a secret value."""
    from notifier.channels import SecretError

    if isinstance(exc, SecretError):
        return f"its secret {exc}"
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    return f"its secret could not be read ({code or type(exc).__name__})"
