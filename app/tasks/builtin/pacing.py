"""Progress that keeps moving: a minimum pace (`processing_time`, `delay_per_…`) shown as it elapses, and
blocking work in a thread reported on while it runs, so that the bar and the time-left estimate advance."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# seconds between reports while waiting: often enough for a smooth bar (the reporter writes at most one
# per PROGRESS_INTERVAL anyway), and each report is also where a cancel takes effect
TICK = 0.1

Share = Callable[[float], Awaitable[None]]  # reports a share (0..1) of the work as done


class Pace:
    """A minimum pace: the whole work takes at least `seconds`, each share of it at least that share of
    the time. The work is shown done no faster than the time passes, so that work quicker than its pace
    moves the bar steadily instead of jumping and then waiting."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()

    def shown(self, done: float) -> float:
        """The share to show of `done`: held back to the share of the paced time spent."""
        if self.seconds <= 0:
            return done
        return min(done, (time.monotonic() - self.start) / self.seconds)

    async def wait(self, done: float, report: Share) -> None:
        """Sleeps until the pace allows `done` (a share of the work), reporting the shown share meanwhile."""
        while (left := self.start + self.seconds * done - time.monotonic()) > 0:
            await report(self.shown(done))
            await asyncio.sleep(min(TICK, left))


async def in_thread(work: Callable[[], T], tick: Callable[[], Awaitable[None]]) -> T:
    """`work()` run in a thread, `tick()` awaited every TICK while it runs (to report how far it is)."""
    future = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        while not (await asyncio.wait({future}, timeout=TICK))[0]:
            await tick()
        return future.result()
    finally:
        # a cancel (or a tick that raised it) leaves the thread running to its end, as asyncio.to_thread does:
        # its outcome is nobody's any more
        future.cancel()
