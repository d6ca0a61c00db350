"""Uploads after they are stored: deleted on request, removed with the last task that named them, and
expired when nothing names them. The file work runs in a thread: a folder of many uploads, or a large
one to delete, never holds up the event loop."""

import asyncio
import logging
import time
from collections.abc import Collection

from app.core.errors import Conflict
from app.store.upload_refs import UploadRefs
from app.store.uploads import PARTIAL_GRACE, UploadStore

log = logging.getLogger(__name__)

# A submit names an upload in its stored task within moments of checking it (`UploadStore.use`): an
# upload used more recently than this may be named by a task not stored yet, and is kept.
USE_GRACE = 10.0


async def delete_upload(refs: UploadRefs, uploads: UploadStore, upload_id: str) -> None:
    """Delete on request: 404 for an unknown id, 409 while an unfinished task or a schedule names it, or
    a submit named it in the last USE_GRACE seconds (its task may not be stored yet). A finished task
    that named it keeps its record; re-running it asks for a new upload."""
    await asyncio.to_thread(uploads.get, upload_id)
    seen = await asyncio.to_thread(uploads.last_used, upload_id)  # before the look: a later use keeps it
    if unfinished := await refs.unfinished_tasks(upload_id):
        shown = ", ".join(f"{task_id} ({status})" for task_id, status in unfinished)
        raise Conflict(f"upload {upload_id} is used by unfinished tasks: {shown}; cancel them or wait until they end")
    if named := await refs.schedules(upload_id):
        raise Conflict(f"upload {upload_id} is used by schedules: {', '.join(named)}; edit or delete them first")
    if seen is not None and (ago := time.time() - seen) < USE_GRACE:
        raise Conflict(f"upload {upload_id} was named by a submit {max(ago, 0):.0f} s ago; its task may not be "
                       f"stored yet: try again in {USE_GRACE:g} seconds")
    if not await asyncio.to_thread(uploads.remove_unless_used, upload_id, seen):
        await asyncio.to_thread(uploads.get, upload_id)  # 404 if another delete took it meanwhile
        raise Conflict(f"upload {upload_id} was named by a submit just now; try again in {USE_GRACE:g} seconds")


async def remove_unused(refs: UploadRefs, uploads: UploadStore, upload_ids: Collection[str],
                        now: float | None = None) -> list[str]:
    """Remove those of the uploads that no task or schedule names (and no submit used in the last
    USE_GRACE seconds); returns the ids removed. One that cannot be removed (a file system error) is
    left, logged, for expiry to try again."""
    now = time.time() if now is None else now
    seen = await asyncio.to_thread(lambda: {upload_id: uploads.last_used(upload_id) for upload_id in upload_ids})
    idle = [upload_id for upload_id, used in seen.items() if used is None or now - used > USE_GRACE]
    named = await refs.in_use(idle)
    return await asyncio.to_thread(_remove_all, uploads, [i for i in idle if i not in named], seen)


def _remove_all(uploads: UploadStore, upload_ids: list[str], seen: dict[str, float | None]) -> list[str]:
    removed = []
    for upload_id in upload_ids:
        try:
            if uploads.remove_unless_used(upload_id, seen[upload_id]):
                removed.append(upload_id)
        except OSError as exc:
            log.warning("could not remove upload %s (%s); expiry tries again later", upload_id, exc)
    return removed


async def expire_uploads(refs: UploadRefs, uploads: UploadStore, expiry: float, now: float | None = None) -> int:
    """One pass: uploads abandoned mid-write, and (unless `expiry` is 0) uploads nothing names that were
    neither made nor used in the last `expiry` seconds; returns how many went."""
    now = time.time() if now is None else now
    abandoned = await asyncio.to_thread(uploads.remove_abandoned, now - PARTIAL_GRACE)
    if expiry <= 0:
        return abandoned
    return abandoned + len(await remove_unused(refs, uploads, await asyncio.to_thread(uploads.idle, now - expiry), now))
