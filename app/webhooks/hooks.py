"""Who hears of a task's final state, and the signed request they get.

A task's own `callback_url` hears of every final state it reaches; the global WEBHOOK_URL hears of
final failures (WEBHOOK_EVENTS=failed) or of every final state (final). Every request is signed
(Stripe style): nothing is ever sent without WEBHOOK_SECRET. The URLs' checks: webhooks/urls.py.
"""

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.core.status import Status
from app.core.wire import TaskDict, dumps
from app.settings import Settings
from app.webhooks.urls import callback_problem, url_problem

EVENTS = {Status.SUCCESS.value: "task.succeeded", Status.FAILED.value: "task.failed",
          Status.CANCELLED.value: "task.cancelled"}
# A nudge on the workers' control channel (core/keys.py CONTROL): new deliveries are due now.
NUDGE = "webhooks|"


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
    allow_private: bool = False  # WEBHOOK_ALLOW_PRIVATE: callback URLs may point at private addresses

    @classmethod
    def from_settings(cls, settings: Settings) -> "Hooks":
        return cls(url=str(settings.webhook_url) if settings.webhook_url else None,
                   every_final=settings.webhook_events == "final", signed=settings.webhook_secret is not None,
                   allow_private=settings.webhook_allow_private)

    def accepts(self, url: str) -> bool:
        """Whether a `callback_url` this server took earlier still passes its checks (a re-run's inherited one)."""
        return callback_problem(url, signed=self.signed, allow_private=self.allow_private) is None

    def targets(self, task: TaskDict) -> list[tuple[str, str, str]]:
        """(hook, url, event) of each delivery the task's current state makes: hook "task" and/or "global"."""
        event = EVENTS.get(task["status"])
        if event is None:
            return []
        found = [("task", task["callback_url"], event)] if task.get("callback_url") else []
        if self.url and (self.every_final or task["status"] == Status.FAILED.value):
            found.append(("global", self.url, event))
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
