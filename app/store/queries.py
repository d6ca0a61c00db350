"""Which tasks match a filter: the list's pages (keyset paging, text search), counts by status, and
the batches a bulk action walks. `total`s never scan: the counts come from `task_counts`, and a
filter's matches are counted up to COUNT_CAP.

A list page without text search is the dashboard's every refresh: its statement is compiled once per
shape (the filter fields given) with each field's value bound by name, run on the driver and its
rows read straight into the wire's shape, not through a `Record` per row (which cost more than the
statement)."""

import dataclasses
import functools
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from databases.interfaces import Record

from app.core.clock import utcnow
from app.core.status import Status
from app.core.wire import TaskDict
from app.store import search
from app.store.db import Db, DriverStatement
from app.store.filters import TaskFilter
from app.store.tables import UTCDateTime, task_counts, tasks
from app.store.tasks import SHOWN, RowReader, task_of

COUNT_CAP = 10_000  # a search counts at most this many matches (`total` stops there)
ROW_READ = 20  # reading a task's row costs about this many steps along an index (measured on SQLite)
EQUAL = ("status", "task_type", "priority", "schedule_id", "source_task_id")
Compare = Callable[[Any, Any], sa.ColumnElement[bool]]
# Each condition a filter can make: the value bound by that name, compared with that column.
FIELDS: dict[str, tuple[sa.ColumnElement[Any], Compare]] = {
    **{name: (tasks.c[name], operator.eq) for name in EQUAL},
    "created_from": (tasks.c.created_at, operator.ge),
    "created_to": (tasks.c.created_at, operator.lt),
    "id_from": (tasks.c.id, operator.ge),
    "id_to": (tasks.c.id, operator.lt),
    "queued": (tasks.c.status, operator.eq),
    "start_after": (tasks.c.next_run_at, operator.gt),
}
# The same conditions hidden from the planners: tested on each task met, never looked up in an index
# (`_walks` chooses which index an id prefix is read by; the planners, SQLite's even with statistics,
# cannot tell).
FIELDS |= {f"{name}_tested": (column.concat(""), compare) for name, (column, compare) in FIELDS.items()
           if name in ("status", "task_type", "id_from", "id_to")}
Shape = tuple[tuple[str, ...], bool, bool]  # a page's statement: the fields bound, after a cursor, in index order


