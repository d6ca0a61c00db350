"""The webhooks' outbox, beside the task store and on its database: deliveries written in the
transaction of the change that ended their task, claimed by one worker at a time (a guarded UPDATE
that leases the row), each attempt recorded by the lease's holder only.

A delivery holds its own copy of the task, so removing the task leaves a pending one to be sent (a
failure deleted at once is still reported); it goes once it is delivered or failed."""

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from app.core.wire import TaskDict, WebhookAttempt, WebhookDelivery
from app.store.db import Db
from app.store.tables import tasks
from app.store.tables import webhook_deliveries as deliveries

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DATETIME_FIELDS = ("next_attempt_at", "created_at", "delivered_at")


def _delivery(record: Mapping[str, Any]) -> WebhookDelivery:
    shown: dict[str, Any] = {name: record[name] for name in WebhookDelivery.__annotations__}
    for name in DATETIME_FIELDS:
        if shown[name] is not None:
            shown[name] = shown[name].astimezone(UTC).isoformat()
    return shown  # type: ignore[return-value]


class WebhookStore:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def add(self, tasks: list[tuple[TaskDict, list[tuple[str, str, str]]]], now: datetime) -> int:
        """A pending delivery for each (hook, url, event) of each task, due now; returns how many."""
        rows = [{"id": uuid.uuid4().hex, "task_id": task["id"], "seq": task["seq"], "hook": hook, "url": url,
                 "event": event, "task": task, "status": PENDING, "attempts": 0,
                 "next_attempt_at": now, "history": [], "created_at": now}
                for task, targets in tasks for hook, url, event in targets]
        if rows:
            await self.db.execute(deliveries.insert().values(rows))
        return len(rows)

    async def for_task(self, task_id: str) -> list[WebhookDelivery]:
        query = (deliveries.select().where(deliveries.c.task_id == task_id)
                 .order_by(deliveries.c.created_at, deliveries.c.hook))
        return [_delivery(r) for r in await self.db.fetch_all(query)]

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Ids of pending deliveries due by `now`, the longest waiting first (a leased one is due only
        when its lease ends: the claim moved `next_attempt_at` there)."""
        query = (sa.select(deliveries.c.id).where(deliveries.c.status == PENDING, deliveries.c.next_attempt_at <= now)
                 .order_by(deliveries.c.next_attempt_at).limit(limit))
        return [r["id"] for r in await self.db.fetch_all(query)]

    async def give_up(self, now: datetime, max_attempts: int) -> int:
        """Due deliveries with no attempt left are `failed`, not sent again: their last attempt's outcome
        was never recorded (its worker stopped mid-request), or WEBHOOK_MAX_ATTEMPTS was lowered since;
        returns how many."""
        stmt = (deliveries.update()
                .where(deliveries.c.status == PENDING, deliveries.c.next_attempt_at <= now,
                       deliveries.c.attempts >= max_attempts)
                .values(status=FAILED, next_attempt_at=None, leased_by=None,
                        last_error=f"given up: WEBHOOK_MAX_ATTEMPTS ({max_attempts}) reached, the last attempt's "
                                   "outcome unknown")
                .returning(deliveries.c.id))
        return len(await self.db.fetch_all(stmt))

    async def claim(self, delivery_id: str, worker: str, now: datetime, until: datetime,
                    max_attempts: int) -> dict[str, Any] | None:
        """Take the next attempt of a due delivery, leased to `worker` until `until`; None if another
        worker took it first (or it is no longer due, or has had `max_attempts` already)."""
        stmt = (deliveries.update()
                .where(deliveries.c.id == delivery_id, deliveries.c.status == PENDING,
                       deliveries.c.next_attempt_at <= now, deliveries.c.attempts < max_attempts)
                .values(attempts=deliveries.c.attempts + 1, leased_by=worker, next_attempt_at=until)
                .returning(*deliveries.c))
        record = await self.db.fetch_one(stmt)
        return {column.name: record[column.name] for column in deliveries.columns} if record else None

    async def record(self, claimed: Mapping[str, Any], attempt: WebhookAttempt, status: str,
                     next_attempt_at: datetime | None) -> bool:
        """The outcome of a claimed attempt, by the lease's holder; False if its lease was lost (it
        ran out and another worker took the delivery on). A delivery whose task was removed meanwhile
        is recorded too, and then removed once it is delivered or failed."""
        now = datetime.fromisoformat(attempt["at"])
        stmt = (deliveries.update()
                .where(deliveries.c.id == claimed["id"], deliveries.c.status == PENDING,
                       deliveries.c.leased_by == claimed["leased_by"], deliveries.c.attempts == claimed["attempts"])
                .values(status=status, next_attempt_at=next_attempt_at, leased_by=None,
                        last_status_code=attempt["status_code"], last_error=attempt["error"],
                        history=[*claimed["history"], attempt], delivered_at=now if status == DELIVERED else None)
                .returning(deliveries.c.id))
        if await self.db.fetch_one(stmt) is None:
            return False
        if status != PENDING:
            await self.db.execute(deliveries.delete().where(deliveries.c.id == claimed["id"], _task_gone()))
        return True

    async def delete_settled(self, task_ids: list[str]) -> None:
        """Remove these tasks' deliveries that were sent or given up (a pending one is still sent: it holds
        its own copy of the task)."""
        await self.db.execute(deliveries.delete().where(deliveries.c.task_id.in_(task_ids),
                                                        deliveries.c.status != PENDING))

    async def sweep(self) -> int:
        """Remove delivered and failed deliveries whose task is gone (a removal racing their last
        attempt's record can leave some); returns how many."""
        stmt = deliveries.delete().where(deliveries.c.status.in_([DELIVERED, FAILED]), _task_gone())
        return len(await self.db.fetch_all(stmt.returning(deliveries.c.id)))


def _task_gone() -> sa.ColumnElement[bool]:
    return ~sa.exists().where(tasks.c.id == deliveries.c.task_id)
