"""One page in each product's documented format (docs/notifications.md has each source): a
Request per channel type, built from the page and the destination its secret holds."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from notifier.contract import Verdict
from notifier.page import Page

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
OPSGENIE_URL = "https://api.opsgenie.com"
SIGNATURE_HEADER = "X-Hello-Signature-256"  # the webhook type: sha256=<hex HMAC of "<timestamp>.<body>">
TIMESTAMP_HEADER = "X-Hello-Timestamp"
COLOURS = {
    Verdict.DOWN: 0xD13212,
    Verdict.DEGRADED: 0xFF9900,
    Verdict.CHECKER: 0x8C4FFF,
    Verdict.DELIVERY: 0x8C4FFF,
    Verdict.RECOVERED: 0x1D8102,
}
EMOJI = {
    Verdict.DOWN: "🔴",
    Verdict.DEGRADED: "🟠",
    Verdict.CHECKER: "🟣",
    Verdict.DELIVERY: "🟣",
    Verdict.RECOVERED: "🟢",
}


class SecretError(ValueError):
    """The secret's value is not what its channel type needs (the message never holds the value)."""


@dataclass(frozen=True)
class Destination:
    """What a secret holds: a webhook URL, or a key (and for the paging APIs an optional regional
    URL, e.g. PagerDuty's or Opsgenie's EU endpoints)."""

    url: str
    key: str = field(default="", repr=False)


@dataclass(frozen=True)
class Request:
    url: str = field(repr=False)  # a webhook URL is a secret
    body: bytes = field(repr=False)  # and so is a routing key in a PagerDuty event
    headers: dict[str, str] = field(default_factory=dict, repr=False)


def _url(value: str) -> str:
    parsed = urllib.parse.urlsplit(value)
    local = parsed.hostname in ("127.0.0.1", "localhost", "::1")
    if parsed.scheme != "https" and not (parsed.scheme == "http" and local):
        raise SecretError("holds no https:// URL")
    return value


def destination(kind: str, value: str) -> Destination:
    """Reads a secret's value: a URL (chat types), a key (pagerduty: routing key, opsgenie: API
    key), or a JSON object {"url", "routing_key" | "api_key" | "signing_secret"}."""
    value = value.strip()
    doc: dict[str, Any] = {}
    if value.startswith("{"):
        try:
            doc = json.loads(value)
        except json.JSONDecodeError:
            raise SecretError("holds invalid JSON") from None
    if kind == "pagerduty":
        key = doc.get("routing_key", "") if doc else value
        if not key:
            raise SecretError("holds no routing key")
        return Destination(_url(doc.get("url", PAGERDUTY_URL)), key)
    if kind == "opsgenie":
        key = doc.get("api_key", "") if doc else value
        if not key:
            raise SecretError("holds no API key")
        return Destination(_url(doc.get("url", OPSGENIE_URL)).rstrip("/"), key)
    if kind == "webhook":
        if not doc.get("url") or not doc.get("signing_secret"):
            raise SecretError('holds no {"url": ..., "signing_secret": ...}')
        return Destination(_url(doc["url"]), doc["signing_secret"])
    return Destination(_url(doc.get("url", "") if doc else value))


def _json(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


JSON = {"Content-Type": "application/json"}


def slack(p: Page, d: Destination) -> Request:
    """Incoming webhook: Block Kit blocks, with `text` as the notification's fallback."""
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{value}"} for label, value in p.facts()][:10]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{EMOJI[p.verdict]} {p.title}"[:150]}},
        {"type": "section", "fields": fields},
    ]
    if p.description:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": p.description[:3000]}]})
    if p.links():
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": t}, "url": u} for t, u in p.links()
                ],
            }
        )
    return Request(d.url, _json({"text": p.text()[:3000], "blocks": blocks}), JSON)


