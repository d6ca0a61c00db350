"""Retention: finished tasks older than RETENTION_DAYS are removed, with their logs and artifacts,
by a pass every RETENTION_INTERVAL seconds in each worker (removal is idempotent: two workers at it
together remove each task once). The pass also sweeps sent webhook deliveries left behind by removed
tasks (store/webhooks.py). Uploads nothing names expire after UPLOAD_EXPIRY seconds (0: never), checked as
often; uploads left half-written by a dead process go after an hour, whatever UPLOAD_EXPIRY says."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

from app.core.clock import utcnow
from app.core.errors import OUTAGES, stop_if_cancelled
from app.lifecycle.changes import Changes
from app.lifecycle.removal import remove_finished
from app.lifecycle.uploads import expire_uploads
from app.store.upload_refs import UploadRefs
from app.store.uploads import UploadStore
from app.tasks.registry import TaskTypes

log = logging.getLogger(__name__)

BATCH = 500


async def remove_expired(changes: Changes, data_dir: Path, uploads: UploadStore, types: TaskTypes, keep_days: float,
                         now: datetime | None = None) -> int:
    """One pass: every final task that ended more than `keep_days` before `now` (default: now), with the
    uploads only they named; returns how many went."""
    before = (now or utcnow()) - timedelta(days=keep_days)
    removed = 0
    while ids := await changes.store.finished_before(before, BATCH):
        gone = await remove_finished(changes, data_dir, uploads, types, ids)
        removed += len(gone)
        if not gone:  # all of them were retried meanwhile: the next pass sees them again if they end
            break
    await changes.stores.webhooks.sweep()
    return removed


async def _forever(what: str, one_pass: Callable[[], Awaitable[str | None]], interval: float) -> None:
    """`one_pass` every `interval` seconds, whatever it raises (a dead loop would keep what it should
    remove: say why and go on); it returns what to log, if anything."""
    while True:
        try:
            if said := await one_pass():
                log.info("retention: %s", said)
        except OUTAGES as exc:
            stop_if_cancelled()
            log.warning("%s failed (%s); trying again later", what, exc)
        except Exception:
            stop_if_cancelled()
            log.exception("%s failed; trying again later", what)
        await asyncio.sleep(interval)


async def retain_forever(changes: Changes, data_dir: Path, uploads: UploadStore, types: TaskTypes, keep_days: float,
                         interval: float) -> None:
    async def one_pass() -> str | None:
        removed = await remove_expired(changes, data_dir, uploads, types, keep_days)
        return f"removed {removed} tasks finished more than {keep_days:g} days ago" if removed else None

    await _forever("retention pass", one_pass, interval)


async def expire_uploads_forever(refs: UploadRefs, uploads: UploadStore, expiry: float, interval: float) -> None:
    async def one_pass() -> str | None:
        removed = await expire_uploads(refs, uploads, expiry)
        return f"removed {removed} uploads unused or abandoned mid-write" if removed else None

    await _forever("upload expiry pass", one_pass, interval)
