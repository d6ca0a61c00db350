"""One WebSocket client's outbox: bounded, progress coalesced per task (heartbeats per worker), status
changes kept."""

import asyncio

from app.core.wire import Event

Item = Event | str  # a task event, or a ready frame of our own (logs, pong, reset)


class Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ClientQueue:
    """Any event for a task supersedes that task's pending progress (each event carries the whole
    task), and is appended at the end so the client still sees seqs in the order they were released.
    Status changes are never dropped: when more than `maxsize` wait, the client is too slow and is
    closed (1013); it resumes with `since` and loses nothing.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        # Keys: a task id (str) for its pending progress, a seq (int > 0) for a change kept as it is,
        # -n for our own n-th frame: plain values, no tuple to build and hash per client per event;
        # ("beat", worker id) for a worker's pending heartbeat (one per worker per interval, not per event).
        self._items: dict[str | int | tuple[str, str], Item] = {}
        self._ready = asyncio.Event()
        self._closed: Closed | None = None
        self._frames = 0
        self.watching: str | None = None  # the task whose log lines this client follows

    def put(self, event: Event) -> None:
        if self._closed:
            return
        items = self._items
        if items:
            items.pop(event.task_id, None)
        items[event.task_id if event.coalescable else event.seq] = event
        if len(items) > self.maxsize:
            self.close(1013, "client too slow; resume with ?since=<last seq>")
        self._ready.set()

    def put_frame(self, frame: str, supersedes: str | None = None) -> None:
        """Our own frame; with `supersedes` (a worker's id, the queue-state channel) it replaces its pending frame,
        at the end, as progress does: each heartbeat carries the worker's whole state."""
        if self._closed:
            return
        if supersedes is None:
            self._frames += 1
            self._items[-self._frames] = frame
        else:
            key = ("beat", supersedes)
            self._items.pop(key, None)
            self._items[key] = frame
        if len(self._items) > self.maxsize:
            self.close(1013, "client too slow; resume with ?since=<last seq>")
        self._ready.set()

    def close(self, code: int, reason: str) -> None:
        self._closed = Closed(code, reason)
        self._items.clear()
        self._ready.set()

    def __len__(self) -> int:
        return len(self._items)

    async def take(self) -> list[Item]:
        """Everything waiting, oldest first (at least one item): a sender that fell behind catches
        up in one write; raises Closed once the queue was closed."""
        while not self._items:
            if self._closed:
                raise self._closed
            self._ready.clear()
            await self._ready.wait()
        if self._closed:
            raise self._closed
        items = list(self._items.values())
        self._items.clear()
        return items
