"""What the charts' honest figures cost on the hot paths (run by hand: `python -m bench.figures`), each
against the same path without them, interleaved round by round on one redis-server:

- the script that queues jobs (lifecycle/jobs.py WRITE) with the queue depth noted (metrics/depth.py),
  for a lone submit and a group of 100, against the same script without the note;
- the script that publishes a group of changes (lifecycle/publish.py) with the longest run and wait
  of each minute (the `m` figures of metrics/tally.py), for an attempt's start and end, against it
  without them.

Prints the CPU per call of each, the client's (this process) and Redis' (INFO cpu), and the ratio of
their sums: CPU, not wall time, since a shared machine's neighbours stretch the latter. Ratios, not
times, are what to compare across runs.
"""

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from redis.asyncio import Redis

from app.core import keys
from app.core.connections import redis_client
from app.core.status import START, SUCCEED
from app.lifecycle.jobs import WRITE, Jobs
from app.lifecycle.publish import publish_all
from app.metrics.tally import Tally
from launcher.redis_server import RedisServer, free_port

ROUNDS = 16
CALLS = 200  # per round and variant
NOTE_CALL = "  note_depth(KEYS[1], now, ARGV[5], ARGV[6], ARGV[7])\n"


def tasks(n: int) -> list[dict[str, object]]:
    return [{"id": uuid.uuid4().hex, "dispatch": 1, "task_type": "text_processing", "priority": "default",
             "next_run_at": None} for _ in range(n)]


def changes() -> tuple[Tally, Tally]:
    """An attempt's start and end as the publish script records them: with and without the maxima."""
    end = datetime.now(timezone.utc)
    started = end - timedelta(seconds=0.3)
    task = {"task_type": "text_processing", "status": "SUCCESS", "attempts": 1,
            "created_at": (started - timedelta(seconds=0.01)).isoformat(), "run_at": None,
            "started_at": started.isoformat(), "completed_at": end.isoformat(), "updated_at": end.isoformat()}
    with_maxima = Tally()
    with_maxima.observe(task, START)
    with_maxima.observe(task, SUCCEED)
    without = Tally()
    without.counts, without.sums = with_maxima.counts, with_maxima.sums
    return with_maxima, without


async def server_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def per_call(redis: Redis, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(client, server) CPU seconds per call."""
    client, server = time.process_time(), await server_cpu(redis)
    for _ in range(CALLS):
        await call()
    return (time.process_time() - client) / CALLS, (await server_cpu(redis) - server) / CALLS


async def compare(redis: Redis, name: str, new: Callable[[], Awaitable[object]], old: Callable[[], Awaitable[object]],
                  reset: Callable[[], Awaitable[object]]) -> None:
    await per_call(redis, new), await per_call(redis, old)  # warm: scripts loaded, connections open
    pairs = []
    for round_ in range(ROUNDS):  # each first in every other round, from the same empty queue
        await reset()
        first = await per_call(redis, new if round_ % 2 else old)
        await reset()
        second = await per_call(redis, old if round_ % 2 else new)
        pairs.append((first, second) if round_ % 2 else (second, first))
    µs = {label: [statistics.median(p[i][j] for p in pairs) * 1e6 for j in (0, 1)] for i, label in enumerate("no")}
    ratio = statistics.median(sum(n) / sum(o) for n, o in pairs)
    print(f"| {name} | {µs['n'][0]:.0f} + {µs['n'][1]:.0f} µs | {µs['o'][0]:.0f} + {µs['o'][1]:.0f} µs | {ratio:.3f}× |")


async def measure(redis_url: str) -> None:
    redis = redis_client(redis_url, "bench:figures")
    jobs = Jobs(redis)
    plain = redis.register_script(WRITE.replace(NOTE_CALL, ""))
    assert NOTE_CALL in WRITE
    await redis.set(keys.DEPTH_RUNNING, 3)

    async def write_plain(group: list[dict[str, object]]) -> None:
        # What Jobs.write sent before the note: the same arguments, the note's three left unread.
        original = jobs._write
        jobs._write = plain
        try:
            await jobs.write(group)  # type: ignore[arg-type]
        finally:
            jobs._write = original

    async def reset() -> None:
        await redis.flushall(asynchronous=True)
        await redis.set(keys.DEPTH_RUNNING, 3)

    print("| path (CPU per call: client + Redis) | with | without | ratio |\n|---|---|---|---|")
    for size in (1, 100):
        await compare(redis, f"queue {size} job(s) (WRITE)", lambda: jobs.write(tasks(size)),  # type: ignore[arg-type]
                      lambda: write_plain(tasks(size)), reset)
    with_maxima, without = changes()

    async def publish(tally: Tally) -> None:
        await publish_all(redis, ["x" * 400] * 2, tally)  # type: ignore[arg-type]

    await compare(redis, "publish a start and an end (tally)", lambda: publish(with_maxima), lambda: publish(without), reset)
    await redis.aclose()


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(free_port(), Path(directory), appendonly=False)
        server.start()
        try:
            asyncio.run(measure(server.url))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
