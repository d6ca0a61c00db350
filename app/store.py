"""Task persistence: the only module that talks to the database (SQLite or PostgreSQL via `databases`).

Every change is one guarded statement (`UPDATE … WHERE id AND status IN (…) AND seq < :seq
RETURNING *`): a move the status machine does not allow, or a change older than the one stored,
touches no row. SQLite runs in WAL mode with a busy timeout on every connection.
"""

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from databases import Database
from databases.interfaces import Record
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import CreateIndex, CreateTable

from app.database import TaskDatabase
from app.status import Status
from app.tables import COUNT_TRIGGER_NAMES, COUNT_TRIGGERS, UTCDateTime, metadata, task_counts, task_logs, tasks
from app.wire import LogLine, TaskDict, TimelineEntry, dumps

T = TypeVar("T")

SCHEMA_LOCK = 7_146_871_352  # PostgreSQL advisory lock key held while the schema is created or updated
SQLITE_BUSY_TIMEOUT = 30.0  # seconds a writer waits for the lock before "database is locked"
PREFIX_COUNT_CAP = 10_000  # an id-prefix search counts at most this many matches (`total` stops there)
TASK_COLUMNS = tuple(column.name for column in tasks.columns if column.name != "request_hash")
DATETIME_FIELDS = ("created_at", "started_at", "completed_at", "updated_at", "next_run_at")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _database(url: str) -> Database:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return TaskDatabase(url, timeout=SQLITE_BUSY_TIMEOUT)  # one connection per process: app/sqlite.py
    return TaskDatabase(url)


def _new_task(values: Mapping[str, Any]) -> TaskDict:
    """What `_task` reads back for a row just inserted with these values."""
    task: dict[str, Any] = {name: values.get(name) for name in TASK_COLUMNS}
    for name in DATETIME_FIELDS:
        if task[name] is not None:
            task[name] = task[name].astimezone(UTC).isoformat()
    task["cancel_requested"] = bool(task["cancel_requested"])
    return task  # type: ignore[return-value]


def _task(record: Record) -> TaskDict:
    task: dict[str, Any] = {column.name: record[column.name] for column in tasks.columns}
    task.pop("request_hash")  # internal: compares repeated submits with one Idempotency-Key
    for name in DATETIME_FIELDS:
        if task[name] is not None:
            task[name] = task[name].astimezone(UTC).isoformat()
    task["cancel_requested"] = bool(task["cancel_requested"])
    return task  # type: ignore[return-value]


