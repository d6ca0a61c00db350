"""Per-client rate limits (submits; upload bytes): a token bucket per client address, in each web process."""

import time
from collections.abc import Callable


class RateLimiter:
    """`rate` submits (or bytes) per second on average, bursts up to `burst`. With several web processes each
    keeps its own buckets, so a client behind a load balancer gets up to that many times the rate."""

    MAX_CLIENTS = 10_000  # buckets kept; the least recently used are forgotten beyond this

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client → (tokens, last refill)

    def take(self, client: str, cost: int = 1) -> float:
        """0 when `cost` submits may go ahead, else the seconds until they would. A cost above the
        burst goes ahead from a full bucket and leaves it in debt, paid back at `rate`."""
        now = self.clock()
        tokens, last = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        need = min(cost, self.burst)
        wait = 0.0 if tokens >= need else (need - tokens) / self.rate
        self._buckets[client] = (tokens - cost if wait == 0 else tokens, now)  # re-inserted: most recent last
        if len(self._buckets) > self.MAX_CLIENTS:
            del self._buckets[next(iter(self._buckets))]
        return wait
