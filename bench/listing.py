"""The list's first page (with and without filters) and the per-status counts over 1,000,000 stored tasks.

The tasks are written straight into the database before the web process starts (one SQLite
transaction, or COPY into PostgreSQL), then one uvicorn web process answers sequential requests,
`REQUESTS` per query shape, over one keep-alive connection; p50 and p99 per shape. The mix is a
busy queue's history: mostly SUCCESS, some FAILED and CANCELLED, a backlog of PENDING (with a few
RUNNING and RETRYING) among the newest; six task types; random uuid4 ids, so a `q` prefix of three
hex digits matches about 1/4,096 of them.
"""

import asyncio
import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx

from app.store.stores import prepare_database
from app.store.tables import tasks
from bench.report import Options, Row, percentile
from bench.stack import running_stack

TASKS = 1_000_000
REQUESTS = 200  # per query shape
GOAL_MS = 20.0
TYPES = ("data_processing", "email_simulation", "image_processing", "text_processing",
         "ai_summarization", "batch_processing")
OLD = (("SUCCESS", 0.92), ("FAILED", 0.05), ("CANCELLED", 0.03))
BACKLOG = 0.01  # the newest 1 %: queued, a few running or waiting for a retry
HEX = "0123456789abcdef"


def _statuses(rnd: random.Random, n: int) -> Iterator[str]:
    backlog = max(1, int(n * BACKLOG))
    names, weights = zip(*OLD, strict=True)
    for i in range(n):
        if i < n - backlog:
            yield rnd.choices(names, weights)[0]
        else:
            roll = rnd.random()
            yield "RUNNING" if roll < 0.01 else "RETRYING" if roll < 0.012 else "PENDING"


PARAMETERS = json.dumps({"rows": 1000, "processing_time": 2, "seed": 42})
RESULT = json.dumps({"rows": 1000, "columns": 6, "elapsed": 2.01})
TRACEBACK = ('Traceback (most recent call last):\n  File "app/tasks/builtin.py", line 88, in data_processing\n'
             '    frame = parse(rows)\nValueError: bad row 17\n')


def _timeline(status: str, created: datetime, started: datetime | None, ended: datetime | None) -> str:
    entries = [f'{{"status": "PENDING", "at": "{created.isoformat()}"}}']
    if started:
        entries.append(f'{{"status": "RUNNING", "at": "{started.isoformat()}", "attempt": 1, "worker": "w1"}}')
    if ended:
        entries.append(f'{{"status": "{status}", "at": "{ended.isoformat()}"}}')
    return f"[{', '.join(entries)}]"


def rows(n: int) -> Iterator[dict[str, object]]:
    """Oldest first, one task a few seconds after the other, ending now; JSON columns as JSON text."""
    rnd = random.Random(7)
    now = datetime.now(UTC)
    step = timedelta(days=30) / n
    second, three = timedelta(seconds=1), timedelta(seconds=3)
    for i, status in enumerate(_statuses(rnd, n)):
        created = now - step * (n - i)
        done = status in ("SUCCESS", "FAILED", "CANCELLED")
        started = created + second if status != "PENDING" else None
        ended = created + three if done else None
        yield {
            "id": f"{rnd.getrandbits(128):032x}", "task_type": rnd.choice(TYPES), "status": status,
            "parameters": PARAMETERS, "progress": 100.0 if status == "SUCCESS" else 0.0,
            "stage": "done" if done else None, "result_data": RESULT if status == "SUCCESS" else None,
            "error_message": "ValueError: bad row 17" if status == "FAILED" else None,
            "error_traceback": TRACEBACK if status == "FAILED" else None,
            "created_at": created, "started_at": started, "completed_at": ended, "updated_at": ended or created,
            "attempts": 1 if started else 0, "dispatch": 1, "seq": i + 1, "cancel_requested": False,
            "worker": "w1" if started else None, "timeline": _timeline(status, created, started, ended),
            "max_attempts": None, "attempts_base": None, "timeout": None, "next_run_at": None,
            "idempotency_key": None, "request_hash": None, "priority": "default", "run_at": None,
            "schedule_id": None, "source_task_id": None, "callback_url": None,
        }


COLUMNS = [column.name for column in tasks.columns]
TIME_COLUMNS = {"created_at", "started_at", "completed_at", "updated_at", "next_run_at"}


def _sqlite_value(name: str, value: object) -> object:
    if name in TIME_COLUMNS and value is not None:
        return value.replace(tzinfo=None).isoformat(sep=" ")  # type: ignore[attr-defined]
    return value


