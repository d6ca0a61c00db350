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

from app.core import keys
from app.core.errors import cancelled
from app.core.pubsub import follow
from app.core.wire import Event, decode_event, event_of
from app.store.tasks import TaskStore
from app.web.live.client_queue import ClientQueue
from app.web.live.flush import Flusher
from app.web.live.ordering import SeqOrder

log = logging.getLogger(__name__)

FIRST_SUBSCRIBE_WAIT = 3.0  # seconds start-up waits for Redis before serving without live events


class EventHub:
    def __init__(self, redis: Redis, store: TaskStore, sync_seq: Callable[[], Awaitable[int]], *,
                 gap_timeout: float, queue_size: int, queue_bytes: int) -> None:
        self.redis = redis
        self.store = store
        self.sync_seq = sync_seq  # raises the counter past the database's newest change; returns it
        self.queue_size = queue_size
        self.queue_bytes = queue_bytes
        self.order = SeqOrder(gap_timeout)
        self.connected = False
        self.clients: set[ClientQueue] = set()
        self.beat_clients: set[ClientQueue] = set()  # clients that asked for workers' heartbeats
        self.flusher = Flusher()  # writes the queues of clients served by web/live/frames.py
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._subscribed = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self.delivered = 0
        self._repairs: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> "EventHub":
        self._listener = asyncio.create_task(
            follow(self.redis, [keys.EVENTS, keys.LOGS, keys.WORKER_BEATS, keys.QUEUE_STATE], self._on_message,
                   on_subscribed=self._on_subscribed, on_lost=self._on_lost, wait=self.order.wait_time),
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
        died = self._listener.done()
        await cancelled([self._listener, *self._repairs])
        for client in list(self.clients):
            client.close(1012, "server restarting")
        if died:  # a dead listener is never silent, once the clients are told
            self._listener.result()

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
        if channel == keys.WORKER_BEATS and data is not None:
            worker_id, _, frame = data.partition("|")
            for client in self.beat_clients:
                client.put_frame(frame, supersedes=worker_id)  # a client that is behind needs only the latest
            return
        if channel == keys.QUEUE_STATE and data is not None:  # paused or resumed: every dashboard shows it
            for client in self.clients:
                client.put_frame(data, supersedes=channel)
            return
        released = self.order.push(decode_event(data)) if data is not None else []
        for event in released + self.order.due():
            self._deliver(event)
        if self.order.newly_given_up:
            self._repairs.add(asyncio.create_task(self._repair(self.order.newly_given_up)))
            self.order.newly_given_up = []

    async def _repair(self, seqs: list[int]) -> None:
        """Changes whose event never came (stored, but Redis went away before the publish) are read
        from the database and delivered late, so no live view keeps a stale state."""
        try:
            tasks = await self.store.with_seqs(seqs)
        except Exception:  # the database is away too: clients still get these on their next resume
            log.warning("could not look up %d missing event(s) in the database", len(seqs), exc_info=True)
            return
        finally:
            self._repairs.discard(asyncio.current_task())  # type: ignore[arg-type]
        for task in tasks:
            for repaired in self.order.repaired(event_of(task, "status")):
                self._deliver(repaired)

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
        queue = ClientQueue(self.queue_size, self.queue_bytes)
        self.clients.add(queue)
        try:
            yield queue, self.order.head
        finally:
            self.clients.discard(queue)
            self.beat_clients.discard(queue)

    def follow_workers(self, client: ClientQueue, follow: bool) -> None:
        """Heartbeats go only to clients that ask: a task-only client's frames stay task frames."""
        if follow:
            self.beat_clients.add(client)
        else:
            self.beat_clients.discard(client)

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

