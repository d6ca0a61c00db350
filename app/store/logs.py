"""Task log lines: appended by the worker running the task (capped per task there), read in pages by
line number, removed with their task."""

import functools
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from databases.interfaces import Record

from app.core.wire import LogLine
from app.store.db import Db, DriverStatement, arrays
from app.store.tables import task_logs

BATCH = 50  # lines per INSERT on SQLite: each count of lines up to this is a statement compiled once
Batch = tuple[str, int, list[tuple[datetime, str]]]  # one attempt's lines: (task id, attempt, (at, line) each)


def _line(record: Record) -> LogLine:
    return {"n": int(record["id"]), "at": record["at"].astimezone(UTC).isoformat(),
            "attempt": int(record["attempt"]), "line": record["line"]}


class LogStore:
    def __init__(self, db: Db) -> None:
        self.db = db
        [self._read_at] = db.decoders([task_logs.c.at])

    async def append(self, task_id: str, attempt: int, lines: list[tuple[datetime, str]]) -> list[LogLine]:
        """The lines, numbered in order (run on the driver: a task's lines are written by its worker, on the
        hot path)."""
        batches = [(task_id, attempt, lines)]
        [stored] = self.stored(batches, [await self.db.rows(statement, values) for statement, values in
                                         self.steps(batches)])
        return stored

    def steps(self, batches: list[Batch]) -> list[tuple[DriverStatement, dict[str, Any]]]:
        """The statements that append these tasks' lines, and their values, to run with others
        (`Db.rows_then`); `stored` reads their rows. On SQLite one statement per BATCH lines of a task;
        on PostgreSQL, where each is a round trip, one for all."""
        if self.db.dialect == "sqlite":
            steps = []
            for task_id, attempt, lines in batches:
                for start in range(0, len(lines), BATCH):
                    batch = lines[start:start + BATCH]
                    values: dict[str, Any] = {"task_id": task_id, "attempt": attempt}
                    for i, (at, line) in enumerate(batch):
                        values.update({f"at_{i}": at, f"line_{i}": line})
                    steps.append((self._insert(len(batch)), values))
            return steps
        columns: dict[str, list[Any]] = {"task_id": [], "attempt": [], "at": [], "line": []}
        for task_id, attempt, lines in batches:
            columns["task_id"] += [task_id] * len(lines)
            columns["attempt"] += [attempt] * len(lines)
            columns["at"] += [at for at, _ in lines]
            columns["line"] += [line for _, line in lines]
        return [(self._insert_all(), columns)] if columns["line"] else []

    def stored(self, batches: list[Batch], found: list[Sequence[Sequence[Any]]]) -> list[list[LogLine]]:
        """Each batch's lines as stored, from the rows of its `steps`: numbered in the order given."""
        rows = iter(sorted(row for rows in found for row in rows))
        return [[{"n": int(n), "at": self._read_at(at).astimezone(UTC).isoformat(), "attempt": attempt, "line": line}
                 for n, at, line in itertools.islice(rows, len(lines))] for _, attempt, lines in batches]

    @functools.lru_cache(maxsize=BATCH)  # noqa: B019 -- one store per process
    def _insert(self, count: int) -> DriverStatement:
        c = task_logs.c
        rows = [{"task_id": sa.bindparam("task_id", type_=c.task_id.type),
                 "attempt": sa.bindparam("attempt", type_=c.attempt.type),
                 "at": sa.bindparam(f"at_{i}", type_=c.at.type), "line": sa.bindparam(f"line_{i}", type_=c.line.type)}
                for i in range(count)]
        return self.db.compiled(task_logs.insert().values(rows).returning(c.id, c.at, c.line))

    @functools.cache  # noqa: B019 -- one store per process
    def _insert_all(self) -> DriverStatement:
        """Lines of any number of tasks (PostgreSQL), inserted in the order given, so numbered in it."""
        c = task_logs.c
        names = ("task_id", "attempt", "at", "line")
        rows = arrays({name: c[name].type for name in names}, ordinality="given")
        select = sa.select(*(rows.c[name] for name in names)).order_by(rows.c.given)
        return self.db.compiled(task_logs.insert().from_select(names, select).returning(c.id, c.at, c.line))

    async def read(self, task_id: str, *, after: int, limit: int) -> list[LogLine]:
        query = (task_logs.select().where(task_logs.c.task_id == task_id, task_logs.c.id > after)
                 .order_by(task_logs.c.id).limit(limit))
        return [_line(r) for r in await self.db.fetch_all(query)]

    async def count(self, task_id: str) -> int:
        query = sa.select(sa.func.count()).select_from(task_logs).where(task_logs.c.task_id == task_id)
        return int(await self.db.fetch_val(query))

    async def delete_for(self, task_ids: list[str]) -> None:
        await self.db.execute(task_logs.delete().where(task_logs.c.task_id.in_(task_ids)))
