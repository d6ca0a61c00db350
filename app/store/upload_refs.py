"""Which tasks and schedules name an upload. SQL answers both ways round: whether any row's parameters
hold an upload id (an id is 32 random hex digits: found in the parameters' text, whatever the task type),
and which ids some tasks name (only their upload parameters are read, never whole parameters)."""

from collections.abc import Collection, Mapping

import sqlalchemy as sa

from app.core.status import FINAL
from app.store.db import Db
from app.store.tables import schedules, tasks

BATCH = 50  # upload ids asked about in one query


def _names(table: sa.Table, upload_id: str) -> sa.ColumnElement[bool]:
    return sa.cast(table.c.parameters, sa.Text).like(f"%{upload_id}%")


def _ids(value: object) -> set[str]:
    """The ids an upload parameter holds: one id, a list of them, or none (an optional upload left out)."""
    if isinstance(value, str):
        return {value}
    return {item for item in value if isinstance(item, str)} if isinstance(value, list) else set()


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

    async def named_by(self, task_ids: Collection[str], fields: Mapping[str, Collection[str]]) -> dict[str, set[str]]:
        """The upload ids each of these tasks names; `fields`: each task type's upload parameters (a
        task of another type names none). The database hands back those parameters' values only."""
        named: dict[str, set[str]] = {}
        for task_type, names in fields.items():
            values = [tasks.c.parameters[name].label(f"p{i}") for i, name in enumerate(names)]
            query = sa.select(tasks.c.id, *values).where(tasks.c.id.in_(list(task_ids)), tasks.c.task_type == task_type)
            for row in await self.db.fetch_all(query):
                named[row["id"]] = set().union(*(_ids(row[f"p{i}"]) for i in range(len(names))))
        return named

    async def in_use(self, upload_ids: Collection[str]) -> set[str]:
        """Those of the uploads that a task (whatever its status) or a schedule names: the database
        answers with the ids found, reading no parameters out."""
        found: set[str] = set()
        ids = sorted(upload_ids)
        for start in range(0, len(ids), BATCH):
            for table in (tasks, schedules):
                if wanted := [i for i in ids[start:start + BATCH] if i not in found]:
                    query = sa.union_all(*(sa.select(sa.literal(i).label("id")).where(
                        sa.exists().where(_names(table, i))) for i in wanted))
                    found |= {r["id"] for r in await self.db.fetch_all(query)}
        return found
