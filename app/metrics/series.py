"""The per-minute series behind the dashboard's charts (GET /api/metrics/series), read from the
minute hashes that changes record (metrics/tally.py) and the queue-depth notes and samples
(metrics/depth.py)."""

import math
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


def quantile(q: float, counts: Sequence[int], most: float | None = None) -> float | None:
    """The q-quantile of observations counted per bucket (BUCKETS, then +Inf), interpolated linearly
    inside its bucket as Prometheus' histogram_quantile does (the first bucket starts at 0); None
    without observations. `most`, the largest observation, ends the bucket it falls in: a quantile
    never exceeds it (30 s runs in the 25–60 s bucket give a p95 of 29.75 s, not 58.25 s). Without
    it, one in +Inf reads as the highest bound."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, n in enumerate(counts):
        if n and seen + n >= rank:
            lower = BUCKETS[index - 1] if index else 0.0
            upper = BUCKETS[index] if index < len(BUCKETS) else math.inf
            if most is not None:  # (below `lower` only if the figures disagree: then it is the answer)
                upper = min(upper, most)
                lower = min(lower, upper)
            if upper == math.inf:
                return lower
            return lower + (upper - lower) * (rank - seen) / n
        seen += n
    return BUCKETS[-1] if most is None else most


def _int(found: dict[bytes, bytes], field: str) -> int:
    return int(found.get(field.encode(), 0))


def _float(found: dict[bytes, bytes], field: str) -> float | None:
    value = found.get(field.encode())
    return None if value is None else float(value)


def _mean(found: dict[bytes, bytes]) -> float | None:
    n = _int(found, "depth_n")
    return round(_int(found, "depth_sum") / n, 1) if n else None


def _longest(minutes: list[dict[bytes, bytes]], field: str, counted: Sequence[int]) -> float | None:
    """The largest of the minutes' `field`, if each minute with observations (`counted`) has one
    (minutes written before it was recorded have none: then unknown)."""
    found = [_float(hashed, field) for hashed, n in zip(minutes, counted, strict=True) if n]
    return None if not found or None in found else max(f for f in found if f is not None)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def build(window: str, now: float, minutes: list[dict[bytes, bytes]], depth_now: int, workers: int) -> dict[str, Any]:
    """The answer from the window's minute hashes, oldest first; the depth read now counts as one
    more observation of the current minute's maximum."""
    current = int(now // 60)
    first = current - len(minutes) + 1
    waits = [[_int(found, f"wait|{i}") for i in range(SLOTS)] for found in minutes]
    wait_max = [_float(found, "wait_max") for found in minutes]
    runs: defaultdict[str, list[int]] = defaultdict(lambda: [0] * SLOTS)
    ran: defaultdict[str, list[int]] = defaultdict(lambda: [0] * len(minutes))  # runs per minute, per type
    for at, found in enumerate(minutes):
        for field, n in found.items():
            name, _, rest = field.decode().partition("|")
            if name == "run":
                kind, _, index = rest.rpartition("|")
                runs[kind][int(index)] += int(n)
                ran[kind][at] += int(n)
    longest = {kind: _longest(minutes, f"run_max|{kind}", ran[kind]) for kind in runs}
    depth = [int(found[b"depth_max"]) if b"depth_max" in found else None for found in minutes]
    if depth:
        depth[-1] = max(depth[-1] or 0, depth_now)
    return {
        "window": window, "step": 60, "start": first * 60, "now": now,
        "buckets": [(first + i) * 60 for i in range(len(minutes))],
        "succeeded": [_int(found, "succeeded") for found in minutes],
        "failed": [_int(found, "failed") for found in minutes],
        "wait_p50": [_rounded(quantile(0.5, counts, most)) for counts, most in zip(waits, wait_max, strict=True)],
        "wait_p95": [_rounded(quantile(0.95, counts, most)) for counts, most in zip(waits, wait_max, strict=True)],
        "queue_depth": depth,
        "queue_depth_mean": [_mean(found) for found in minutes],
        "run_time": [{"task_type": kind, "count": sum(counts), "p50": _rounded(quantile(0.5, counts, longest[kind])),
                      "p95": _rounded(quantile(0.95, counts, longest[kind])), "max": _rounded(longest[kind])}
                     for kind, counts in sorted(runs.items())],
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

