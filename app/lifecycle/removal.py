"""Removing finished tasks for good (a bulk delete, retention): rows, log lines, sent webhook deliveries,
artifacts and the uploads no other task names, and one "deleted" event so that every dashboard drops them."""

import asyncio
import logging
from pathlib import Path

from app.core import keys
from app.core.errors import OUTAGES
from app.core.wire import encode_deleted, encode_skip
from app.lifecycle.changes import Changes
from app.lifecycle.publish import publish_all
from app.lifecycle.uploads import remove_unused
from app.store import artifacts
from app.store.uploads import UploadStore
from app.tasks.registry import TaskTypes

log = logging.getLogger(__name__)


async def remove_finished(changes: Changes, data_dir: Path, uploads: UploadStore, types: TaskTypes,
                          task_ids: list[str]) -> list[str]:
    """Remove those of these tasks that are final (a task running again is left alone), and the
    uploads (of `uploads`) that they alone named, as `types` say which parameters name uploads; returns
    the ids removed. The event's seq is taken first and published either way (lifecycle/changes.py).
    Pending webhook deliveries stay: each holds its own copy of the task and is still sent."""
    if not task_ids:
        return []
    stores = changes.stores
    seq = await changes.redis.incr(keys.SEQ)
    named: dict[str, set[str]] = {}

    async def remove() -> list[str]:
        named.update(await stores.upload_refs.named_by(task_ids, types.upload_fields()))
        removed = await stores.tasks.delete_finished(task_ids)
        if removed:
            await stores.logs.delete_for(removed)
            await stores.webhooks.delete_settled(removed)
        return removed

    try:
        removed = await stores.db.atomically(remove)
    except BaseException:
        await changes.publish_skip(seq)
        raise
    await asyncio.to_thread(lambda: [artifacts.remove(data_dir, task_id) for task_id in removed])
    await publish_all(changes.redis, [encode_deleted(seq, removed) if removed else encode_skip(seq)])
    named_uploads = set().union(*(named.get(task_id, set()) for task_id in removed))
    try:
        await remove_unused(stores.upload_refs, uploads, named_uploads)
    except OUTAGES as exc:  # the tasks are gone: their uploads expire later (UPLOAD_EXPIRY)
        log.warning("could not remove the uploads of removed tasks (%s); they expire later", exc)
    return removed
