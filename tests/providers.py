"""Local HTTP servers that answer as each provider documents its webhook or events API
(docs/notifications.md has the sources): the success status and body, the error answer to a
request that breaks the contract, and 429 with Retry-After when told to. They record what they
were sent; `script` answers the first requests otherwise (429, 500, hang)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from notifier.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER

ROUTING_KEY = "R0123456789abcdef0123456789abcde"  # PagerDuty integration keys are 32 characters
GENIE_KEY = "eb243592-faa2-4ba2-a551q-1afdf565c889"
SIGNING_SECRET = "s3cret-signing-key"  # noqa: S105 - a test peer's own


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


def _problem(kind: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any] | None:
    """The provider's error answer to a request that breaks its documented contract, or None."""
    if not headers.get("content-type", "").startswith("application/json"):
        return 400, "invalid content type"
    try:
        body = json.loads(raw)
    except ValueError:
        return 400, "invalid_payload"
    if kind == "slack":  # 400 invalid_payload / no_text (api.slack.com/messaging/webhooks)
        if not body.get("text"):
            return 400, "no_text"
        blocks = body.get("blocks", [])
        if len(blocks) > 50 or any(b.get("type") == "header" and len(b["text"]["text"]) > 150 for b in blocks):
            return 400, "invalid_blocks"
        if any(len(b.get("fields", [])) > 10 for b in blocks):
            return 400, "invalid_blocks"
    elif kind == "teams":
        att = body.get("attachments") or [{}]
        card = att[0].get("content") or {}
        if body.get("type") != "message" or att[0].get("contentType") != "application/vnd.microsoft.card.adaptive":
            return 400, {"error": {"code": "InvalidRequestContent"}}
        if card.get("type") != "AdaptiveCard" or not card.get("version") or not card.get("body"):
            return 400, {"error": {"code": "InvalidRequestContent"}}
    elif kind == "discord":  # 50006 empty message; embed limits (Discord developer docs, Embed Limits)
        embeds = body.get("embeds") or []
        if not body.get("content") and not embeds:
            return 400, {"code": 50006, "message": "Cannot send an empty message"}
        for e in embeds:
            too_long = len(e.get("title", "")) > 256 or len(e.get("description", "")) > 4096
            fields = e.get("fields", [])
            bad_field = any(not f.get("name") or not f.get("value") or len(f["value"]) > 1024 for f in fields)
            if too_long or len(fields) > 25 or bad_field:
                return 400, {"code": 50035, "message": "Invalid Form Body"}
    elif kind == "googlechat":
        cards = body.get("cardsV2") or []
        if not body.get("text") and not cards:
            return 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}}
        if any(not c.get("cardId") or not c.get("card", {}).get("sections") for c in cards):
            return 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}}
    elif kind == "pagerduty":  # developer.pagerduty.com Events API v2 overview
        invalid = {"status": "invalid event", "message": "Event object is invalid", "errors": []}
        if len(body.get("routing_key", "")) != 32 or body.get("event_action") not in (
            "trigger",
            "acknowledge",
            "resolve",
        ):
            return 400, invalid
        if len(body.get("dedup_key", "")) > 255:
            return 400, invalid
        if body["event_action"] == "trigger":
            p = body.get("payload") or {}
            if (
                not p.get("summary")
                or not p.get("source")
                or p.get("severity") not in ("critical", "error", "warning", "info")
            ):
                return 400, invalid
    elif kind == "opsgenie":  # docs.opsgenie.com Alert API
        if headers.get("authorization") != f"GenieKey {GENIE_KEY}":
            return 401, {"message": "Could not authenticate", "took": 0.0, "requestId": "r"}
        if path.startswith("/v2/alerts/") and path.split("?")[0].endswith("/close"):
            return None if "identifierType=alias" in path else (400, {"message": "identifierType"})
        if (
            path != "/v2/alerts"
            or not body.get("message")
            or len(body["message"]) > 130
            or len(body.get("alias", "")) > 512
        ):
            return 422, {"message": "Request body is not processable", "took": 0.0, "requestId": "r"}
        if body.get("priority") not in ("P1", "P2", "P3", "P4", "P5"):
            return 422, {"message": "Request body is not processable", "took": 0.0, "requestId": "r"}
    elif kind == "webhook":
        stamp = headers.get(TIMESTAMP_HEADER.lower(), "")
        mac = hmac.new(SIGNING_SECRET.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get(SIGNATURE_HEADER.lower(), ""), f"sha256={mac}"):
            return 401, {"error": "bad signature"}
    return None


SUCCESS: dict[str, tuple[int, Any]] = {
    "slack": (200, "ok"),
    "teams": (202, None),
    "discord": (204, None),
    "googlechat": (200, {"name": "spaces/AAAA/messages/BBBB", "text": "..."}),
    "pagerduty": (202, {"status": "success", "message": "Event processed", "dedup_key": None}),
    "opsgenie": (202, {"result": "Request will be processed", "took": 0.1, "requestId": "req-1"}),
    "webhook": (200, {"received": True}),
}
NO_RETRY_AFTER = {"pagerduty", "googlechat"}
RATE_LIMITED: dict[str, Any] = {
    "slack": "rate_limited",
    "discord": {"message": "You are being rate limited.", "retry_after": 1.0, "global": False},
    "pagerduty": {"status": "throttle event", "message": "Requests for this service are arriving too quickly."},
}


@dataclass
class Provider:
    kind: str
    url: str
    received: list[Received] = field(default_factory=list)
    script: list[str] = field(default_factory=list)  # "404", "429", "500", "hang": the next answers, in order
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def secret(self) -> str:
        """What this provider's secret holds for the notifier (docs/notifications.md)."""
        if self.kind == "pagerduty":
            return json.dumps({"routing_key": ROUTING_KEY, "url": self.url + "/v2/enqueue"})
        if self.kind == "opsgenie":
            return json.dumps({"api_key": GENIE_KEY, "url": self.url})
        if self.kind == "webhook":
            return json.dumps({"url": self.url + "/hook", "signing_secret": SIGNING_SECRET})
        return self.url + "/hook/T000/B000/XXXX"


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = b"" if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if data:
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            provider.received.append(Received(self.path, headers, body, time.monotonic()))
            step = provider.script.pop(0) if provider.script else ""
            if step == "hang":
                provider.stop.wait(60)
                return
            if step == "404":  # a revoked webhook or a wrong key
                return self.answer(404, {"error": "not found"} if provider.kind != "slack" else "no_service")
            if step == "500":
                return self.answer(500, {"error": "internal"} if provider.kind != "slack" else "rollup_error")
            if step == "429":
                # PagerDuty's Events API and Google Chat document no Retry-After on their 429.
                after = {} if provider.kind in NO_RETRY_AFTER else {"Retry-After": "1"}
                return self.answer(429, RATE_LIMITED.get(provider.kind, {"error": "too many"}), after)
            problem = _problem(provider.kind, self.path, headers, raw)
            if problem:
                return self.answer(*problem)
            status, doc = SUCCESS[provider.kind]
            if provider.kind == "pagerduty":
                doc = {**doc, "dedup_key": body["dedup_key"]}
            self.answer(status, doc)

    return Handler


@contextmanager
def provider_server(kind: str) -> Iterator[Provider]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    provider = Provider(kind, f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(provider)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        provider.stop.set()
        server.shutdown()
        server.server_close()