INDEXES = [index.name for index in tasks.indexes]


def fill_sqlite(url: str, n: int) -> None:
    """Bulk load: the app makes its schema (and its counters' triggers), the indexes go while the rows
    go in, and the app makes them again, each in one sorted pass."""
    asyncio.run(prepare_database(url))
    conn = sqlite3.connect(url.split("///", 1)[1])
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")  # 1 GB: pages stay in memory until the commit
    sql = f"INSERT INTO tasks ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    with conn:
        for name in INDEXES:
            conn.execute(f"DROP INDEX {name}")
        conn.executemany(sql, ([_sqlite_value(c, row[c]) for c in COLUMNS] for row in rows(n)))
    conn.close()
    asyncio.run(prepare_database(url))
    conn = sqlite3.connect(url.split("///", 1)[1])
    conn.execute("ANALYZE")  # what `PRAGMA optimize` or a DBA would have done on a database this size
    conn.close()


def fill_postgres(url: str, n: int) -> None:
    import asyncpg

    async def fill() -> None:
        await prepare_database(url)
        conn = await asyncpg.connect(url)
        try:
            for name in INDEXES:
                await conn.execute(f"DROP INDEX {name}")
            await conn.copy_records_to_table("tasks", records=([row[c] for c in COLUMNS] for row in rows(n)),
                                             columns=COLUMNS)
            await prepare_database(url)
            await conn.execute("VACUUM ANALYZE tasks")  # autovacuum would, a minute later
        finally:
            await conn.close()

    asyncio.run(fill())


def shapes(rnd: random.Random) -> dict[str, Callable[[], str]]:
    """Query shape → a function giving one request's query string (q prefixes vary per request)."""
    def prefix(k: int) -> str:
        return "".join(rnd.choice(HEX) for _ in range(k))

    return {
        "no filter": lambda: "",
        "status=FAILED": lambda: "status=FAILED",
        "status=PENDING": lambda: "status=PENDING",
        "task_type=image_processing": lambda: "task_type=image_processing",
        "q=<3 hex digits>": lambda: f"q={prefix(3)}",
        "q=<1 hex digit>": lambda: f"q={prefix(1)}",
        "status=FAILED&task_type=email_simulation": lambda: "status=FAILED&task_type=email_simulation",
        "status+task_type+q=<2 hex digits>": lambda: f"status=SUCCESS&task_type=data_processing&q={prefix(2)}",
    }


def _timed(http: httpx.Client, path: str, requests: int, warm: int = 10) -> list[float]:
    times = []
    for i in range(warm + requests):
        started = time.perf_counter()
        answer = http.get(path() if callable(path) else path)
        elapsed = (time.perf_counter() - started) * 1000
        answer.raise_for_status()
        if i >= warm:
            times.append(elapsed)
    return times


def _row(label: str, times: list[float]) -> Row:
    p99, p50 = percentile(times, 99), percentile(times, 50)
    return Row(label, f"p99 {p99:.1f} ms (p50 {p50:.1f} ms)", f"p99 ≤ {GOAL_MS:.0f} ms", p99 <= GOAL_MS)


def measure(database: str, database_url: str | None, n: int, requests: int) -> list[Row]:
    fill = fill_postgres if database_url else fill_sqlite
    fill_seconds: list[float] = []

    def prepare(url: str) -> None:
        started = time.perf_counter()
        fill(url, n)
        fill_seconds.append(time.perf_counter() - started)

    rnd = random.Random(11)
    rows_out = []
    with running_stack(prepare=prepare, database_url=database_url, workers=0) as stack, \
            httpx.Client(base_url=stack.url, timeout=30) as http:
        rows_out.append(Row(f"list: fill {n:,} tasks, {database}", f"{fill_seconds[0]:.1f} s "
                            f"({n / fill_seconds[0]:,.0f} rows/s)"))
        for label, query in shapes(rnd).items():
            times = _timed(http, lambda query=query: f"/api/tasks/?{query()}", requests)
            rows_out.append(_row(f"list first page, {label}, {n:,} tasks, {database}", times))
        rows_out.append(_row(f"GET /api/stats, {n:,} tasks, {database}", _timed(http, "/api/stats", requests)))
    return rows_out


def run(options: Options) -> list[Row]:
    n, requests = options.size(TASKS), max(20, options.size(REQUESTS))
    result = measure("SQLite", None, n, requests)
    if options.postgres_url:
        result += measure("PostgreSQL", options.postgres_url, n, requests)
    return result
