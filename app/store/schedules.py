"""The schedules table: a schedule's rows, the ones due first, and a tick's guarded move (whose task's
INSERT shares its transaction: `Db.atomically`)."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from app.core.clock import utcnow
from app.core.wire import ScheduleDict
from app.store.db import Db
from app.store.tables import schedules

DATETIME_FIELDS = ("next_run_at", "last_run_at", "created_at", "updated_at")


def _schedule(record: Mapping[str, Any]) -> ScheduleDict:
    schedule: dict[str, Any] = {column.name: record[column.name] for column in schedules.columns}
    for name in DATETIME_FIELDS:
        if schedule[name] is not None:
            schedule[name] = schedule[name].astimezone(UTC).isoformat()
    schedule["paused"] = bool(schedule["paused"])
    schedule["runs"] = int(schedule["runs"])
    return schedule  # type: ignore[return-value]


class ScheduleStore:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def all(self) -> list[ScheduleDict]:
        query = schedules.select().order_by(schedules.c.created_at, schedules.c.id)
        return [_schedule(r) for r in await self.db.fetch_all(query)]

    async def get(self, schedule_id: str) -> ScheduleDict | None:
        record = await self.db.fetch_one(schedules.select().where(schedules.c.id == schedule_id))
        return _schedule(record) if record else None

    async def insert(self, row: Mapping[str, Any]) -> ScheduleDict:
        record = await self.db.fetch_one(schedules.insert().values(**row).returning(*schedules.c))
        assert record is not None
        return _schedule(record)

    async def update(self, schedule_id: str, values: Mapping[str, Any]) -> ScheduleDict | None:
        stmt = schedules.update().where(schedules.c.id == schedule_id)
        record = await self.db.fetch_one(stmt.values(**values, updated_at=utcnow()).returning(*schedules.c))
        return _schedule(record) if record else None

    async def delete(self, schedule_id: str) -> bool:
        stmt = schedules.delete().where(schedules.c.id == schedule_id).returning(schedules.c.id)
        return await self.db.fetch_one(stmt) is not None

    async def upcoming(self, limit: int) -> list[ScheduleDict]:
        """The running schedules whose ticks come first (the due ones among them)."""
        query = (schedules.select().where(schedules.c.paused == sa.false(), schedules.c.next_run_at.is_not(None))
                 .order_by(schedules.c.next_run_at).limit(limit))
        return [_schedule(r) for r in await self.db.fetch_all(query)]

    async def advance(self, schedule_id: str, tick: datetime, following: datetime, task_id: str) -> bool:
        """Move a running schedule from `tick` to `following`, recording the tick's task: True for the
        one process whose UPDATE found the schedule still at `tick`."""
        stmt = (schedules.update()
                .where(schedules.c.id == schedule_id, schedules.c.next_run_at == tick,
                       schedules.c.paused == sa.false())
                .values(next_run_at=following, last_run_at=tick, last_task_id=task_id,
                        runs=schedules.c.runs + 1, updated_at=utcnow())
                .returning(schedules.c.id))
        return await self.db.fetch_one(stmt) is not None

    async def record_run(self, schedule_id: str, at: datetime, task_id: str) -> bool:
        """A run outside the ticks (run now): counted, the next tick left where it is."""
        stmt = (schedules.update().where(schedules.c.id == schedule_id)
                .values(last_run_at=at, last_task_id=task_id, runs=schedules.c.runs + 1, updated_at=utcnow())
                .returning(schedules.c.id))
        return await self.db.fetch_one(stmt) is not None
