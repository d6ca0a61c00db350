"""Sending webhooks (every worker runs it): claim due deliveries from the outbox, POST them signed,
record each attempt, and retry with exponential backoff and jitter until WEBHOOK_MAX_ATTEMPTS.

Apart from the tasks: its own asyncio tasks, at most MAX_IN_FLIGHT requests at once, each bounded by
WEBHOOK_TIMEOUT as a whole (a receiver that trickles its answer is cut off too), so a slow or hanging
receiver delays nothing but its own deliveries. A task's own callback is checked before each attempt
(webhooks/urls.py `check_resolved`) unless WEBHOOK_ALLOW_PRIVATE is set.
"""

import asyncio
import logging
import random
import socket
import time
from datetime import timedelta
from typing import Any

import httpx

from app.core.clock import utcnow
from app.core.errors import OUTAGES, cancelled, stop_if_cancelled
from app.core.logs import about_task
from app.core.wakeup import woken
from app.core.wire import WebhookAttempt
from app.settings import Settings
from app.store.webhooks import DELIVERED, FAILED, PENDING, WebhookStore
from app.webhooks.hooks import body, signature
from app.webhooks.urls import Refused, check_resolved

log = logging.getLogger(__name__)

POLL = 1.0  # seconds between looks at the outbox when no nudge arrives
MAX_IN_FLIGHT = 8  # requests one worker process has open at once
BACKOFF_MAX = 600.0  # seconds: the longest wait between two attempts
LEASE_MARGIN = 30.0  # seconds a lease outlives the request's own time limit
USER_AGENT = "tq-webhooks/1"


def backoff(base: float, attempt: int) -> float:
    """Seconds before the attempt after `attempt` (1, 2, 4 … × base, at most BACKOFF_MAX), jittered
    by ±20 % so that deliveries that failed together do not come back together."""
    return min(BACKOFF_MAX, base * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)


class WebhookSender:
    def __init__(self, store: WebhookStore, worker_id: str, settings: Settings) -> None:
        assert settings.webhook_secret is not None, "never send unsigned"
        self.store = store
        self.worker_id = worker_id
        self.secret = str(settings.webhook_secret)
        self.max_attempts = settings.webhook_max_attempts
        self.timeout = settings.webhook_timeout
        self.backoff_base = settings.webhook_backoff_base
        self.allow_private = settings.webhook_allow_private
        self._wake = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """New deliveries may be due (a nudge, a request that ended, a retry coming due)."""
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled; requests still open then are dropped, and their leases run out."""
        async with httpx.AsyncClient(follow_redirects=False, limits=httpx.Limits(max_connections=MAX_IN_FLIGHT),
                                     headers={"User-Agent": USER_AGENT}) as client:
            try:
                while True:
                    self._wake.clear()
                    try:
                        await self.start_due(client)
                    except OUTAGES as exc:
                        stop_if_cancelled()
                        log.warning("webhook pass failed (%s); trying again", exc)
                    except Exception:  # a dead loop would send nothing more: say why and go on
                        stop_if_cancelled()
                        log.exception("webhook pass failed; trying again")
                    await woken(self._wake, POLL)
            finally:
                await cancelled(list(self._sending))

    async def start_due(self, client: httpx.AsyncClient) -> int:
        """Claim as many due deliveries as there is room for and start sending them; how many."""
        room = MAX_IN_FLIGHT - len(self._sending)
        if room <= 0:
            return 0
        now = utcnow()
        lease_end = now + timedelta(seconds=self.timeout + LEASE_MARGIN)
        started = 0
        if given_up := await self.store.give_up(now, self.max_attempts):
            log.warning("%d webhook deliveries failed for good: no attempt left", given_up)
        for delivery_id in await self.store.due(now, room):
            claimed = await self.store.claim(delivery_id, self.worker_id, now, lease_end, self.max_attempts)
            if claimed is None:
                continue  # another worker took it
            with about_task(claimed["task_id"]):  # its lines name the task it tells of
                sending = asyncio.create_task(self._send(client, claimed), name=f"webhook-{delivery_id}")
            self._sending.add(sending)
            sending.add_done_callback(self._sent)
            started += 1
        return started

    def _sent(self, sending: "asyncio.Task[None]") -> None:
        self._sending.discard(sending)
        self.wake()  # room for another
        if not sending.cancelled() and (exc := sending.exception()) is not None:
            log.error("webhook delivery failed to record: %r", exc)

    async def _send(self, client: httpx.AsyncClient, claimed: dict[str, Any]) -> None:
        attempt = claimed["attempts"]
        payload = body(claimed["event"], claimed["id"], attempt, claimed["task"])
        headers = {"Content-Type": "application/json", "X-TQ-Event": claimed["event"],
                   "X-TQ-Delivery": claimed["id"], "X-TQ-Signature": signature(self.secret, int(time.time()), payload)}
        at, started = utcnow(), time.monotonic()
        code: int | None = None
        error: str | None = None
        refused = False
        try:
            async with asyncio.timeout(self.timeout):
                if claimed["hook"] == "task" and not self.allow_private:  # the operator's own WEBHOOK_URL is trusted
                    await check_resolved(claimed["url"])
                async with client.stream("POST", claimed["url"], content=payload, headers=headers) as response:
                    code = response.status_code  # the body is never read: the status says it all
            if not 200 <= code < 300:
                error = f"answered {code}"
        except TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        except Refused as exc:
            error, refused = str(exc), True
        except socket.gaierror as exc:
            error = f"cannot resolve the host: {exc}"
        except Exception as exc:  # httpx.HTTPError, or a URL it cannot send (an IDNA error): a failed attempt too
            error = f"{exc.__class__.__name__}: {exc}"[:500] if str(exc) else exc.__class__.__name__
        record: WebhookAttempt = {"attempt": attempt, "at": at.isoformat(), "status_code": code, "error": error,
                                  "duration_ms": round((time.monotonic() - started) * 1000, 1)}
        if error is None:
            status, due = DELIVERED, None
        elif refused or attempt >= self.max_attempts:
            status, due = FAILED, None
            log.warning("webhook %s for task %s failed for good after %d attempts: %s",
                        claimed["id"], claimed["task_id"], attempt, error)
        else:
            wait = backoff(self.backoff_base, attempt)
            status, due = PENDING, utcnow() + timedelta(seconds=wait)
            if wait < POLL:
                asyncio.get_running_loop().call_later(wait, self.wake)
        if not await self.store.record(claimed, record, status, due):
            log.warning("webhook %s: attempt %d outlived its lease; its outcome is not recorded", claimed["id"], attempt)