def _where(values: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
    """The conditions on these values, each bound by its field's name (typed as its column)."""
    return [compare(column, sa.bindparam(name, values[name], type_=column.type))
            for name, (column, compare) in FIELDS.items() if name in values]


def _before(after: tuple[datetime | None, str | None]) -> sa.ColumnElement[bool]:
    cursor = sa.tuple_(sa.bindparam("after_at", after[0], type_=UTCDateTime()),
                       sa.bindparam("after_id", after[1], type_=tasks.c.id.type))
    return sa.tuple_(tasks.c.created_at, tasks.c.id) < cursor


def _newest(conditions: list[sa.ColumnElement[bool]], limit: Any, offset: Any, *, by_index: bool = True,
            columns: Iterable[sa.ColumnElement[Any]] = SHOWN) -> sa.Select[Any]:
    # not the column: the list's index cannot give the order, so the few matches are read and sorted
    created = tasks.c.created_at if by_index else sa.func.coalesce(tasks.c.created_at, tasks.c.created_at)
    return (sa.select(*columns).where(*conditions).order_by(created.desc(), tasks.c.id.desc())
            .limit(limit).offset(offset))


class TaskQueries:
    def __init__(self, db: Db) -> None:
        self.db = db
        self._read = RowReader(db)
        self._tally_statement = db.compiled(sa.select(task_counts.c.task_type, task_counts.c.status, task_counts.c.n))

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
        if where.counted:
            total = self._tallied(where, tally)
        else:
            total = await self._count_up_to(self._conditions(where, tally, COUNT_CAP, reads=False), COUNT_CAP)
        walks = self._walks(where, tally, limit + offset)
        values = self._values(where, walks)
        if after is not None:
            values.update(after_at=after[0], after_id=after[1])
        # a range of ids is read and sorted: the planners must not walk the list for it (PostgreSQL's
        # plan for a prepared statement does not know how narrow the range is)
        shape = (tuple(values), after is not None, walks or not where.id_prefix)
        rows = await self.db.rows(self._page_statement(shape), {**values, "limit": limit, "offset": offset})
        return [self._read(row) for row in rows], total

    @functools.lru_cache(maxsize=128)  # noqa: B019 -- one per process, a few dozen shapes
    def _page_statement(self, shape: Shape) -> DriverStatement:
        names, after, by_index = shape
        conditions = _where(dict.fromkeys(names))
        if after:
            conditions.append(_before((None, None)))
        return self.db.compiled(_newest(conditions, sa.bindparam("limit", type_=sa.Integer),
                                        sa.bindparam("offset", type_=sa.Integer), by_index=by_index))

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
            others.append(_before(after))
        few = await self.db.fetch_val(search.count_up_to([], expression, search.FEW)) < search.FEW
        if few or (records := await self._newest_matches(others, expression, limit, offset)) is None:
            query = _newest([*others, search.matches_from(expression)], limit, offset, by_index=False)
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
        listed = [*others, _before(after)] if after is not None else others
        scanned = search.matches(self.db.dialect, found, indexed=False)
        bound = await self._created_bound(listed, search.WINDOWS[0])
        records = await self.db.fetch_all(_newest([*listed, scanned, *bound], limit, offset))
        common = bool(bound) and len(records) == limit
        if bound and not common:  # a rarer word: its few matches from the index, sorted
            query = _newest([*listed, search.matches(self.db.dialect, found)], limit, offset, by_index=False)
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
                _newest([*others, search.matches_from(expression, floor)], limit, offset))
            if found < size or (len(records) == limit and records[-1]["created_at"] > oldest):
                return records
        return None

    def _conditions(self, where: TaskFilter, tally: list[tuple[str, str, int]], wanted: int, *,
                    reads: bool = True) -> list[sa.ColumnElement[bool]]:
        conditions = _where(self._values(where, self._walks(where, tally, wanted, reads=reads)))
        if where.text and (found := search.words(where.text)):
            conditions.append(search.matches(self.db.dialect, found))
        return conditions

    def _values(self, where: TaskFilter, walks: bool) -> dict[str, Any]:
        """The filter's values by the names of their conditions (FIELDS), text search aside."""
        values = {name: value for name in EQUAL if (value := getattr(where, name)) is not None}
        if where.created_from is not None:
            values["created_from"] = where.created_from
        if where.created_to is not None:
            values["created_to"] = where.created_to
        if where.scheduled:  # waiting for its start: a PENDING task's next_run_at is its run_at until it runs
            values.update(queued=Status.PENDING.value, start_after=utcnow())
        if not where.id_prefix:
            return values
        # ids are lower-case hex (the filter checks the prefix is too): a key range
        values.update(id_from=where.id_prefix, id_to=where.id_prefix + "g")
        # reading the range, the status and type are hidden from SQLite, whose planner would walk their
        # index instead; PostgreSQL tests them in the range's index entries as they are (hidden, on each row)
        tested = ("id_from", "id_to") if walks else ("status", "task_type") if self.db.dialect == "sqlite" else ()
        return {f"{name}_tested" if name in tested else name: value for name, value in values.items()}

    def _walks(self, where: TaskFilter, tally: list[tuple[str, str, int]], wanted: int, *, reads: bool = True) -> bool:
        """Whether `wanted` tasks of an id prefix are found sooner walking the list newest first (by
        the index of its status and type, if given) than reading the prefix's range of ids (in
        `ix_tasks_id_type_status`, which has the status and type too), then, if the tasks are `read`,
        the row of each match, for the order. PostgreSQL reads the row of every task it walks past
        (the hidden id range is no index condition there); SQLite tests it in the index entry.

        Random ids: the range holds 1/16^k of the tasks, and the walk meets a match every 16^k."""
        if not where.id_prefix:
            return False
        step = 16 ** len(where.id_prefix)
        walked = self._tallied(where, tally)
        met = min(walked, wanted * step) * (ROW_READ if self.db.dialect == "postgresql" else 1)
        return met < (sum(n for *_, n in tally) + (ROW_READ * walked if reads else 0)) / step

    @staticmethod
    def _tallied(where: TaskFilter, tally: list[tuple[str, str, int]]) -> int:
        """How many tasks have the filter's status and type (all of them without either)."""
        return sum(n for kind, state, n in tally if where.status in (None, state) and where.task_type in (None, kind))

    async def count(self, where: TaskFilter, statuses: Iterable[str] | None = None) -> int:
        """Exactly how many tasks match (and are in one of `statuses`): for a bulk action's count."""
        tally = await self._tally()
        allowed = None if statuses is None else set(statuses)
        if where.counted:
            return sum(n for kind, state, n in tally if where.status in (None, state)
                       and where.task_type in (None, kind) and (allowed is None or state in allowed))
        conditions = self._conditions(where, tally, COUNT_CAP, reads=False)
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
            conditions.append(_before(after))
        query = _newest(conditions, limit, 0, columns=(tasks.c.id, tasks.c.created_at))
        return [(r["id"], r["created_at"]) for r in await self.db.fetch_all(query)]

    async def _count_up_to(self, conditions: list[sa.ColumnElement[bool]], cap: int) -> int:
        matching = sa.select(tasks.c.id).where(*conditions).limit(cap).subquery()
        return int(await self.db.fetch_val(sa.select(sa.func.count()).select_from(matching)))

    async def _tally(self) -> list[tuple[str, str, int]]:
        """(task_type, status, n) for every pair seen: a few dozen rows, whatever the number of tasks."""
        return [(row[0], row[1], int(row[2])) for row in await self.db.rows(self._tally_statement, {})]

    async def counts(self) -> dict[str, int]:
        found = {status.value: 0 for status in Status}
        for _, status, n in await self._tally():
            if status in found:
                found[status] += n
        return found
