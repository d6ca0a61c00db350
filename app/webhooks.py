"""Webhooks: which final states notify which URL, the checks on those URLs, and the signed request.

A task's own `callback_url` hears of every final state it reaches; the global WEBHOOK_URL hears of
final failures (WEBHOOK_EVENTS=failed) or of every final state (final). Every request is signed
(Stripe style): nothing is ever sent without WEBHOOK_SECRET.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.errors import InvalidParameters
from app.settings import Settings
from app.status import Status
from app.wire import TaskDict, dumps

MAX_URL = 2000
EVENTS = {Status.SUCCESS.value: "task.succeeded", Status.FAILED.value: "task.failed",
          Status.CANCELLED.value: "task.cancelled"}
# A nudge on the workers' control channel (app/keys.py CONTROL): new deliveries are due now.
NUDGE = "webhooks|"
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")  # blanks and control characters: never part of a URL we send to


def url_problem(url: object) -> str | None:
    """Why `url` cannot receive webhooks (None if it can): an absolute http(s) URL with a host."""
    if not isinstance(url, str):
        return "must be a string (an absolute http:// or https:// URL)"
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    if _UNSAFE.search(url):
        return "must not contain blanks or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number in range
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"must be an absolute http:// or https:// URL, got {url[:60]!r}"
    return None


def callback_url(value: object, *, signed: bool) -> str | None:
    """A submit's `callback_url`, checked (422 naming it); refused outright without a secret to sign with."""
    if value is None:
        return None
    if problem := url_problem(value):
        raise InvalidParameters("callback_url", problem)
    if not signed:
        raise InvalidParameters("callback_url", "webhooks are off on this server: WEBHOOK_SECRET is not set, "
                                                "and nothing is ever sent unsigned")
    return str(value)


def check_settings(settings: Settings) -> None:
    """Refuse to start with a global hook that could not be signed, or is no URL."""
    if settings.webhook_url is None:
        return
    if settings.webhook_secret is None:
        raise RuntimeError("WEBHOOK_URL is set but WEBHOOK_SECRET is not: webhooks are always signed. Set "
                           "WEBHOOK_SECRET to a long random secret (e.g. `python -c 'import secrets; "
                           "print(secrets.token_urlsafe(32))'`) and give it to the receiver, or unset WEBHOOK_URL.")
    if problem := url_problem(str(settings.webhook_url)):
        raise RuntimeError(f"WEBHOOK_URL {problem}")


@dataclass(frozen=True)
class Hooks:
    """Who hears of a task's final state, besides the task's own `callback_url`."""

    url: str | None = None  # WEBHOOK_URL
    every_final: bool = False  # WEBHOOK_EVENTS=final; else only FAILED
    signed: bool = False  # WEBHOOK_SECRET is set: callback URLs are accepted

    @classmethod
    def from_settings(cls, settings: Settings) -> "Hooks":
        return cls(url=str(settings.webhook_url) if settings.webhook_url else None,
                   every_final=settings.webhook_events == "final", signed=settings.webhook_secret is not None)

    def targets(self, task: TaskDict) -> list[tuple[str, str]]:
        """(hook, url) of each delivery the task's current state makes: "task" and/or "global"."""
        if task["status"] not in EVENTS:
            return []
        found = [("task", task["callback_url"])] if task.get("callback_url") else []
        if self.url and (self.every_final or task["status"] == Status.FAILED.value):
            found.append(("global", self.url))
        return found


def body(event: str, delivery_id: str, attempt: int, task: dict[str, Any]) -> bytes:
    return dumps({"event": event, "delivery_id": delivery_id, "attempt": attempt, "task": task}).encode()


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    """The `X-TQ-Signature` value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def shown_url(hook: str, url: str) -> str:
    """A delivery's URL as the API shows it: the global hook's only up to its host, since such URLs
    often hold a secret (chat services put the token in the path) and readers need not see it."""
    if hook == "task":
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"
