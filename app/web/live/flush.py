"""One flush per turn of the event loop: every client with something queued gets it in one write.

The hub releases a change to every client's queue; a queue that was empty notes its client here, and
one callback at the loop's next turn writes each noted client's frames through its connection's
`FramesProtocol` (`web/live/frames.py`). No task is woken per client per change, and a burst the
listener reads in one turn leaves as one write per client instead of queueing behind a thousand
wake-ups per change. A client whose socket is full is skipped: its queue coalesces (and closes when
too far behind), and the socket's drain notes it again, for what waits or for the close (1013) after
what the socket already holds, as an ASGI send would have waited.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from app.core.wire import Event, websocket_frame
from app.web.live.client_queue import ClientQueue, Closed
from app.web.live.frames import FramesProtocol

log = logging.getLogger(__name__)


class Outlet:
    """A client's queue written to its connection."""

    __slots__ = ("flusher", "queue", "writer", "covered")

    def __init__(self, flusher: "Flusher", queue: ClientQueue, writer: FramesProtocol, covered: dict[str, int]) -> None:
        self.flusher = flusher
        self.queue = queue
        self.writer = writer
        self.covered = covered  # task id → seq the replay sent: a live event not newer is not sent again

    def note(self) -> None:
        self.flusher.note(self)

    def flush(self) -> None:
        queue, writer = self.queue, self.writer
        if writer.paused:
            return  # the socket's drain notes this client again; meanwhile its queue coalesces, or closes
        try:
            items = queue.take_now()
        except Closed as closed:
            writer.close_frames(closed.code, closed.reason)
            return
        if self.covered:
            items = [item for item in items
                     if not isinstance(item, Event) or item.seq > self.covered.get(item.task_id, -1)]
        if items:
            writer.write_frames(b"".join([item.wire if isinstance(item, Event) else websocket_frame(item)
                                          for item in items]))


class Flusher:
    """After each flush it waits as long as the flush took before starting the next: flushing takes at
    most half the process's CPU, so under load the listener and the HTTP handlers keep up and each write
    carries more changes; an idle hub's change still goes out on the next turn. The flush is timed in
    this thread's CPU time: time spent waiting for a CPU another process holds is no reason to wait more."""

    def __init__(self, cost_clock: Callable[[], float] = time.thread_time) -> None:
        self.cost_clock = cost_clock
        self._due: list[Outlet] = []
        self._resume_at = 0.0  # loop time before which the next flush does not start

    def note(self, outlet: Outlet) -> None:
        if not self._due:
            loop = asyncio.get_running_loop()
            wait = self._resume_at - loop.time()
            if wait > 0:
                loop.call_later(wait, self._flush)
            else:
                loop.call_soon(self._flush)
        self._due.append(outlet)

    def _flush(self) -> None:
        started = self.cost_clock()
        due, self._due = self._due, []
        for outlet in due:
            try:
                outlet.flush()
            except Exception:  # one client's fault must not leave the others unwritten
                log.exception("writing to a WebSocket client failed")
        self._resume_at = asyncio.get_running_loop().time() + self.cost_clock() - started

    @contextmanager
    def writing(self, queue: ClientQueue, writer: FramesProtocol, covered: dict[str, int]) -> Iterator[None]:
        """Flush `queue` to `writer` from now on (first what queued meanwhile, e.g. during a replay)."""
        outlet = Outlet(self, queue, writer, covered)
        queue.on_ready = writer.on_writable = outlet.note
        self.note(outlet)
        try:
            yield
        finally:
            queue.on_ready = writer.on_writable = None
