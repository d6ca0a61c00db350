"""Task persistence: the only module that talks to the database (SQLite or PostgreSQL via `databases`).

Every change is one guarded statement (`UPDATE … WHERE id AND status IN (…) AND seq < :seq
RETURNING *`): a move the status machine does not allow, or a change older than the one stored,
touches no row. SQLite runs in WAL mode with a busy timeout on every connection.
"""

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from databases import Database
from databases.interfaces import Record
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import CreateIndex, CreateTable

from app.status import Status
from app.tables import metadata, task_logs, tasks
from app.wire import LogLine, TaskDict, TimelineEntry, dumps

SQLITE_BUSY_TIMEOUT = 30.0  # seconds a writer waits for the lock before "database is locked"
DATETIME_FIELDS = ("created_at", "started_at", "completed_at", "updated_at", "next_run_at")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _database(url: str) -> Database:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # `databases` opens a new sqlite3 connection per task: the timeout must ride on every one.
        return Database(url, timeout=SQLITE_BUSY_TIMEOUT)
    return Database(url)


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
            await self._db.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
        for table in metadata.sorted_tables:
            await self._db.execute(CreateTable(table, if_not_exists=True))
            await self._add_missing_columns(table)
            for index in table.indexes:
                await self._db.execute(CreateIndex(index, if_not_exists=True))

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
        stmt = tasks.update().where(
            tasks.c.id == task_id, tasks.c.status.in_(list(statuses)), tasks.c.seq < seq
        )
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
        self, *, status: str | None, task_type: str | None, id_prefix: str | None, limit: int, offset: int
    ) -> tuple[list[TaskDict], int]:
        conditions = []
        if status is not None:
            conditions.append(tasks.c.status == status)
        if task_type is not None:
            conditions.append(tasks.c.task_type == task_type)
        if id_prefix:
            # ids are lower-case hex (the caller checks the prefix is too): a key range on the index
            conditions += [tasks.c.id >= id_prefix, tasks.c.id < id_prefix + "g"]
        query = (
            tasks.select()
            .where(*conditions)
            .order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        total = await self._db.fetch_val(sa.select(sa.func.count()).select_from(tasks).where(*conditions))
        return [_task(r) for r in await self._db.fetch_all(query)], int(total)

    async def counts(self) -> dict[str, int]:
        query = sa.select(tasks.c.status, sa.func.count()).group_by(tasks.c.status)
        found = {row[0]: int(row[1]) for row in await self._db.fetch_all(query)}
        return {status.value: found.get(status.value, 0) for status in Status}

    async def running(self) -> list[TaskDict]:
        return [_task(r) for r in await self._db.fetch_all(tasks.select().where(tasks.c.status == Status.RUNNING))]

    async def waiting_since(self, before: datetime, limit: int) -> list[TaskDict]:
        """Queued tasks not changed since `before` whose next run (if scheduled) is due by then."""
        query = (
            tasks.select()
            .where(tasks.c.status.in_([Status.PENDING, Status.RETRYING]), tasks.c.updated_at < before,
                   sa.or_(tasks.c.next_run_at.is_(None), tasks.c.next_run_at < before))
            .order_by(tasks.c.updated_at)
            .limit(limit)
        )
        return [_task(r) for r in await self._db.fetch_all(query)]

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
        records = await self._db.fetch_all(task_logs.insert().values(rows).returning(*task_logs.c))
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
