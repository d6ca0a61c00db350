"""Task persistence: the only module that talks to the database (SQLite or PostgreSQL via `databases`).

Every change is one guarded statement (`UPDATE … WHERE id AND status IN (…) AND seq < :seq
RETURNING *`): a move the status machine does not allow, or a change older than the one stored,
touches no row. SQLite runs in WAL mode with a busy timeout on every connection.
"""

import asyncio
import contextvars
import dataclasses
import functools
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from databases import Database
from databases.interfaces import Record
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import CreateColumn, CreateIndex, CreateTable

from app import search
from app.database import TaskDatabase
from app.filters import TaskFilter
from app.status import FINAL, Status
from app.tables import (
    COUNT_TRIGGER_NAMES,
    COUNT_TRIGGERS,
    UTCDateTime,
    metadata,
    task_counts,
    task_logs,
    tasks,
    webhook_deliveries,
)
from app.wire import LogLine, TaskDict, TimelineEntry, dumps

T = TypeVar("T")

SCHEMA_LOCK = 7_146_871_352  # PostgreSQL advisory lock key held while the schema is created or updated
SQLITE_BUSY_TIMEOUT = 30.0  # seconds a writer waits for the lock before "database is locked"
COUNT_CAP = 10_000  # a search counts at most this many matches (`total` stops there)
TASK_COLUMNS = tuple(column.name for column in tasks.columns if column.name != "request_hash")
DATETIME_FIELDS = ("created_at", "started_at", "completed_at", "updated_at", "next_run_at", "run_at")


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


