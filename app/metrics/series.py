"""The per-minute series behind the dashboard's charts (GET /api/metrics/series), read from the
minute hashes that changes record (metrics/tally.py) and the workers' queue-depth samples."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from app.core import keys
from app.metrics.tally import BUCKETS, minute_key

WINDOWS = {"hour": 60, "day": 1440}  # minutes shown
SLOTS = len(BUCKETS) + 1  # the buckets, then +Inf
# Seconds after a minute's end until its hash is taken as final: a change is counted in the minute of
# its timestamp, written a moment later (a database transaction in between, another host's clock).
SETTLE = 120.0


def quantile(q: float, counts: Sequence[int]) -> float | None:
    """The q-quantile of observations counted per bucket (BUCKETS, then +Inf), interpolated linearly
    inside its bucket as Prometheus' histogram_quantile does (the first bucket starts at 0; one in
    +Inf reads as the highest bound); None without observations."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, n in enumerate(counts):
        if n and seen + n >= rank:
            if index >= len(BUCKETS):
                return BUCKETS[-1]
            lower = BUCKETS[index - 1] if index else 0.0
            return lower + (BUCKETS[index] - lower) * (rank - seen) / n
        seen += n
    return BUCKETS[-1]


def _int(found: dict[bytes, bytes], field: str) -> int:
    return int(found.get(field.encode(), 0))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def build(window: str, now: float, minutes: list[dict[bytes, bytes]], depth_now: int, workers: int) -> dict[str, Any]:
    """The answer from the window's minute hashes, oldest first."""
    current = int(now // 60)
    first = current - len(minutes) + 1
    waits = [[_int(found, f"wait|{i}") for i in range(SLOTS)] for found in minutes]
    runs: defaultdict[str, list[int]] = defaultdict(lambda: [0] * SLOTS)
    for found in minutes:
        for field, n in found.items():
            name, _, rest = field.decode().partition("|")
            if name == "run":
                kind, _, index = rest.rpartition("|")
                runs[kind][int(index)] += int(n)
    return {
        "window": window, "step": 60, "start": first * 60, "now": now,
        "buckets": [(first + i) * 60 for i in range(len(minutes))],
        "succeeded": [_int(found, "succeeded") for found in minutes],
        "failed": [_int(found, "failed") for found in minutes],
        "wait_p50": [_rounded(quantile(0.5, counts)) for counts in waits],
        "wait_p95": [_rounded(quantile(0.95, counts)) for counts in waits],
        "queue_depth": [int(found[b"depth"]) if b"depth" in found else None for found in minutes],
        "run_time": [{"task_type": kind, "count": sum(counts), "p50": _rounded(quantile(0.5, counts)),
                      "p95": _rounded(quantile(0.95, counts))} for kind, counts in sorted(runs.items())],
        "queue_depth_now": depth_now, "workers_live": workers,
    }


class MinuteCache:
    """A web process's copy of the minute hashes that are over, so that a day's series reads only its
    last few minutes from Redis. A minute is taken as final SETTLE seconds after its end; minutes
    older than the longest window are dropped, so it holds at most a day of them."""

    def __init__(self) -> None:
        self.minutes: dict[int, dict[bytes, bytes]] = {}

    async def read(self, redis: Redis, window: str, now: float) -> tuple[list[dict[bytes, bytes]], int]:
        """The window's minute hashes, oldest first (those not cached in one pipeline), and the live
        workers' count."""
        current = int(now // 60)
        wanted = range(current - WINDOWS[window] + 1, current + 1)
        settled = int((now - SETTLE) // 60) - 1  # the newest minute that ended SETTLE seconds ago
        missing = [minute for minute in wanted if minute > settled or minute not in self.minutes]
        async with redis.pipeline(transaction=False) as pipe:
            for minute in missing:
                pipe.hgetall(minute_key(minute))
            pipe.zcount(keys.WORKERS, now, "+inf")
            *found, workers = await pipe.execute()
        fetched = dict(zip(missing, found, strict=True))
        oldest = current - max(WINDOWS.values()) + 1
        for minute in [minute for minute in self.minutes if minute < oldest]:
            del self.minutes[minute]
        self.minutes.update((minute, hashed) for minute, hashed in fetched.items() if minute <= settled)
        return [fetched[minute] if minute in fetched else self.minutes[minute] for minute in wanted], int(workers)