class TaskStore:
    def __init__(self, database: Database) -> None:
        self._db = database
        self.dialect = database.url.dialect
        # SQLite lets one writer in at a time: there, several changes in one transaction cannot deadlock
        self.one_writer_at_a_time = self.dialect == "sqlite"

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator["TaskStore"]:
        database = _database(url)
        await database.connect()
        try:
            store = cls(database)
            await store.create_schema()
            yield store
        finally:
            await database.disconnect()

    async def create_schema(self) -> None:
        if self.dialect == "sqlite":
            await self._use_wal()
            await self._create_tables()
            return
        # Web and workers starting together on a new PostgreSQL database would race in CREATE …
        # IF NOT EXISTS (a duplicate key in pg_class): one process at a time, on one connection.
        async with self._db.connection() as connection:
            await connection.execute(f"SELECT pg_advisory_lock({SCHEMA_LOCK})")
            try:
                await self._create_tables()
            finally:
                await connection.execute(f"SELECT pg_advisory_unlock({SCHEMA_LOCK})")

    async def _use_wal(self) -> None:
        """Switch the file to WAL (persistent: stored in the file). Switching takes an exclusive lock
        and SQLite answers "database is locked" at once instead of calling the busy handler when
        another process holds the file, as web and workers opening a new database together do."""
        deadline = asyncio.get_running_loop().time() + SQLITE_BUSY_TIMEOUT
        while True:
            try:
                await self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.01)

    async def _create_tables(self) -> None:
        for table in metadata.sorted_tables:
            await self._db.execute(CreateTable(table, if_not_exists=True))
            await self._add_missing_columns(table)
            for index in table.indexes:
                await self._db.execute(CreateIndex(index, if_not_exists=True))
        if not await self._has_count_triggers():
            await self._start_counting()

    async def _has_count_triggers(self) -> bool:
        if self.dialect == "sqlite":
            query = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'tasks' AND name IN "
        else:
            query = ("SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                     "WHERE relname = 'tasks' AND tgname IN ")
        query += f"({', '.join(repr(name) for name in COUNT_TRIGGER_NAMES)})"
        return await self._db.fetch_val(query) == len(COUNT_TRIGGER_NAMES)

    async def _start_counting(self) -> None:
        """Count the tasks into `task_counts` and create the triggers that keep it exact, with writers held
        off in between. Runs for a new database, one from before the counts, and after `tasks` was dropped
        and made again (its triggers went with it; the stale counters did not)."""
        async with self._db.connection() as connection:
            if self.dialect == "sqlite":
                await connection.raw_connection.execute("BEGIN IMMEDIATE")  # the write lock, before reading
            else:
                await connection.execute("BEGIN")
                await connection.execute("LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE")
            try:
                if not await self._has_count_triggers():  # another process may have just done it
                    await connection.execute(task_counts.delete())
                    counted = sa.select(tasks.c.task_type, tasks.c.status, sa.func.count()).group_by(
                        tasks.c.task_type, tasks.c.status)
                    await connection.execute(task_counts.insert().from_select(["task_type", "status", "n"], counted))
                    for name in COUNT_TRIGGER_NAMES:  # a partial set, if someone dropped one
                        on = " ON tasks" if self.dialect == "postgresql" else ""
                        await connection.execute(f"DROP TRIGGER IF EXISTS {name}{on}")
                    for statement in COUNT_TRIGGERS[self.dialect]:
                        await connection.execute(statement)
            except BaseException:
                await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")

    async def _add_missing_columns(self, table: sa.Table) -> None:
        """Columns added by a later version are added to an older database (all are nullable)."""
        if self.dialect == "sqlite":
            rows = await self._db.fetch_all(f"PRAGMA table_info({table.name})")
            present = {row["name"] for row in rows}
        else:
            query = "SELECT column_name FROM information_schema.columns WHERE table_name = :name"
            present = {row["column_name"] for row in await self._db.fetch_all(query, {"name": table.name})}
        dialect = self._db._backend._dialect  # the dialect `databases` compiles with
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(dialect=dialect)
                await self._db.execute(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")

    async def ping(self) -> None:
        await self._db.fetch_val("SELECT 1")

    async def insert(self, values: Mapping[str, Any]) -> TaskDict:
        record = await self._db.fetch_one(tasks.insert().values(**values).returning(*tasks.c))
        assert record is not None
        return _task(record)

    async def delete(self, task_id: str) -> None:
        await self._db.execute(tasks.delete().where(tasks.c.id == task_id))

    async def insert_many(self, rows: list[Mapping[str, Any]]) -> list[TaskDict]:
        """New tasks (all with the same columns) in one transaction, returned in the order given.

        One statement compiled once and run by the driver's executemany: SQLAlchemy compiling a
        multi-row VALUES costs about a millisecond per row, more than the database's own work."""
        sql, names, processors = self._insert_statement(tuple(sorted(rows[0])))
        # by type: the count triggers then lock task_counts rows in one order in every transaction
        ordered = sorted(rows, key=lambda row: row["task_type"])
        args = [[processors[name](row[name]) if name in processors else row[name] for name in names] for row in ordered]
        await self.atomically(lambda: self._db.connection().raw_connection.executemany(sql, args))
        return [_new_task(row) for row in rows]

    @functools.lru_cache(maxsize=4)  # noqa: B019 -- one store per process, a few column sets
    def _insert_statement(
        self, columns: tuple[str, ...]
    ) -> tuple[str, list[str], dict[str, Callable[[Any], Any]]]:
        """INSERT of these columns in the driver's own placeholders, the order its arguments take, and
        the columns' bind processors (JSON, timestamps, booleans), from the dialect `databases` uses."""
        compiled = tasks.insert().compile(dialect=self._db._backend._dialect, column_keys=list(columns))
        processors = {name: p for name, p in compiled._bind_processors.items() if name in columns}
        if self.dialect == "postgresql":  # pyformat, turned into asyncpg's $n as `databases` does
            names = list(columns)
            return compiled.string % {name: f"${i}" for i, name in enumerate(names, start=1)}, names, processors
        return compiled.string, list(compiled.positiontup or ()), processors

    async def delete_many(self, task_ids: list[str]) -> None:
        await self._db.execute(tasks.delete().where(tasks.c.id.in_(task_ids)))

    async def by_idempotency_key(self, key: str) -> tuple[TaskDict, str] | None:
        """The task first submitted with this key, and that request's fingerprint."""
        record = await self._db.fetch_one(tasks.select().where(tasks.c.idempotency_key == key))
        return (_task(record), record["request_hash"]) if record else None

    async def get(self, task_id: str) -> TaskDict | None:
        record = await self._db.fetch_one(tasks.select().where(tasks.c.id == task_id))
        return _task(record) if record else None

    @staticmethod
    def incremented(column: str) -> sa.ColumnElement[Any]:
        return tasks.c[column] + 1

    async def atomically(self, work: Callable[[], Awaitable[T]]) -> T:
        """`work`'s statements in one transaction, carried to its end even if the caller is cancelled.

        BEGIN and COMMIT are plain statements on a connection held by `async with`, not `databases`'
        transaction object, which keeps its connection for good when cancelled inside BEGIN or
        COMMIT or when COMMIT fails: on SQLite that is the process's only connection (app/sqlite.py),
        with the write lock."""
        async def run() -> T:
            async with self._db.connection() as connection:
                await connection.execute("BEGIN")
                try:
                    result = await work()
                except BaseException:
                    await connection.execute("ROLLBACK")
                    raise
                await connection.execute("COMMIT")
                return result

        return await asyncio.shield(asyncio.ensure_future(run()))

    async def update(
        self,
        task_id: str,
        seq: int,
        *,
        statuses: Iterable[Status],
        values: Mapping[str, Any],
        entry: TimelineEntry | None = None,
        dispatch: int | None = None,
    ) -> TaskDict | None:
        """Apply `values` if the task is in one of `statuses` and holds no newer change than `seq`."""
        # OR of equalities, not IN: an expanding IN cannot be compiled once for every call (app/database.py)
        allowed = sa.or_(*(tasks.c.status == status for status in sorted(statuses)))
        stmt = tasks.update().where(tasks.c.id == task_id, allowed, tasks.c.seq < seq)
        if dispatch is not None:
            stmt = stmt.where(tasks.c.dispatch == dispatch)
        extra: dict[str, Any] = {"seq": seq, "updated_at": utcnow()}
        if entry is not None:
            extra["timeline"] = self._append(entry)
        record = await self._db.fetch_one(stmt.values(**values, **extra).returning(*tasks.c))
        return _task(record) if record else None

    def _append(self, entry: TimelineEntry) -> sa.ColumnElement[Any]:
        if self.dialect == "postgresql":
            return tasks.c.timeline.op("||")(sa.literal([entry], JSONB))
        return sa.func.json_insert(tasks.c.timeline, "$[#]", sa.func.json(dumps(entry)))

    async def page(
        self, *, status: str | None, task_type: str | None, id_prefix: str | None, limit: int, offset: int,
        after: tuple[datetime, str] | None = None,
    ) -> tuple[list[TaskDict], int]:
        """Newest first; `after` (a task's created_at and id) starts the page past that task (keyset
        paging: no rows skipped one by one). `total` does not scan: read from `task_counts`, or for an
        id-prefix search counted up to PREFIX_COUNT_CAP matches."""
        conditions = []
        if status is not None:
            conditions.append(tasks.c.status == status)
        if task_type is not None:
            conditions.append(tasks.c.task_type == task_type)
        tally = await self._tally()
        total = sum(n for kind, state, n in tally if status in (None, state) and task_type in (None, kind))
        if id_prefix:
            # ids are lower-case hex (the caller checks the prefix is too): a key range on the index
            in_range = [tasks.c.id >= id_prefix, tasks.c.id < id_prefix + "g"]
            total = await self._count_up_to(conditions + in_range, PREFIX_COUNT_CAP)
            # Random ids: the range holds about 1/16^k of all tasks, while walking the list in order
            # meets a match every 16^k tasks. For a short prefix the walk is the cheaper plan, which
            # the planners (SQLite's even with statistics) miss: hide the range from them then.
            if sum(n for _, _, n in tally) > (limit + offset) * 16 ** (2 * len(id_prefix)):
                key = tasks.c.id.concat("")
                in_range = [key >= id_prefix, key < id_prefix + "g"]
            conditions += in_range
        if after is not None:
            cursor = sa.tuple_(sa.literal(after[0], UTCDateTime()), sa.literal(after[1], tasks.c.id.type))
            conditions.append(sa.tuple_(tasks.c.created_at, tasks.c.id) < cursor)
        query = (
            tasks.select()
            .where(*conditions)
            .order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [_task(r) for r in await self._db.fetch_all(query)], total

    async def _count_up_to(self, conditions: list[sa.ColumnElement[bool]], cap: int) -> int:
        matching = sa.select(tasks.c.id).where(*conditions).limit(cap).subquery()
        return int(await self._db.fetch_val(sa.select(sa.func.count()).select_from(matching)))

    async def _tally(self) -> list[tuple[str, str, int]]:
        """(task_type, status, n) for every pair seen: a few dozen rows, whatever the number of tasks."""
        rows = await self._db.fetch_all(sa.select(task_counts.c.task_type, task_counts.c.status, task_counts.c.n))
        return [(row[0], row[1], int(row[2])) for row in rows]

    async def counts(self) -> dict[str, int]:
        found = {status.value: 0 for status in Status}
        for _, status, n in await self._tally():
            if status in found:
                found[status] += n
        return found

    async def running(self) -> list[TaskDict]:
        return [_task(r) for r in await self._db.fetch_all(tasks.select().where(tasks.c.status == Status.RUNNING))]

    async def running_jobs(self) -> list[tuple[str, int]]:
        """(id, dispatch) of every running task: what queue positions need, without loading the tasks."""
        query = sa.select(tasks.c.id, tasks.c.dispatch).where(tasks.c.status == Status.RUNNING)
        return [(row[0], int(row[1])) for row in await self._db.fetch_all(query)]

    async def waiting_since(self, before: datetime, limit: int) -> list[tuple[str, int, str]]:
        """(id, dispatch, status) of queued tasks not changed since `before` whose next run (if
        scheduled) is due by then: the reconciler reads them every few seconds, so no whole rows."""
        query = (
            sa.select(tasks.c.id, tasks.c.dispatch, tasks.c.status)
            .where(tasks.c.status.in_([Status.PENDING, Status.RETRYING]), tasks.c.updated_at < before,
                   sa.or_(tasks.c.next_run_at.is_(None), tasks.c.next_run_at < before))
            .order_by(tasks.c.updated_at)
            .limit(limit)
        )
        return [(r["id"], r["dispatch"], r["status"]) for r in await self._db.fetch_all(query)]

    async def with_seqs(self, seqs: list[int]) -> list[TaskDict]:
        """Tasks whose latest change has one of these seqs."""
        query = tasks.select().where(tasks.c.seq.in_(seqs)).order_by(tasks.c.seq)
        return [_task(r) for r in await self._db.fetch_all(query)]

    async def max_seq(self) -> int:
        return int(await self._db.fetch_val(sa.select(sa.func.coalesce(sa.func.max(tasks.c.seq), 0))))

    async def changed_between(self, after: int, upto: int, limit: int) -> list[TaskDict]:
        """Tasks whose latest change has `after < seq <= upto`, oldest change first."""
        query = (
            tasks.select()
            .where(tasks.c.seq > after, tasks.c.seq <= upto)
            .order_by(tasks.c.seq)
            .limit(limit)
        )
        return [_task(r) for r in await self._db.fetch_all(query)]

    async def append_logs(self, task_id: str, attempt: int, lines: list[tuple[datetime, str]]) -> list[LogLine]:
        rows = [{"task_id": task_id, "attempt": attempt, "at": at, "line": line} for at, line in lines]
        # one row (the usual case) as a statement whose compiled form is cached (app/database.py)
        insert = task_logs.insert().values(**rows[0]) if len(rows) == 1 else task_logs.insert().values(rows)
        records = await self._db.fetch_all(insert.returning(*task_logs.c))
        return [_log_line(r) for r in records]

    async def logs(self, task_id: str, *, after: int, limit: int) -> list[LogLine]:
        query = (
            task_logs.select()
            .where(task_logs.c.task_id == task_id, task_logs.c.id > after)
            .order_by(task_logs.c.id)
            .limit(limit)
        )
        return [_log_line(r) for r in await self._db.fetch_all(query)]

    async def count_logs(self, task_id: str) -> int:
        query = sa.select(sa.func.count()).select_from(task_logs).where(task_logs.c.task_id == task_id)
        return int(await self._db.fetch_val(query))


def _log_line(record: Record) -> LogLine:
    return {"n": int(record["id"]), "at": record["at"].astimezone(UTC).isoformat(),
            "attempt": int(record["attempt"]), "line": record["line"]}


async def prepare_database(url: str) -> None:
    async with TaskStore.open(url):
        pass
