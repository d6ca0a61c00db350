"""Which tasks and schedules name an upload: its id anywhere in their parameters. An upload id is 32
random hex digits, so a parameter holding it names that upload whatever the task type."""

import json
import re
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from app.core.status import FINAL
from app.store.db import Db
from app.store.tables import schedules, tasks

UPLOAD_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")
BATCH = 50  # ids per query: one scan of the parameters answers for all of them
ROWS = 200


def named_in(parameters: Any) -> set[str]:
    """The upload ids some parameters may hold."""
    return set(UPLOAD_ID.findall(json.dumps(parameters)))


def _names(table: sa.Table, upload_id: str) -> sa.ColumnElement[bool]:
    return sa.cast(table.c.parameters, sa.Text).like(f"%{upload_id}%")


class UploadRefs:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def unfinished_tasks(self, upload_id: str, limit: int = 5) -> list[tuple[str, str]]:
        """(id, status) of tasks not final yet that name the upload."""
        query = (sa.select(tasks.c.id, tasks.c.status)
                 .where(tasks.c.status.not_in(sorted(FINAL)), _names(tasks, upload_id)).limit(limit))
        return [(r["id"], r["status"]) for r in await self.db.fetch_all(query)]

    async def schedules(self, upload_id: str, limit: int = 5) -> list[str]:
        query = sa.select(schedules.c.id).where(_names(schedules, upload_id)).limit(limit)
        return [r["id"] for r in await self.db.fetch_all(query)]

    async def named_by(self, task_ids: Collection[str]) -> dict[str, set[str]]:
        """The upload ids each of these tasks names."""
        query = sa.select(tasks.c.id, tasks.c.parameters).where(tasks.c.id.in_(list(task_ids)))
        return {r["id"]: named_in(r["parameters"]) for r in await self.db.fetch_all(query)}

    async def in_use(self, upload_ids: Collection[str]) -> set[str]:
        """Those of the uploads that a task (whatever its status) or a schedule names."""
        found: set[str] = set()
        ids = sorted(upload_ids)
        for start in range(0, len(ids), BATCH):
            for table in (tasks, schedules):
                found |= await self._named(table, set(ids[start:start + BATCH]) - found)
        return found

    async def _named(self, table: sa.Table, wanted: set[str]) -> set[str]:
        found: set[str] = set()
        while wanted:  # each round finds at least one more, or is the last: the rows named are not all read
            query = sa.select(table.c.parameters).where(sa.or_(*(_names(table, i) for i in sorted(wanted)))).limit(ROWS)
            rows = await self.db.fetch_all(query)
            hits = set().union(*(named_in(r["parameters"]) for r in rows)) & wanted
            found |= hits
            wanted -= hits
            if len(rows) < ROWS or not hits:
                break
        return found
