"""Task log lines: appended by the worker running the task (capped per task there), read in pages by
line number, removed with their task."""

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from databases.interfaces import Record

from app.core.wire import LogLine
from app.store.db import Db, DriverStatement
from app.store.tables import task_logs

BATCH = 50  # lines per INSERT: each count of lines up to this is a statement compiled once


def _line(record: Record) -> LogLine:
    return {"n": int(record["id"]), "at": record["at"].astimezone(UTC).isoformat(),
            "attempt": int(record["attempt"]), "line": record["line"]}


class LogStore:
    def __init__(self, db: Db) -> None:
        self.db = db
        [self._read_at] = db.decoders([task_logs.c.at])

    async def append(self, task_id: str, attempt: int, lines: list[tuple[datetime, str]]) -> list[LogLine]:
        """The lines, numbered in order, in one statement per BATCH lines (run on the driver: a task's
        lines are written by its worker, on the hot path)."""
        steps = self.steps(task_id, attempt, lines)
        return self.stored(attempt, [await self.db.rows(statement, values) for statement, values in steps])

    def steps(self, task_id: str, attempt: int,
              lines: list[tuple[datetime, str]]) -> list[tuple[DriverStatement, dict[str, Any]]]:
        """`append`'s statements and their values, to run with others (`Db.rows_then`); `stored` reads them."""
        steps = []
        for start in range(0, len(lines), BATCH):
            batch = lines[start:start + BATCH]
            values: dict[str, Any] = {"task_id": task_id, "attempt": attempt}
            for i, (at, line) in enumerate(batch):
                values.update({f"at_{i}": at, f"line_{i}": line})
            steps.append((self._insert(len(batch)), values))
        return steps

    def stored(self, attempt: int, found: list[Sequence[Sequence[Any]]]) -> list[LogLine]:
        return [{"n": int(n), "at": self._read_at(at).astimezone(UTC).isoformat(), "attempt": attempt, "line": line}
                for rows in found for n, at, line in sorted(rows)]

    @functools.lru_cache(maxsize=BATCH)  # noqa: B019 -- one store per process
    def _insert(self, count: int) -> DriverStatement:
        c = task_logs.c
        rows = [{"task_id": sa.bindparam("task_id", type_=c.task_id.type),
                 "attempt": sa.bindparam("attempt", type_=c.attempt.type),
                 "at": sa.bindparam(f"at_{i}", type_=c.at.type), "line": sa.bindparam(f"line_{i}", type_=c.line.type)}
                for i in range(count)]
        return self.db.compiled(task_logs.insert().values(rows).returning(c.id, c.at, c.line))

    async def read(self, task_id: str, *, after: int, limit: int) -> list[LogLine]:
        query = (task_logs.select().where(task_logs.c.task_id == task_id, task_logs.c.id > after)
                 .order_by(task_logs.c.id).limit(limit))
        return [_line(r) for r in await self.db.fetch_all(query)]

    async def count(self, task_id: str) -> int:
        query = sa.select(sa.func.count()).select_from(task_logs).where(task_logs.c.task_id == task_id)
        return int(await self.db.fetch_val(query))

    async def delete_for(self, task_ids: list[str]) -> None:
        await self.db.execute(task_logs.delete().where(task_logs.c.task_id.in_(task_ids)))
