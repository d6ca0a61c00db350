"""Scale-out of the workers: tiny tasks, all queued first, drained by 1 worker process and then by 2,
each pinned to a core of its own when the machine has enough (`os.sched_setaffinity`); the ratio of
the two drain rates is the figure. The bare engine (bench/bare_arq.py: no-op jobs) is drained the
same way in the same run: what a second process can gain on this machine at all.

Only the workers are pinned: Redis, the web process and the database (SQLite in the workers' own
processes, or the PostgreSQL server) run wherever the scheduler puts them, so on a 2-core machine
they share the workers' two cores. A drain rate is counted from the first start to the last finish
the tasks (or jobs) recorded."""

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

from bench.bare_arq import QUEUE, queued_noops, results
from bench.drain import ENV, TINY
from bench.report import Options, Row
from bench.stack import ROOT, running_stack, start_worker, stop
from launcher.redis_server import RedisServer, free_port

TASKS = 3_000
BATCH = 500
GOAL = 1.7


def pin(procs: list[subprocess.Popen[bytes]]) -> list[int] | None:
    """One core per process; None (nothing pinned) when the machine has fewer cores than processes."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < len(procs):
        return None
    for proc, core in zip(procs, cores):
        os.sched_setaffinity(proc.pid, {core})
    return cores[:len(procs)]


def _cpu_ticks() -> dict[int, tuple[str, int]]:
    """Every process's name and user + system CPU so far, in clock ticks (Linux /proc; empty elsewhere)."""
    ticks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, tail = stat.read_text().rpartition(")")
        except OSError:
            continue
        fields = tail.split()
        ticks[int(stat.parent.name)] = (head.partition("(")[2], int(fields[11]) + int(fields[12]))
    return ticks


def _where_cpu_went(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]],
                    workers: list[int], wall: float) -> str:
    """Shares of one core over `wall` seconds: each worker, the PostgreSQL server, Redis, and the rest
    (the web process, this script, anything else running on the machine)."""
    used: dict[str, float] = {}
    for pid, (name, total) in after.items():
        spent = (total - before.get(pid, (name, 0))[1]) / os.sysconf("SC_CLK_TCK") / wall
        group = "worker" if pid in workers else "PostgreSQL" if name.startswith("postgres") \
            else "Redis" if name.startswith("redis-server") else "rest"
        used[group] = used.get(group, 0.0) + spent
    each = " + ".join(f"{(after[pid][1] - before.get(pid, ('', 0))[1]) / os.sysconf('SC_CLK_TCK') / wall:.0%}"
                      for pid in workers if pid in after)
    parts = [f"workers {each}"] + [f"{group} {used[group]:.0%}" for group in ("PostgreSQL", "Redis", "rest")
                                   if group in used and used[group] >= 0.005]
    return ", ".join(parts) + " of a core"


def _span(starts: list[float], ends: list[float], count: int) -> float:
    return count / (max(ends) - min(starts))


async def _bare(redis_url: str, count: int, workers: int) -> float:
    async with queued_noops(redis_url, count) as (pool, ids):
        procs = [subprocess.Popen([sys.executable, "-m", "bench.bare_arq"], cwd=ROOT,
                                  env={**os.environ, "REDIS_URL": redis_url},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
        pin(procs)
        try:
            deadline = time.monotonic() + 600
            while await pool.zcard(QUEUE) or await pool.exists(*(f"arq:result:{i}" for i in ids[-50:])) < 50:
                assert time.monotonic() < deadline, "the bare workers did not drain"
                await asyncio.sleep(0.05)
        finally:
            stop(procs)
        done = await results(pool, ids, count)
        return _span([r["st"] / 1000 for r in done], [r["ft"] / 1000 for r in done], count)


def bare(count: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, RedisServer(free_port(), Path(tmp), appendonly=False) as redis:
        return asyncio.run(_bare(redis.url, count, workers))


def _drained(http: httpx.Client, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 900
    while (http.get("/api/stats").json()["counts"].get("SUCCESS", 0)) < count:
        assert time.monotonic() < deadline, "the workers did not drain"
        time.sleep(0.1)
    tasks: list[dict[str, object]] = []
    after = None
    while True:
        page = http.get("/api/tasks/", params={"limit": 500, **({"after": after} if after else {})}).json()
        tasks += page["tasks"]
        if not (after := page["next"]):
            return tasks


def ours(count: int, workers: int, database_url: str | None) -> tuple[float, list[int] | None, str]:
    """Tasks per second; the cores the workers were pinned to; where the CPU went from the workers'
    start to the drain's end."""
    with running_stack(ENV, database_url=database_url, workers=0) as stack, \
            httpx.Client(base_url=stack.url, timeout=120) as http:
        for start in range(0, count, BATCH):
            answer = http.post("/api/tasks/batch", json={"tasks": [TINY] * min(BATCH, count - start)})
            assert answer.status_code == 201, answer.text
        before, started = _cpu_ticks(), time.monotonic()
        procs = [start_worker(stack.env) for _ in range(workers)]
        cores = pin(procs)
        try:
            tasks = _drained(http, count)
            cpu = _where_cpu_went(before, _cpu_ticks(), [proc.pid for proc in procs], time.monotonic() - started)
        finally:
            stop(procs)
    assert len(tasks) == count and {t["status"] for t in tasks} == {"SUCCESS"}
    starts = [datetime.fromisoformat(str(t["started_at"])).timestamp() for t in tasks]
    ends = [datetime.fromisoformat(str(t["completed_at"])).timestamp() for t in tasks]
    return _span(starts, ends, count), cores, cpu


def run(options: Options) -> list[Row]:
    count = options.size(TASKS)
    one_bare, two_bare = bare(count, 1), bare(count, 2)
    baseline = f"bare arq 1 → 2 processes: {one_bare:,.0f} → {two_bare:,.0f} jobs/s ({two_bare / one_bare:.2f}×)"
    rows = []
    databases = [("SQLite", None)] + ([("PostgreSQL", options.postgres_url)] if options.postgres_url else [])
    for name, url in databases:
        one, _, cpu_one = ours(count, 1, url)
        two, cores, cpu_two = ours(count, 2, url)
        where = f"pinned to cores {', '.join(map(str, cores))}" if cores else "not pinned: fewer cores than workers"
        rows.append(Row(f"scale-out: {count:,} tiny tasks queued, drained by 1 → 2 worker processes ({where}; "
                        f"Redis, web and database unpinned, {os.cpu_count()} CPUs in all), {name}",
                        f"{one:,.0f} → {two:,.0f} tasks/s (CPU: {cpu_one} → {cpu_two})", goal=f"≥ {GOAL}× from 1 to 2", met=two / one >= GOAL,
                        baseline=baseline, ratio=two / one))
    return rows
