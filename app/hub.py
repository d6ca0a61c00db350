"""The web process's event hub: one Redis subscription, fanned out to every WebSocket client.

broadcaster's shape (one listener task, a queue per subscriber, removed in `finally`), plus: events
released in seq order, bounded coalescing client queues, resubscription with backoff, and
waiters for a task's final state (a cancel request answers once the worker has stopped the task).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from redis.asyncio import Redis

from app import keys
from app.clientqueue import ClientQueue
from app.ordering import SeqOrder
from app.pubsub import follow
from app.wire import Event, decode_event

log = logging.getLogger(__name__)

FIRST_SUBSCRIBE_WAIT = 3.0  # seconds start-up waits for Redis before serving without live events


class EventHub:
    def __init__(self, redis: Redis, sync_seq: Callable[[], Awaitable[int]], *, gap_timeout: float,
                 queue_size: int) -> None:
        self.redis = redis
        self.sync_seq = sync_seq  # raises the counter past the database's newest change; returns it
        self.queue_size = queue_size
        self.order = SeqOrder(gap_timeout)
        self.connected = False
        self.clients: set[ClientQueue] = set()
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._subscribed = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self.delivered = 0

    async def __aenter__(self) -> "EventHub":
        self._listener = asyncio.create_task(
            follow(self.redis, [keys.EVENTS, keys.LOGS], self._on_message, on_subscribed=self._on_subscribed,
                   on_lost=self._on_lost, wait=self.order.wait_time),
            name="event-hub-listener",
        )
        try:
            await asyncio.wait_for(asyncio.shield(self._subscribed.wait()), FIRST_SUBSCRIBE_WAIT)
        except TimeoutError:
            log.warning("Redis not reachable yet; live events start once it is")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._listener is not None
        if self._listener.done():  # a dead listener is never silent
            self._listener.result()
        self._listener.cancel()
        try:
            await self._listener
        except asyncio.CancelledError:
            pass
        for client in list(self.clients):
            client.close(1012, "server restarting")

    @property
    def head(self) -> int:
        return self.order.head

    async def _on_subscribed(self) -> None:
        head = await self.sync_seq()
        if self._subscribed.is_set():
            # Events were missed while the subscription was down: each client resumes with
            # `since` and gets them from the database.
            for client in list(self.clients):
                client.close(1012, "event stream resynchronised; resume with ?since=<last seq>")
        self.order.reset(head)
        self.connected = True
        self._subscribed.set()

    def _on_lost(self) -> None:
        self.connected = False

    def _on_message(self, channel: str, data: str | None) -> None:
        if channel == keys.LOGS and data is not None:
            task_id, _, frame = data.partition("|")
            for client in self.clients:
                if client.watching == task_id:
                    client.put_frame(frame)
            return
        released = self.order.push(decode_event(data)) if data is not None else []
        for event in released + self.order.due():
            self._deliver(event)

    def _deliver(self, event: Event) -> None:
        for client in self.clients:
            client.put(event)
        self.delivered += 1
        if event.is_final:
            for waiter in self._waiters.get(event.task_id, ()):
                if not waiter.done():
                    waiter.set_result(None)

    @contextmanager
    def subscribe(self) -> Iterator[tuple[ClientQueue, int]]:
        """A new client queue and the seq it starts after (events above it arrive live)."""
        queue = ClientQueue(self.queue_size)
        self.clients.add(queue)
        try:
            yield queue, self.order.head
        finally:
            self.clients.discard(queue)

    def replay_floor(self, since: int) -> int:
        return self.order.floor(since)

    @contextmanager
    def watch_final(self, task_id: str) -> Iterator[asyncio.Future[None]]:
        """A future resolved when the task's next final state is published."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(task_id, set()).add(future)
        try:
            yield future
        finally:
            waiters = self._waiters.get(task_id, set())
            waiters.discard(future)
            if not waiters:
                self._waiters.pop(task_id, None)

