"""Removing finished tasks for good (a bulk delete, retention): rows, log lines and artifacts, and
one "deleted" event so that every dashboard drops them."""

from pathlib import Path

from app import artifacts, keys
from app.changes import Changes, publish_all
from app.wire import encode_deleted, encode_skip


async def remove_finished(changes: Changes, data_dir: Path, task_ids: list[str]) -> list[str]:
    """Remove those of these tasks that are final (a task running again is left alone); returns
    the ids removed. The event's seq is taken first and published either way (app/changes.py)."""
    if not task_ids:
        return []
    seq = await changes.redis.incr(keys.SEQ)
    try:
        removed = await changes.store.delete_finished(task_ids)
    except BaseException:
        await changes.publish_skip(seq)
        raise
    for task_id in removed:
        artifacts.remove(data_dir, task_id)
    await publish_all(changes.redis, [encode_deleted(seq, removed) if removed else encode_skip(seq)])
    return removed
