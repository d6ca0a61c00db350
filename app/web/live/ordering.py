"""Release events in seq order although publishers race: hold a later seq until the gap fills.

Every seq taken is published once, as a change or as a skip, so a gap normally closes within a
database write. A gap that stays open past the timeout (a publisher died between INCR and
PUBLISH, or a write took unusually long) is given up: later events flow again, and the seqs given
up are remembered so a resuming client's replay starts before them.
"""

import time
from collections.abc import Callable

from app.core.wire import Event


class SeqOrder:
    def __init__(self, gap_timeout: float, remember: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.gap_timeout = gap_timeout
        self.remember = remember
        self.clock = clock
        self.head = 0  # every seq <= head has been released or given up
        self._pending: dict[int, Event] = {}
        self._gap_since: float | None = None
        self._given_up: dict[int, float] = {}
        self.newly_given_up: list[int] = []  # for the hub to look up in the database, then clear
        self._repaired: dict[int, float] = {}  # given-up seqs delivered from the database since

    def reset(self, head: int) -> None:
        """Start over from `head` (a fresh subscription: what was buffered will be replayed)."""
        self.head = head
        self._pending.clear()
        self._gap_since = None

    def push(self, event: Event) -> list[Event]:
        if event.seq <= self.head:  # late: its slot was given up, or it predates the subscription
            self._given_up.pop(event.seq, None)
            return [] if event.change == "skip" or event.seq in self._repaired else [event]
        self._pending[event.seq] = event
        return self._drain()

    def due(self) -> list[Event]:
        """Give up the open gap if it has waited too long, releasing what queued behind it."""
        if self._gap_since is None or self.clock() - self._gap_since < self.gap_timeout:
            return []
        now = self.clock()
        first = min(self._pending)
        for seq in range(max(self.head + 1, first - 10_000), first):
            self._given_up[seq] = now
            self.newly_given_up.append(seq)
        self.head = first - 1
        return self._drain()

    def repaired(self, event: Event) -> list[Event]:
        """A given-up change read from the database: released unless its own event came first."""
        if event.seq not in self._given_up:
            return []
        del self._given_up[event.seq]
        self._repaired[event.seq] = self.clock()
        return [event]

    def wait_time(self, idle: float = 1.0) -> float:
        if self._gap_since is None:
            return idle
        return max(0.0, min(idle, self._gap_since + self.gap_timeout - self.clock()))

    def floor(self, since: int) -> int:
        """Where a replay for a client that saw everything up to `since` must start."""
        cutoff = self.clock() - self.remember
        for seen in (self._given_up, self._repaired):
            for seq in [s for s, at in seen.items() if at < cutoff]:
                del seen[seq]
        return min(since, min(self._given_up) - 1) if self._given_up else since

    def _drain(self) -> list[Event]:
        released = []
        advanced = False
        while self.head + 1 in self._pending:
            event = self._pending.pop(self.head + 1)
            self.head += 1
            advanced = True
            if event.change != "skip":
                released.append(event)
        if not self._pending:
            self._gap_since = None
        elif advanced or self._gap_since is None:
            self._gap_since = self.clock()
        return released