class DriverStatement(NamedTuple):
    """A compiled statement as the driver takes it: its text, the names its arguments take in order,
    their bind processors (JSON, timestamps, booleans) and the values compiled into it."""

    sql: str
    names: list[str]
    processors: dict[str, Callable[[Any], Any]]
    params: dict[str, Any]

    def args(self, rows: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
        return [[self.processors[name](row[name]) if name in self.processors else row[name] for name in self.names]
                for row in rows]


class TaskStore:
    def __init__(self, database: Database) -> None:
        self._db = database
        self.dialect = database.url.dialect
        # SQLite lets one writer in at a time: there, several changes in one transaction cannot deadlock
        self.one_writer_at_a_time = self.dialect == "sqlite"
        # Set inside `atomically`'s transaction: work that calls `atomically` again joins it.
        self._in_transaction = contextvars.ContextVar(f"in_transaction_{id(self)}", default=False)

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
        if not await search.has_index(self._db, self.dialect):
            await self._start_searching()

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
        async with self._writers_held_off() as connection:
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

    async def _start_searching(self) -> None:
        """Build the text search index (app/search.py) from the tasks stored and create the triggers that
        keep it, with writers held off in between: for a new database and one from before the index."""
        async with self._writers_held_off() as connection:
            if not await search.has_index(connection, self.dialect):  # another process may have just done it
                await search.build_index(connection, self.dialect)

    @asynccontextmanager
    async def _writers_held_off(self) -> AsyncIterator[Any]:
        """A transaction that holds the write lock (SQLite) or keeps writers of `tasks` out (PostgreSQL)."""
        async with self._db.connection() as connection:
            if self.dialect == "sqlite":
                await connection.raw_connection.execute("BEGIN IMMEDIATE")  # the write lock, before reading
            else:
                await connection.execute("BEGIN")
                await connection.execute("LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE")
            try:
                yield connection
            except BaseException:
                await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")

    async def _add_missing_columns(self, table: sa.Table) -> None:
        """Columns added by a later version are added to an older database (nullable, or with a default)."""
        if self.dialect == "sqlite":
            rows = await self._db.fetch_all(f"PRAGMA table_info({table.name})")
            present = {row["name"] for row in rows}
        else:
            query = "SELECT column_name FROM information_schema.columns WHERE table_name = :name"
            present = {row["column_name"] for row in await self._db.fetch_all(query, {"name": table.name})}
        dialect = self._db._backend._dialect  # the dialect `databases` compiles with
        for column in table.columns:
            if column.name not in present:
                definition = CreateColumn(column).compile(dialect=dialect)
                await self._db.execute(f"ALTER TABLE {table.name} ADD COLUMN {definition}")

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
        insert = self._insert_statement(tuple(sorted(rows[0])))
        # by type: the count triggers then lock task_counts rows in one order in every transaction
        args = insert.args(sorted(rows, key=lambda row: row["task_type"]))
        await self.atomically(lambda: self._db.connection().raw_connection.executemany(insert.sql, args))
        return [_new_task(row) for row in rows]

    @functools.lru_cache(maxsize=4)  # noqa: B019 -- one store per process, a few column sets
    def _insert_statement(self, columns: tuple[str, ...]) -> "DriverStatement":
        return self._statement(tasks.insert(), columns)

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

    @staticmethod
    def current(column: str) -> sa.ColumnElement[Any]:
        """The row's own value of `column`, for a value set from another column."""
        return tasks.c[column]

    async def atomically(self, work: Callable[[], Awaitable[T]]) -> T:
        """`work`'s statements in one transaction, carried to its end even if the caller is cancelled.

        BEGIN and COMMIT are plain statements on a connection held by `async with`, not `databases`'
        transaction object, which keeps its connection for good when cancelled inside BEGIN or
        COMMIT or when COMMIT fails: on SQLite that is the process's only connection (app/sqlite.py),
        with the write lock. On SQLite the write lock is taken at BEGIN (IMMEDIATE): a transaction that
        reads first and writes after another process committed would fail at once with "database is
        locked" (its snapshot is stale), never waiting in the busy handler.

        Called from inside such work, it runs `work` as part of that transaction (a change that must be
        atomic with what it writes beside the task, written within a group commit or alone)."""
        if self._in_transaction.get():
            return await work()
        begin = "BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN"

        async def run() -> T:
            self._in_transaction.set(True)  # in this task's own context only
            async with self._db.connection() as connection:
                await connection.execute(begin)
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

    async def update_many(
        self, task_ids: list[str], first_seq: int, *, statuses: Iterable[Status], values: Mapping[str, Any],
        entry: TimelineEntry,
    ) -> list[TaskDict]:
        """`update` for many tasks in one transaction, the i-th task given seq `first_seq + i`: one
        statement compiled once and run by the driver's executemany, then the rows changed read back
        (those not in `statuses`, or holding a newer change than their seq, are left alone). Rows are written in task type order, so the count
        triggers take their counter rows in one order in every transaction (app/tables.py)."""
        allowed = sa.or_(*(tasks.c.status == status for status in sorted(statuses)))
        stmt = tasks.update().where(tasks.c.id == sa.bindparam("row_id"), allowed,
                                    tasks.c.seq < sa.bindparam("row_seq")).values(
            **values, seq=sa.bindparam("row_seq"), updated_at=utcnow(), timeline=self._append(entry))
        update = self._statement(stmt)
        seqs = {task_id: first_seq + i for i, task_id in enumerate(task_ids)}

        async def work() -> list[TaskDict]:
            found = await self._db.fetch_all(sa.select(tasks.c.id, tasks.c.task_type).where(tasks.c.id.in_(task_ids)))
            kinds = {r["id"]: r["task_type"] for r in found}
            rows = [{**update.params, "row_id": task_id, "row_seq": seqs[task_id]}
                    for task_id in sorted(kinds, key=lambda task_id: (kinds[task_id], task_id))]
            if rows:
                await self._db.connection().raw_connection.executemany(update.sql, update.args(rows))
            changed = tasks.select().where(tasks.c.id.in_(task_ids), tasks.c.seq >= first_seq,
                                           tasks.c.seq < first_seq + len(task_ids))
            return sorted((_task(r) for r in await self._db.fetch_all(changed)), key=lambda task: task["seq"])

        return await self.atomically(work)

    def _statement(self, stmt: sa.Executable, columns: tuple[str, ...] | None = None) -> "DriverStatement":
        """A statement (of these columns only, for an INSERT) in the driver's own placeholders, for its
        executemany: SQLAlchemy compiling each row costs more than the database's own work."""
        compiled = stmt.compile(dialect=self._db._backend._dialect, column_keys=list(columns) if columns else None)
        processors = dict(compiled._bind_processors)  # type: ignore[attr-defined]
        if self.dialect == "postgresql":  # pyformat, turned into asyncpg's $n as `databases` does
            names = list(compiled.params)
            sql = compiled.string % {name: f"${i}" for i, name in enumerate(names, start=1)}
            return DriverStatement(sql, names, processors, compiled.params)
        return DriverStatement(compiled.string, list(compiled.positiontup or ()), processors, compiled.params)

    def _append(self, entry: TimelineEntry) -> sa.ColumnElement[Any]:
        if self.dialect == "postgresql":
            return tasks.c.timeline.op("||")(sa.literal([entry], JSONB))
        return sa.func.json_insert(tasks.c.timeline, "$[#]", sa.func.json(dumps(entry)))

    async def page(
        self, where: TaskFilter, *, limit: int, offset: int, after: tuple[datetime, str] | None = None,
    ) -> tuple[list[TaskDict], int]:
        """Newest first; `after` (a task's created_at and id) starts the page past that task (keyset
        paging: no rows skipped one by one). `total` does not scan: read from `task_counts` for a
        status/type filter, else counted up to COUNT_CAP matches."""
        tally = await self._tally()
        if where.text and (found := search.words(where.text)):
            searching = self._search_page if self.dialect == "sqlite" else self._search_page_postgres
            return await searching(where, found, tally, limit=limit, offset=offset, after=after)
        conditions = self._conditions(where, tally, limit + offset)
        if where.counted:
            total = sum(n for kind, state, n in tally
                        if where.status in (None, state) and where.task_type in (None, kind))
        else:
            total = await self._count_up_to(conditions, COUNT_CAP)
        if after is not None:
            conditions.append(self._before(after))
        return [_task(r) for r in await self._db.fetch_all(self._newest(conditions, limit, offset))], total

    @staticmethod
    def _before(after: tuple[datetime, str]) -> sa.ColumnElement[bool]:
        cursor = sa.tuple_(sa.literal(after[0], UTCDateTime()), sa.literal(after[1], tasks.c.id.type))
        return sa.tuple_(tasks.c.created_at, tasks.c.id) < cursor

    @staticmethod
    def _newest(conditions: list[sa.ColumnElement[bool]], limit: int, offset: int, *,
                by_index: bool = True) -> sa.Select[Any]:
        # not the column: the list's index cannot give the order, so the few matches are read and sorted
        created = tasks.c.created_at if by_index else sa.func.coalesce(tasks.c.created_at, tasks.c.created_at)
        return tasks.select().where(*conditions).order_by(created.desc(), tasks.c.id.desc()).limit(limit).offset(offset)

    async def _search_page(self, where: TaskFilter, found: list[str], tally: list[tuple[str, str, int]], *,
                           limit: int, offset: int, after: tuple[datetime, str] | None) -> tuple[list[TaskDict], int]:
        """SQLite, a text search (app/search.py): the index read for whole terms, from the newest tasks on
        for a common word, never every match of it."""
        if (expression := await search.expanded(self._db, found)) is None:
            return [], 0  # a word that begins no word of any task
        others = self._conditions(dataclasses.replace(where, text=None), tally, limit + offset)
        span: tuple[int | None, int | None] = (None, None)
        if where.created_from or where.created_to:  # the index read over that time's rowids only
            during = TaskFilter(created_from=where.created_from, created_to=where.created_to)
            bounds = await self._db.fetch_one(search.rowids(self._conditions(during, tally, 0)))
            span = (bounds[0], bounds[1]) if bounds is not None else span
        total = int(await self._db.fetch_val(search.count_up_to(others, expression, COUNT_CAP, span)))
        if after is not None:
            others.append(self._before(after))
        few = await self._db.fetch_val(search.count_up_to([], expression, search.FEW)) < search.FEW
        if few or (records := await self._newest_matches(others, expression, limit, offset)) is None:
            query = self._newest([*others, search.matches_from(expression)], limit, offset, by_index=False)
            records = await self._db.fetch_all(query)
        return [_task(r) for r in records], total

    async def _search_page_postgres(
        self, where: TaskFilter, found: list[str], tally: list[tuple[str, str, int]], *,
        limit: int, offset: int, after: tuple[datetime, str] | None,
    ) -> tuple[list[TaskDict], int]:
        """PostgreSQL, a text search. Its planner cannot tell a rare prefix from a common one (it walks
        the whole list for a rare one), and reading the GIN index for a common one takes every match:
        the page is looked for among the newest tasks first (the text tested row by row), the index
        read only when they do not hold it (then the matches are few: read and sorted)."""
        others = self._conditions(dataclasses.replace(where, text=None), tally, limit + offset)
        listed = [*others, self._before(after)] if after is not None else others
        scanned = search.matches(self.dialect, found, indexed=False)
        bound = await self._created_bound(listed, search.WINDOWS[0])
        records = await self._db.fetch_all(self._newest([*listed, scanned, *bound], limit, offset))
        common = bool(bound) and len(records) == limit
        if bound and not common:  # a rarer word: its few matches from the index, sorted
            query = self._newest([*listed, search.matches(self.dialect, found)], limit, offset, by_index=False)
            records = await self._db.fetch_all(query)
        total = 0
        if common and (bound := await self._created_bound(others, 4 * COUNT_CAP)):  # counted among the newest
            total = await self._count_up_to([*others, scanned, *bound], COUNT_CAP)
        if total < COUNT_CAP:
            total = await self._count_up_to([*others, search.matches(self.dialect, found)], COUNT_CAP)
        return [_task(r) for r in records], total

    async def _created_bound(self, conditions: list[sa.ColumnElement[bool]], size: int) -> list[sa.ColumnElement[bool]]:
        """`created_at >=` the creation time of the `size`-th newest task meeting `conditions` (none if fewer)."""
        oldest = await self._db.fetch_val(sa.select(tasks.c.created_at).where(*conditions).order_by(
            tasks.c.created_at.desc(), tasks.c.id.desc()).limit(1).offset(size - 1))
        return [] if oldest is None else [tasks.c.created_at >= oldest]

    async def _newest_matches(self, others: list[sa.ColumnElement[bool]], expression: str,
                              limit: int, offset: int) -> list[Record] | None:
        """SQLite: a page of a text search looked for among the newest tasks meeting the other conditions
        (`search.window`), a few thousand then ten times more; None when neither window holds the whole
        page (a rare word: collecting every match is cheap then)."""
        for size in search.WINDOWS:
            bounds = await self._db.fetch_one(search.window(others, size))
            assert bounds is not None
            floor, found, oldest = bounds[0], bounds[1], bounds[2]
            if found == 0:
                return []
            records = await self._db.fetch_all(
                self._newest([*others, search.matches_from(expression, floor)], limit, offset))
            if found < size or (len(records) == limit and records[-1]["created_at"] > oldest):
                return records
        return None

    def _conditions(self, where: TaskFilter, tally: list[tuple[str, str, int]],
                    wanted: int) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = []
        for name in ("status", "task_type", "priority", "schedule_id", "source_task_id"):
            if (value := getattr(where, name)) is not None:
                conditions.append(tasks.c[name] == value)
        if where.created_from is not None:
            conditions.append(tasks.c.created_at >= where.created_from)
        if where.created_to is not None:
            conditions.append(tasks.c.created_at < where.created_to)
        if where.id_prefix:
            # ids are lower-case hex (the filter checks the prefix is too): a key range on the index
            key: sa.ColumnElement[Any] = tasks.c.id
            # Random ids: the range holds about 1/16^k of all tasks, while walking the list in order
            # meets a match every 16^k tasks. For a short prefix the walk is the cheaper plan, which
            # the planners (SQLite's even with statistics) miss: hide the range from them then.
            if sum(n for _, _, n in tally) > wanted * 16 ** (2 * len(where.id_prefix)):
                key = tasks.c.id.concat("")
            conditions += [key >= where.id_prefix, key < where.id_prefix + "g"]
        if where.text and (found := search.words(where.text)):
            conditions.append(search.matches(self.dialect, found))
        return conditions

    async def count(self, where: TaskFilter, statuses: Iterable[str] | None = None) -> int:
        """Exactly how many tasks match (and are in one of `statuses`): for a bulk action's count."""
        tally = await self._tally()
        allowed = None if statuses is None else set(statuses)
        if where.counted:
            return sum(n for kind, state, n in tally if where.status in (None, state)
                       and where.task_type in (None, kind) and (allowed is None or state in allowed))
        conditions = self._conditions(where, tally, COUNT_CAP)
        if allowed is not None:
            conditions.append(tasks.c.status.in_(sorted(allowed)))
        return int(await self._db.fetch_val(sa.select(sa.func.count()).select_from(tasks).where(*conditions)))

    async def select_batch(
        self, where: TaskFilter, statuses: Iterable[str], *, created_by: datetime,
        after: tuple[datetime, str] | None, limit: int,
    ) -> list[tuple[str, datetime]]:
        """(id, created_at) of up to `limit` matching tasks in `statuses` created by `created_by`,
        newest first after the keyset `after`: a bulk action walks its tasks with it."""
        conditions = self._conditions(where, await self._tally(), limit)
        conditions += [tasks.c.status.in_(sorted(statuses)), tasks.c.created_at <= created_by]
        if after is not None:
            cursor = sa.tuple_(sa.literal(after[0], UTCDateTime()), sa.literal(after[1], tasks.c.id.type))
            conditions.append(sa.tuple_(tasks.c.created_at, tasks.c.id) < cursor)
        query = (sa.select(tasks.c.id, tasks.c.created_at).where(*conditions)
                 .order_by(tasks.c.created_at.desc(), tasks.c.id.desc()).limit(limit))
        return [(r["id"], r["created_at"]) for r in await self._db.fetch_all(query)]

    async def statuses(self, task_ids: list[str]) -> dict[str, str]:
        query = sa.select(tasks.c.id, tasks.c.status).where(tasks.c.id.in_(task_ids))
        return {r["id"]: r["status"] for r in await self._db.fetch_all(query)}

    async def delete_finished(self, task_ids: list[str]) -> list[str]:
        """Remove these tasks (with their log lines and webhook deliveries sent or given up) if they are
        final; returns those removed. Pending deliveries stay: each holds its own copy of the task and
        is still sent (app/webhook_store.py)."""
        async def work() -> list[str]:
            records = await self._db.fetch_all(
                tasks.delete().where(tasks.c.id.in_(task_ids), tasks.c.status.in_(sorted(FINAL)))
                .returning(tasks.c.id))
            removed = [r["id"] for r in records]
            if removed:
                await self._db.execute(task_logs.delete().where(task_logs.c.task_id.in_(removed)))
                await self._db.execute(webhook_deliveries.delete().where(
                    webhook_deliveries.c.task_id.in_(removed), webhook_deliveries.c.status != "pending"))
            return removed

        return await self.atomically(work)

    async def finished_before(self, before: datetime, limit: int) -> list[str]:
        """Ids of final tasks that ended before `before`, oldest first (retention)."""
        query = (sa.select(tasks.c.id)
                 .where(tasks.c.completed_at < before, tasks.c.status.in_(sorted(FINAL)))
                 .order_by(tasks.c.completed_at).limit(limit))
        return [r["id"] for r in await self._db.fetch_all(query)]

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
