"""Which tasks match a filter: the list's pages (keyset paging, text search), counts by status, and
the batches a bulk action walks. `total`s never scan: the counts come from `task_counts`, and a
filter's matches are counted up to COUNT_CAP."""

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from databases.interfaces import Record

from app.core.clock import utcnow
from app.core.status import Status
from app.core.wire import TaskDict
from app.store import search
from app.store.db import Db
from app.store.filters import TaskFilter
from app.store.tables import UTCDateTime, task_counts, tasks
from app.store.tasks import task_of

COUNT_CAP = 10_000  # a search counts at most this many matches (`total` stops there)


class TaskQueries:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def page(
        self, where: TaskFilter, *, limit: int, offset: int, after: tuple[datetime, str] | None = None,
    ) -> tuple[list[TaskDict], int]:
        """Newest first; `after` (a task's created_at and id) starts the page past that task (keyset
        paging: no rows skipped one by one). `total` does not scan: read from `task_counts` for a
        status/type filter, else counted up to COUNT_CAP matches."""
        tally = await self._tally()
        if where.text and (found := search.words(where.text)):
            searching = self._search_page if self.db.dialect == "sqlite" else self._search_page_postgres
            return await searching(where, found, tally, limit=limit, offset=offset, after=after)
        conditions = self._conditions(where, tally, limit + offset)
        if where.counted:
            total = sum(n for kind, state, n in tally
                        if where.status in (None, state) and where.task_type in (None, kind))
        else:
            total = await self._count_up_to(conditions, COUNT_CAP)
        if after is not None:
            conditions.append(self._before(after))
        return [task_of(r) for r in await self.db.fetch_all(self._newest(conditions, limit, offset))], total

    @staticmethod
    def _before(after: tuple[datetime, str]) -> sa.ColumnElement[bool]:
        cursor = sa.tuple_(sa.literal(after[0], UTCDateTime()), sa.literal(after[1], tasks.c.id.type))
        return sa.tuple_(tasks.c.created_at, tasks.c.id) < cursor

    @staticmethod
    def _newest(conditions: list[sa.ColumnElement[bool]], limit: int, offset: int, *,
                by_index: bool = True) -> sa.Select[Any]:
        # not the column: the list's index cannot give the order, so the few matches are read and sorted
        created = tasks.c.created_at if by_index else sa.func.coalesce(tasks.c.created_at, tasks.c.created_at)
        return tasks.select().where(*conditions).order_by(created.desc(), tasks.c.id.desc()).limit(limit).offset(offset)

    async def _search_page(self, where: TaskFilter, found: list[str], tally: list[tuple[str, str, int]], *,
                           limit: int, offset: int, after: tuple[datetime, str] | None) -> tuple[list[TaskDict], int]:
        """SQLite, a text search (store/search.py): the index read for whole terms, from the newest tasks on
        for a common word, never every match of it."""
        if (expression := await search.expanded(self.db, found)) is None:
            return [], 0  # a word that begins no word of any task
        others = self._conditions(dataclasses.replace(where, text=None), tally, limit + offset)
        span: tuple[int | None, int | None] = (None, None)
        if where.created_from or where.created_to:  # the index read over that time's rowids only
            during = TaskFilter(created_from=where.created_from, created_to=where.created_to)
            bounds = await self.db.fetch_one(search.rowids(self._conditions(during, tally, 0)))
            span = (bounds[0], bounds[1]) if bounds is not None else span
        total = int(await self.db.fetch_val(search.count_up_to(others, expression, COUNT_CAP, span)))
        if after is not None:
            others.append(self._before(after))
        few = await self.db.fetch_val(search.count_up_to([], expression, search.FEW)) < search.FEW
        if few or (records := await self._newest_matches(others, expression, limit, offset)) is None:
            query = self._newest([*others, search.matches_from(expression)], limit, offset, by_index=False)
            records = await self.db.fetch_all(query)
        return [task_of(r) for r in records], total

    async def _search_page_postgres(
        self, where: TaskFilter, found: list[str], tally: list[tuple[str, str, int]], *,
        limit: int, offset: int, after: tuple[datetime, str] | None,
    ) -> tuple[list[TaskDict], int]:
        """PostgreSQL, a text search. Its planner cannot tell a rare prefix from a common one (it walks
        the whole list for a rare one), and reading the GIN index for a common one takes every match:
        the page is looked for among the newest tasks first (the text tested row by row), the index
        read only when they do not hold it (then the matches are few: read and sorted)."""
        others = self._conditions(dataclasses.replace(where, text=None), tally, limit + offset)
        listed = [*others, self._before(after)] if after is not None else others
        scanned = search.matches(self.db.dialect, found, indexed=False)
        bound = await self._created_bound(listed, search.WINDOWS[0])
        records = await self.db.fetch_all(self._newest([*listed, scanned, *bound], limit, offset))
        common = bool(bound) and len(records) == limit
        if bound and not common:  # a rarer word: its few matches from the index, sorted
            query = self._newest([*listed, search.matches(self.db.dialect, found)], limit, offset, by_index=False)
            records = await self.db.fetch_all(query)
        total = 0
        if common and (bound := await self._created_bound(others, 4 * COUNT_CAP)):  # counted among the newest
            total = await self._count_up_to([*others, scanned, *bound], COUNT_CAP)
        if total < COUNT_CAP:
            total = await self._count_up_to([*others, search.matches(self.db.dialect, found)], COUNT_CAP)
        return [task_of(r) for r in records], total

    async def _created_bound(self, conditions: list[sa.ColumnElement[bool]], size: int) -> list[sa.ColumnElement[bool]]:
        """`created_at >=` the creation time of the `size`-th newest task meeting `conditions` (none if fewer)."""
        oldest = await self.db.fetch_val(sa.select(tasks.c.created_at).where(*conditions).order_by(
            tasks.c.created_at.desc(), tasks.c.id.desc()).limit(1).offset(size - 1))
        return [] if oldest is None else [tasks.c.created_at >= oldest]

    async def _newest_matches(self, others: list[sa.ColumnElement[bool]], expression: str,
                              limit: int, offset: int) -> list[Record] | None:
        """SQLite: a page of a text search looked for among the newest tasks meeting the other conditions
        (`search.window`), a few thousand then ten times more; None when neither window holds the whole
        page (a rare word: collecting every match is cheap then)."""
        for size in search.WINDOWS:
            bounds = await self.db.fetch_one(search.window(others, size))
            assert bounds is not None
            floor, found, oldest = bounds[0], bounds[1], bounds[2]
            if found == 0:
                return []
            records = await self.db.fetch_all(
                self._newest([*others, search.matches_from(expression, floor)], limit, offset))
            if found < size or (len(records) == limit and records[-1]["created_at"] > oldest):
                return records
        return None

    def _conditions(self, where: TaskFilter, tally: list[tuple[str, str, int]],
                    wanted: int) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = []
        for name in ("status", "task_type", "priority", "schedule_id", "source_task_id"):
            if (value := getattr(where, name)) is not None:
                conditions.append(tasks.c[name] == value)
        if where.created_from is not None:
            conditions.append(tasks.c.created_at >= where.created_from)
        if where.created_to is not None:
            conditions.append(tasks.c.created_at < where.created_to)
        if where.id_prefix:
            # ids are lower-case hex (the filter checks the prefix is too): a key range on the index
            key: sa.ColumnElement[Any] = tasks.c.id
            # Random ids: the range holds about 1/16^k of all tasks, while walking the list in order
            # meets a match every 16^k tasks. For a short prefix the walk is the cheaper plan, which
            # the planners (SQLite's even with statistics) miss: hide the range from them then.
            if sum(n for _, _, n in tally) > wanted * 16 ** (2 * len(where.id_prefix)):
                key = tasks.c.id.concat("")
            conditions += [key >= where.id_prefix, key < where.id_prefix + "g"]
        if where.text and (found := search.words(where.text)):
            conditions.append(search.matches(self.db.dialect, found))
        if where.scheduled:  # waiting for its start: a PENDING task's next_run_at is its run_at until it runs
            conditions += [tasks.c.status == Status.PENDING.value, tasks.c.next_run_at > utcnow()]
        return conditions

    async def count(self, where: TaskFilter, statuses: Iterable[str] | None = None) -> int:
        """Exactly how many tasks match (and are in one of `statuses`): for a bulk action's count."""
        tally = await self._tally()
        allowed = None if statuses is None else set(statuses)
        if where.counted:
            return sum(n for kind, state, n in tally if where.status in (None, state)
                       and where.task_type in (None, kind) and (allowed is None or state in allowed))
        conditions = self._conditions(where, tally, COUNT_CAP)
        if allowed is not None:
            conditions.append(tasks.c.status.in_(sorted(allowed)))
        return int(await self.db.fetch_val(sa.select(sa.func.count()).select_from(tasks).where(*conditions)))

    async def select_batch(
        self, where: TaskFilter, statuses: Iterable[str], *, created_by: datetime,
        after: tuple[datetime, str] | None, limit: int,
    ) -> list[tuple[str, datetime]]:
        """(id, created_at) of up to `limit` matching tasks in `statuses` created by `created_by`,
        newest first after the keyset `after`: a bulk action walks its tasks with it."""
        conditions = self._conditions(where, await self._tally(), limit)
        conditions += [tasks.c.status.in_(sorted(statuses)), tasks.c.created_at <= created_by]
        if after is not None:
            cursor = sa.tuple_(sa.literal(after[0], UTCDateTime()), sa.literal(after[1], tasks.c.id.type))
            conditions.append(sa.tuple_(tasks.c.created_at, tasks.c.id) < cursor)
        query = (sa.select(tasks.c.id, tasks.c.created_at).where(*conditions)
                 .order_by(tasks.c.created_at.desc(), tasks.c.id.desc()).limit(limit))
        return [(r["id"], r["created_at"]) for r in await self.db.fetch_all(query)]

    async def _count_up_to(self, conditions: list[sa.ColumnElement[bool]], cap: int) -> int:
        matching = sa.select(tasks.c.id).where(*conditions).limit(cap).subquery()
        return int(await self.db.fetch_val(sa.select(sa.func.count()).select_from(matching)))

    async def _tally(self) -> list[tuple[str, str, int]]:
        """(task_type, status, n) for every pair seen: a few dozen rows, whatever the number of tasks."""
        rows = await self.db.fetch_all(sa.select(task_counts.c.task_type, task_counts.c.status, task_counts.c.n))
        return [(row[0], row[1], int(row[2])) for row in rows]

    async def counts(self) -> dict[str, int]:
        found = {status.value: 0 for status in Status}
        for _, status, n in await self._tally():
            if status in found:
                found[status] += n
        return found
