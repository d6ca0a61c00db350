"""Task log lines: appended by the worker running the task (capped per task there), read in pages by
line number, removed with their task."""

from datetime import UTC, datetime

import sqlalchemy as sa
from databases.interfaces import Record

from app.core.wire import LogLine
from app.store.db import Db
from app.store.tables import task_logs


def _line(record: Record) -> LogLine:
    return {"n": int(record["id"]), "at": record["at"].astimezone(UTC).isoformat(),
            "attempt": int(record["attempt"]), "line": record["line"]}


class LogStore:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def append(self, task_id: str, attempt: int, lines: list[tuple[datetime, str]]) -> list[LogLine]:
        rows = [{"task_id": task_id, "attempt": attempt, "at": at, "line": line} for at, line in lines]
        # one row (the usual case) as a statement whose compiled form is cached (store/backends.py)
        insert = task_logs.insert().values(**rows[0]) if len(rows) == 1 else task_logs.insert().values(rows)
        return [_line(r) for r in await self.db.fetch_all(insert.returning(*task_logs.c))]

    async def read(self, task_id: str, *, after: int, limit: int) -> list[LogLine]:
        query = (task_logs.select().where(task_logs.c.task_id == task_id, task_logs.c.id > after)
                 .order_by(task_logs.c.id).limit(limit))
        return [_line(r) for r in await self.db.fetch_all(query)]

    async def count(self, task_id: str) -> int:
        query = sa.select(sa.func.count()).select_from(task_logs).where(task_logs.c.task_id == task_id)
        return int(await self.db.fetch_val(query))

    async def delete_for(self, task_ids: list[str]) -> None:
        await self.db.execute(task_logs.delete().where(task_logs.c.task_id.in_(task_ids)))
