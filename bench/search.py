"""Text search (`GET /api/tasks/?text=…`) over 1,000,000 stored tasks, SQLite and PostgreSQL.

The tasks go straight into the database without the search index, which the app then builds when
it opens the database, as it does for a database from before the index (that time is reported),
then one uvicorn web process answers sequential requests, `REQUESTS` per query shape, over one
keep-alive connection; p50 and p99 per shape. Every task's parameters name one of 100,000
customers (`c00042`: a word about 10 tasks have) and a few words from a small vocabulary, where
"invoice" is in about half of the tasks; results and errors carry words of their own.
"""

import asyncio
import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx

from app.store import search
from app.store.stores import prepare_database
from app.store.tables import tasks
from bench.listing import _row, _timed
from bench.report import Options, Row
from bench.stack import running_stack

TASKS = 1_000_000
REQUESTS = 200  # per query shape
CUSTOMERS = 100_000
TYPES = ("data_processing", "email_simulation", "text_processing", "batch_processing")
WORDS = ("report", "weekly", "export", "photos", "backup", "newsletter", "march", "archive", "draft", "urgent")
HEX = "0123456789abcdef"
COLUMNS = [column.name for column in tasks.columns]


def rows(n: int) -> Iterator[dict[str, object]]:
    """Oldest first, over the last 30 days; JSON columns as JSON text."""
    rnd = random.Random(5)
    now = datetime.now(UTC)
    step = timedelta(days=30) / n
    for i in range(n):
        created = now - step * (n - i)
        roll = rnd.random()
        status = "SUCCESS" if roll < 0.92 else "FAILED" if roll < 0.97 else "CANCELLED"
        words = rnd.sample(WORDS, 3) + (["invoice"] if rnd.random() < 0.5 else [])
        parameters = {"customer": f"c{rnd.randrange(CUSTOMERS):05d}", "text": " ".join(words), "rows": 1000}
        yield {
            "id": f"{rnd.getrandbits(128):032x}", "task_type": rnd.choice(TYPES), "status": status,
            "parameters": json.dumps(parameters), "progress": 100.0 if status == "SUCCESS" else 0.0, "stage": None,
            "result_data": json.dumps({"rows": 1000, "columns": 6, "elapsed": 2.01}) if status == "SUCCESS" else None,
            "error_message": f"ValueError: bad row {rnd.randrange(100)}" if status == "FAILED" else None,
            "error_traceback": None,
            "created_at": created, "started_at": created, "completed_at": created, "updated_at": created,
            "attempts": 1, "dispatch": 1, "seq": i + 1, "cancel_requested": False, "worker": "w1", "timeline": "[]",
            "max_attempts": None, "attempts_base": None, "timeout": None, "next_run_at": None,
            "idempotency_key": None, "request_hash": None, "priority": "default", "run_at": None,
            "schedule_id": None, "source_task_id": None, "callback_url": None,
        }


def _sqlite_value(value: object) -> object:
    return value.replace(tzinfo=None).isoformat(sep=" ") if isinstance(value, datetime) else value


def fill_sqlite(url: str, n: int) -> float:
    """Rows in without the table's indexes and the search index; the app makes them all again. Returns
    the seconds the app took to build the search index when it opened the database."""
    asyncio.run(prepare_database(url))
    conn = sqlite3.connect(url.split("///", 1)[1])
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    sql = f"INSERT INTO tasks ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    with conn:
        for statement in search.SQLITE_DROP:
            conn.execute(statement)
        for index in tasks.indexes:
            conn.execute(f"DROP INDEX {index.name}")
        conn.executemany(sql, ([_sqlite_value(row[c]) for c in COLUMNS] for row in rows(n)))
    conn.close()
    started = time.perf_counter()
    asyncio.run(prepare_database(url))
    seconds = time.perf_counter() - started
    conn = sqlite3.connect(url.split("///", 1)[1])
    conn.execute("ANALYZE")
    conn.close()
    return seconds


def fill_postgres(url: str, n: int) -> float:
    import asyncpg

    async def fill() -> float:
        await prepare_database(url)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP TRIGGER task_search_insert ON tasks; DROP TRIGGER task_search_change ON tasks; "
                               "DROP INDEX ix_tasks_search")
            for index in tasks.indexes:
                await conn.execute(f"DROP INDEX {index.name}")
            records = ([row[c] for c in COLUMNS] for row in rows(n))  # asyncpg takes JSON text for jsonb
            await conn.copy_records_to_table("tasks", records=records, columns=COLUMNS)
            started = time.perf_counter()
            await prepare_database(url)
            seconds = time.perf_counter() - started
            await conn.execute("VACUUM ANALYZE tasks")
            return seconds
        finally:
            await conn.close()

    return asyncio.run(fill())


def shapes(rnd: random.Random, n: int) -> dict[str, Callable[[], str]]:
    """Query shape → one request's query string (the customer, the day and the prefix vary)."""
    now = datetime.now(UTC)

    def day() -> str:
        start = (now - timedelta(days=rnd.uniform(1, 29))).replace(microsecond=0, tzinfo=None)
        return f"from={start.isoformat()}&to={(start + timedelta(days=1)).isoformat()}"

    return {
        "rare word (customer, ~10 matches)": lambda: f"text=c{rnd.randrange(CUSTOMERS):05d}",
        "common word (invoice, ~50 %)": lambda: "text=invoice",
        "common word prefix (inv)": lambda: "text=inv",
        "two words (invoice weekly)": lambda: "text=invoice+weekly",
        "word + status (invoice, FAILED)": lambda: "text=invoice&status=FAILED",
        "word + rare status (bad, CANCELLED: no match)": lambda: "text=bad&status=CANCELLED",
        "word + date range (invoice, one day)": lambda: f"text=invoice&{day()}",
        "date range alone (one day)": day,
        "word + id prefix (invoice, 2 hex digits)": lambda: f"text=invoice&q={rnd.choice(HEX)}{rnd.choice(HEX)}",
    }


def measure(database: str, database_url: str | None, n: int, requests: int) -> list[Row]:
    fill = fill_postgres if database_url else fill_sqlite
    seconds: list[float] = []

    def prepare(url: str) -> None:
        started = time.perf_counter()
        seconds.append(fill(url, n))
        seconds.append(time.perf_counter() - started)

    rnd = random.Random(13)
    out = []
    with running_stack(prepare=prepare, database_url=database_url, workers=0) as stack, \
            httpx.Client(base_url=stack.url, timeout=60) as http:
        out.append(Row(f"search: fill {n:,} tasks, {database}", f"{seconds[1]:.1f} s, of which the search index "
                       f"built on open {seconds[0]:.1f} s ({n / seconds[0]:,.0f} tasks/s)"))
        for label, query in shapes(rnd, n).items():
            times = _timed(http, lambda query=query: f"/api/tasks/?{query()}", requests)
            out.append(_row(f"search, {label}, {n:,} tasks, {database}", times))
        cursor = http.get("/api/tasks/?text=invoice").json()["next"]
        times = _timed(http, f"/api/tasks/?text=invoice&after={cursor}", requests)
        out.append(_row(f"search, common word, second page (after), {n:,} tasks, {database}", times))
    return out


def run(options: Options) -> list[Row]:
    n, requests = options.size(TASKS), max(20, options.size(REQUESTS))
    result = measure("SQLite", None, n, requests)
    if options.postgres_url:
        result += measure("PostgreSQL", options.postgres_url, n, requests)
    return result
