"""One WebSocket client's outbox: bounded in items and in bytes, progress coalesced per task (heartbeats per
worker), status changes kept."""

import asyncio
from collections.abc import Callable

from app.core.wire import Event, utf8_size

Item = Event | str  # a task event, or a ready frame of our own (logs, pong, reset)
TOO_SLOW = (1013, "client too slow; resume with ?since=<last seq>")


class Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ClientQueue:
    """Any event for a task supersedes that task's pending progress (each event carries the whole
    task), and is appended at the end so the client still sees seqs in the order they were released.
    Status changes are never dropped: when more than `maxsize` items or `max_bytes` of frames wait, the
    client is too slow and is closed (1013); it resumes with `since` and loses nothing. The byte bound
    caps what a client that does not read makes the process hold for it (its own frames, log pages above
    all, are built for it alone; and what waits is written to its socket's buffer in one go once it
    drains); a single frame over the bound still goes to a client that had taken everything else.

    Whoever sends says when something is waiting: `on_ready` (the flusher of `web/live/flush.py`),
    called when an empty queue gets an item or the queue closes, else `take()` waits for it.
    """

    # Ten thousand idle clients each hold one: slots, and no asyncio.Event (its waiter deque alone is ~0.8 KB).
    __slots__ = ("maxsize", "max_bytes", "_items", "_bytes", "_closed", "_frames", "_waiter", "on_ready", "watching")

    def __init__(self, maxsize: int, max_bytes: int) -> None:
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        # Keys: a task id (str) for its pending progress, a seq (int > 0) for a change kept as it is,
        # -n for our own n-th frame: plain values, no tuple to build and hash per client per event;
        # ("beat", worker id) for a worker's pending heartbeat (one per worker per interval, not per event).
        self._items: dict[str | int | tuple[str, str], Item] = {}
        self._bytes = 0  # the waiting frames' UTF-8 bytes (user text in the JSON is not escaped to ASCII)
        self._closed: Closed | None = None
        self._frames = 0
        self._waiter: asyncio.Future[None] | None = None
        self.on_ready: Callable[[], None] | None = None
        self.watching: str | None = None  # the task whose log lines this client follows

    def put(self, event: Event) -> None:
        if self._closed:
            return
        items = self._items
        self._bytes += len(event.wire)  # the frame as sent (UTF-8, its header included), made once for all
        if items:
            superseded = items.pop(event.task_id, None)
            if superseded is not None:
                self._bytes -= len(superseded.wire)  # type: ignore[union-attr]  # a task id keys an event
            items[event.task_id if event.coalescable else event.seq] = event
            if len(items) > self.maxsize or (self._bytes > self.max_bytes and len(items) > 1):
                self.close(*TOO_SLOW)
            return
        items[event.task_id if event.coalescable else event.seq] = event
        self._ready()  # only on the first item: whoever sends takes everything waiting at once

    def put_frame(self, frame: str, supersedes: str | None = None) -> None:
        """Our own frame; with `supersedes` (a worker's id, the queue-state channel) it replaces its pending frame,
        at the end, as progress does: each heartbeat carries the worker's whole state."""
        if self._closed:
            return
        was_empty = not self._items
        self._bytes += utf8_size(frame)
        if supersedes is None:
            self._frames += 1
            self._items[-self._frames] = frame
        else:
            key = ("beat", supersedes)
            self._bytes -= utf8_size(self._items.pop(key, ""))  # type: ignore[arg-type]  # a beat key keys a frame
            self._items[key] = frame
        if len(self._items) > self.maxsize or (self._bytes > self.max_bytes and len(self._items) > 1):
            self.close(*TOO_SLOW)
        elif was_empty:
            self._ready()

    def close(self, code: int, reason: str) -> None:
        self._closed = Closed(code, reason)
        self._items.clear()
        self._bytes = 0
        self._ready()

    def __len__(self) -> int:
        return len(self._items)

    def take_now(self) -> list[Item]:
        """Everything waiting, oldest first (possibly nothing); raises Closed once the queue was closed."""
        if self._closed:
            raise self._closed
        items = list(self._items.values())
        self._items.clear()
        self._bytes = 0
        return items

    async def take(self) -> list[Item]:
        """Everything waiting, oldest first (at least one item): a sender that fell behind catches
        up in one write; raises Closed once the queue was closed."""
        while not self._items and not self._closed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.take_now()

    def _ready(self) -> None:
        if self.on_ready is not None:
            self.on_ready()
        elif self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