def teams(p: Page, d: Destination) -> Request:
    """A Workflows (Power Automate) webhook: an Adaptive Card as a message attachment."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "fallbackText": p.text(),
        "body": [
            {
                "type": "TextBlock",
                "text": f"{EMOJI[p.verdict]} {p.title}",
                "weight": "Bolder",
                "size": "Large",
                "wrap": True,
            },
            {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in p.facts()]},
            *([{"type": "TextBlock", "text": p.description, "wrap": True, "isSubtle": True}] if p.description else []),
        ],
        "actions": [{"type": "Action.OpenUrl", "title": t, "url": u} for t, u in p.links()],
    }
    body = {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }
    return Request(d.url, _json(body), JSON)


def discord(p: Page, d: Destination) -> Request:
    """Execute Webhook: `content` as the plain text, one embed; mentions off."""
    embed = {
        "title": f"{EMOJI[p.verdict]} {p.title}"[:256],
        "description": "\n".join([p.description, *(f"[{t}]({u})" for t, u in p.links())]).strip()[:4096],
        "color": COLOURS[p.verdict],
        "timestamp": p.since.isoformat(),
        "fields": [{"name": label, "value": value[:1024], "inline": True} for label, value in p.facts()][:25],
        **({"url": p.links()[0][1]} if p.links() else {}),
    }
    body = {"content": p.title[:2000], "embeds": [embed], "allowed_mentions": {"parse": []}}
    return Request(d.url, _json(body), JSON)


def googlechat(p: Page, d: Destination) -> Request:
    """Incoming webhook: `text`, and a cardsV2 card with the facts and link buttons."""
    widgets: list[dict[str, Any]] = [
        {"decoratedText": {"topLabel": label, "text": value, "wrapText": True}} for label, value in p.facts()
    ]
    if p.description:
        widgets.append({"textParagraph": {"text": p.description}})
    if p.links():
        widgets.append(
            {"buttonList": {"buttons": [{"text": t, "onClick": {"openLink": {"url": u}}} for t, u in p.links()]}}
        )
    card = {
        "cardId": "alarm",
        "card": {
            "header": {"title": f"{EMOJI[p.verdict]} {p.title}", "subtitle": p.alarm},
            "sections": [{"widgets": widgets}],
        },
    }
    headers = {"Content-Type": "application/json; charset=UTF-8"}
    return Request(d.url, _json({"text": p.text(), "cardsV2": [card]}), headers)


SEVERITY = {
    Verdict.DOWN: "critical",
    Verdict.DEGRADED: "warning",
    Verdict.CHECKER: "warning",
    Verdict.DELIVERY: "warning",
}
PRIORITY = {Verdict.DOWN: "P1", Verdict.DEGRADED: "P3", Verdict.CHECKER: "P3", Verdict.DELIVERY: "P3"}


def pagerduty(p: Page, d: Destination) -> Request:
    """Events API v2: trigger, or resolve with the same dedup_key (the alarm)."""
    body: dict[str, Any] = {
        "routing_key": d.key,
        "event_action": "trigger" if p.firing else "resolve",
        "dedup_key": p.key[:255],
    }
    if p.firing:
        body["payload"] = {
            "summary": p.title[:1024],
            "source": p.service,
            "severity": SEVERITY[p.verdict],
            "timestamp": p.since.isoformat(),
            "component": p.target or p.service,
            "class": p.verdict.value,
            "custom_details": dict(p.facts()) | {"description": p.description},
        }
        body["links"] = [{"href": u, "text": t} for t, u in p.links()]
    return Request(d.url, _json(body), JSON)


def opsgenie(p: Page, d: Destination) -> Request:
    """Alert API: create with the alarm as alias (Opsgenie dedups on it), or close by alias."""
    headers = {**JSON, "Authorization": f"GenieKey {d.key}"}
    if not p.firing:
        alias = urllib.parse.quote(p.key[:512], safe="")
        url = f"{d.url}/v2/alerts/{alias}/close?identifierType=alias"
        return Request(url, _json({"source": p.service, "note": p.text()[:25000]}), headers)
    body = {
        "message": p.title[:130],
        "alias": p.key[:512],
        "description": p.text()[:15000],
        "details": dict(p.facts()),
        "priority": PRIORITY[p.verdict],
        "source": p.service,
        "tags": [p.verdict.value, *([p.target] if p.target else [])],
    }
    return Request(f"{d.url}/v2/alerts", _json(body), headers)


def webhook(p: Page, d: Destination, now: Callable[[], float] = time.time) -> Request:
    """Plain JSON, signed: HMAC-SHA256 of "<timestamp>.<body>" with the user's signing secret."""
    doc = {
        "verdict": p.verdict.value,
        "title": p.title,
        "text": p.text(),
        "service": p.service,
        "target": p.target,
        "alarm": p.alarm,
        "state": p.state,
        "since": p.since.isoformat(),
        "locations": list(p.locations),
        "failures": dict(p.failures),
        "description": p.description,
        "links": dict(p.links()),
        "key": p.key,
    }
    body = _json(doc)
    stamp = str(int(now()))
    mac = hmac.new(d.key.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return Request(d.url, body, {**JSON, TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: f"sha256={mac}"})


RENDER: dict[str, Callable[[Page, Destination], Request]] = {
    "slack": slack,
    "teams": teams,
    "discord": discord,
    "googlechat": googlechat,
    "pagerduty": pagerduty,
    "opsgenie": opsgenie,
    "webhook": webhook,
}


def render(kind: str, p: Page, secret_value: str) -> Request:
    return RENDER[kind](p, destination(kind, secret_value))


def preview(kind: str, p: Page) -> dict[str, Any]:
    """The JSON body a channel of this type would receive (make local prints it), without a secret."""
    sample = {"pagerduty": "<routing key>", "opsgenie": "<api key>"}.get(kind, "https://hooks.example/<secret>")
    if kind == "webhook":
        sample = json.dumps({"url": "https://hooks.example/<secret>", "signing_secret": "<secret>"})  # nosec B105
    return json.loads(render(kind, p, sample).body)
