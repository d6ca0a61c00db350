"""Every store of one database, opened together on one handle, the schema made or updated first."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from app.store.db import Db
from app.store.logs import LogStore
from app.store.queries import TaskQueries
from app.store.schedules import ScheduleStore
from app.store.schema import create_schema
from app.store.tasks import TaskStore
from app.store.upload_refs import UploadRefs
from app.store.webhooks import WebhookStore


@dataclass(frozen=True)
class Stores:
    db: Db
    tasks: TaskStore
    queries: TaskQueries
    logs: LogStore
    schedules: ScheduleStore
    webhooks: WebhookStore
    upload_refs: UploadRefs


@asynccontextmanager
async def open_stores(url: str) -> AsyncIterator[Stores]:
    async with Db.open(url) as db:
        await create_schema(db)
        yield Stores(db, TaskStore(db), TaskQueries(db), LogStore(db), ScheduleStore(db), WebhookStore(db),
                     UploadRefs(db))


async def prepare_database(url: str) -> None:
    """Create or update the schema (`make run` does it before starting web and worker)."""
    async with open_stores(url):
        pass
