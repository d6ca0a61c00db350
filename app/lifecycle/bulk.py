"""Bulk actions: cancel, retry or delete every task of a selection (ids) or of a filter (the list's),
counted first with `dry_run`, applied in batches, with the outcome reported.

A filter's action applies to the tasks that exist when it starts (created by then), walked newest
first by keyset, each task once: tasks it moves out of the filter (a retried FAILED task) are not met
again, and tasks submitted meanwhile are not touched.
"""

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from app.core.clock import utcnow
from app.core.errors import InvalidParameters
from app.core.status import CANCELLABLE, FINAL, RETRYABLE, Status
from app.lifecycle.cancel import Canceller
from app.lifecycle.removal import remove_finished
from app.lifecycle.retry import Retrier
from app.store import filters
from app.store.filters import TaskFilter
from app.store.uploads import UploadStore
from app.tasks.registry import TaskTypes

ELIGIBLE: dict[str, frozenset[Status]] = {"cancel": CANCELLABLE, "retry": RETRYABLE, "delete": FINAL}
MAX_IDS = 1000
BATCH = 200  # tasks read and acted on at a time


def parse(body: Mapping[str, Any]) -> tuple[str, TaskFilter | list[str], bool]:
    """(action, a filter or a list of ids, dry_run) from a request body; 422 naming the field."""
    action = body.get("action")
    if not isinstance(action, str) or action not in ELIGIBLE:
        raise InvalidParameters("action", f"must be one of {', '.join(ELIGIBLE)}, got {str(action)[:40]!r}")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidParameters("dry_run", "must be true or false")
    if ("ids" in body) == ("filter" in body):
        raise InvalidParameters("ids", "give either ids (a selection) or filter (the list's filter), not both")
    if "ids" in body:
        ids = body["ids"]
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_IDS:
            raise InvalidParameters("ids", f"must be a list of 1 to {MAX_IDS} task ids")
        for index, task_id in enumerate(ids):
            if not isinstance(task_id, str) or not 0 < len(task_id) <= 36:
                raise InvalidParameters(f"ids[{index}]", "must be a task id")
        return action, list(dict.fromkeys(ids)), dry_run
    where = body["filter"]
    if not isinstance(where, dict):
        raise InvalidParameters("filter", "must be an object with the list's filter fields")
    if unknown := sorted(set(where) - filters.NAMES):
        raise InvalidParameters(f"filter.{unknown[0]}", f"unknown field; known: {', '.join(sorted(filters.NAMES))}")
    return action, TaskFilter.parse(where, prefix="filter."), dry_run


class BulkAction:
    def __init__(self, canceller: Canceller, retrier: Retrier, data_dir: Path, uploads: UploadStore,
                 types: TaskTypes) -> None:
        self.canceller = canceller
        self.retrier = retrier
        self.changes = canceller.changes
        self.store = self.changes.stores.tasks
        self.queries = self.changes.stores.queries
        self.data_dir, self.uploads, self.types = data_dir, uploads, types

    async def run(self, action: str, selection: TaskFilter | list[str], dry_run: bool) -> dict[str, Any]:
        eligible = ELIGIBLE[action]
        if isinstance(selection, list):
            found = await self.store.statuses(selection)
            targets = [task_id for task_id in selection if found.get(task_id) in eligible]
            matched, count = len(found), len(targets)
        else:
            matched, count = await self.queries.count(selection), await self.queries.count(selection, eligible)
        outcome: dict[str, Any] = {"action": action, "dry_run": dry_run, "matched": matched, "eligible": count,
                                   "applied": None, "skipped": None}
        if dry_run:
            return outcome
        applied = attempted = 0
        async for batch in self._batches(selection, eligible, targets if isinstance(selection, list) else []):
            attempted += len(batch)
            applied += await self._apply(action, batch)
        outcome.update(applied=applied, skipped=attempted - applied)
        return outcome

    async def _batches(self, selection: TaskFilter | list[str], eligible: frozenset[Status],
                       targets: list[str]) -> AsyncIterator[list[str]]:
        if isinstance(selection, list):
            for start in range(0, len(targets), BATCH):
                yield targets[start:start + BATCH]
            return
        started, after = utcnow(), None
        while batch := await self.queries.select_batch(selection, eligible, created_by=started, after=after,
                                                     limit=BATCH):
            after = (batch[-1][1], batch[-1][0])
            yield [task_id for task_id, _ in batch]

    async def _apply(self, action: str, task_ids: list[str]) -> int:
        if action == "delete":
            return len(await remove_finished(self.changes, self.data_dir, self.uploads, self.types, task_ids))
        if action == "cancel":
            return await self.canceller.cancel_many(task_ids)
        return await self.retrier.retry_many(task_ids)
