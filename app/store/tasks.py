"""The tasks table: new tasks (one or a batch), reads by id, seq and status, and every change as a
guarded move.

Every change is one statement (`UPDATE … WHERE id AND status IN (the move's sources) AND seq < :seq
RETURNING *`): a move the status machine does not allow, or a change older than the one stored,
touches no row. A change is a worker's every step, so its statement is compiled once per shape (the
move, the columns it writes) and its row read straight from the driver. On PostgreSQL, where each
statement is a round trip to the server, a group's changes of one shape are one statement
(`UPDATE … FROM unnest(the values as arrays)`).
"""

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from databases.interfaces import Record
from sqlalchemy.dialects.postgresql import JSONB

from app.core.clock import utcnow
from app.core.status import FINAL, Move, Status
from app.core.wire import TaskDict, TimelineEntry, dumps
from app.store.db import Db, DriverStatement, array, arrays
from app.store.tables import tasks

TASK_COLUMNS = tuple(str(column.name) for column in tasks.columns if column.name != "request_hash")  # plain str: orjson keys
SHOWN = [tasks.c[name] for name in TASK_COLUMNS]
DATETIME_FIELDS = ("created_at", "started_at", "completed_at", "updated_at", "next_run_at", "run_at")


def task_of(record: Record) -> TaskDict:
    """A row as the wire shows it."""
    return _shown({name: record[name] for name in TASK_COLUMNS})


def _inserted(values: Mapping[str, Any]) -> TaskDict:
    """What `task_of` reads back for a row just inserted with these values."""
    return _shown({name: values.get(name) for name in TASK_COLUMNS})


def _shown(task: dict[str, Any]) -> TaskDict:
    for name in DATETIME_FIELDS:
        if task[name] is not None:
            task[name] = task[name].astimezone(UTC).isoformat()
    task["cancel_requested"] = bool(task["cancel_requested"])
    return task  # type: ignore[return-value]


@dataclass(frozen=True)
class RowValue:
    """A value a change computes from the row itself: one of its columns, plus `add`."""

    column: str
    add: int = 0

    def sql(self) -> sa.ColumnElement[Any]:
        return tasks.c[self.column] + self.add if self.add else tasks.c[self.column]


# The shape of one change, which its compiled statement depends on: the move, the columns it writes
# (a RowValue's expression is part of the statement), whether it appends to the timeline and is
# guarded by a dispatch.
Shape = tuple[Move, tuple[tuple[str, RowValue | None], ...], bool, bool]
ID = TASK_COLUMNS.index("id")


class Step(NamedTuple):
    """One change: its statement (compiled once per shape), the values bound to it, and its shape."""

    statement: DriverStatement
    values: dict[str, Any]
    shape: Shape


def _guard(move: Move) -> sa.ColumnElement[bool]:
    # OR of equalities, not IN: an expanding IN cannot be compiled once for every call (store/backends.py)
    return sa.or_(*(tasks.c.status == status for status in sorted(move.sources)))


def _move_values(move: Move, values: Mapping[str, Any]) -> dict[str, Any]:
    """The columns a move writes: its own target status, never one the caller chose."""
    assert "status" not in values, "a move sets the status itself"
    written = {name: value.sql() if isinstance(value, RowValue) else value for name, value in values.items()}
    return {**written, "status": move.target.value} if move.target is not None else written


class RowReader:
    """Rows of the SHOWN columns, as the driver gives them (`Db.rows`), read as the wire shows them."""

    def __init__(self, db: Db) -> None:
        self._decoders = list(zip(TASK_COLUMNS, db.decoders(SHOWN), strict=True))

    def __call__(self, row: Sequence[Any]) -> TaskDict:
        return _shown({name: value if decode is None or value is None else decode(value)
                       for (name, decode), value in zip(self._decoders, row, strict=True)})


class TaskStore:
    def __init__(self, db: Db) -> None:
        self.db = db
        self._read = RowReader(db)
        # a timeline entry as bound (`_entry_value`): JSON on PostgreSQL, JSON text for SQLite's json()
        self._entry_type: sa.types.TypeEngine[Any] = JSONB() if db.dialect == "postgresql" else sa.Text()

    async def insert(self, values: Mapping[str, Any]) -> TaskDict:
        record = await self.db.fetch_one(tasks.insert().values(**values).returning(*tasks.c))
        assert record is not None
        return task_of(record)

    async def insert_many(self, rows: list[Mapping[str, Any]]) -> list[TaskDict]:
        """New tasks (all with the same columns) in one transaction, returned in the order given.

        One statement compiled once and run by the driver's executemany: SQLAlchemy compiling a
        multi-row VALUES costs about a millisecond per row, more than the database's own work."""
        insert = self._insert_statement(tuple(sorted(rows[0])))
        # by type: the count triggers then lock task_counts rows in one order in every transaction
        ordered = sorted(rows, key=lambda row: row["task_type"])
        await self.db.atomically(lambda: self.db.executemany(insert, ordered))
        return [_inserted(row) for row in rows]

    @functools.lru_cache(maxsize=4)  # noqa: B019 -- one store per process, a few column sets
    def _insert_statement(self, columns: tuple[str, ...]) -> DriverStatement:
        return self.db.compiled(tasks.insert(), columns)

    async def delete(self, task_id: str) -> None:
        await self.db.execute(tasks.delete().where(tasks.c.id == task_id))

    async def delete_many(self, task_ids: list[str]) -> None:
        await self.db.execute(tasks.delete().where(tasks.c.id.in_(task_ids)))

    async def delete_finished(self, task_ids: list[str]) -> list[str]:
        """Remove those of these tasks that are final; returns their ids."""
        records = await self.db.fetch_all(
            tasks.delete().where(tasks.c.id.in_(task_ids), tasks.c.status.in_(sorted(FINAL))).returning(tasks.c.id))
        return [r["id"] for r in records]

    async def get(self, task_id: str) -> TaskDict | None:
        record = await self.db.fetch_one(tasks.select().where(tasks.c.id == task_id))
        return task_of(record) if record else None

    async def by_idempotency_key(self, key: str) -> tuple[TaskDict, str] | None:
        """The task first submitted with this key, and that request's fingerprint."""
        record = await self.db.fetch_one(tasks.select().where(tasks.c.idempotency_key == key))
        return (task_of(record), record["request_hash"]) if record else None

    @staticmethod
    def incremented(column: str) -> RowValue:
        return RowValue(column, 1)

    @staticmethod
    def current(column: str) -> RowValue:
        """The row's own value of `column`, for a value set from another column."""
        return RowValue(column)

    async def update(
        self, task_id: str, seq: int, move: Move, values: Mapping[str, Any], *,
        entry: TimelineEntry | None = None, dispatch: int | None = None,
    ) -> TaskDict | None:
        """Make `move` with `values` if the task is in one of its sources (and at `dispatch`) and holds
        no newer change than `seq`; None if refused."""
        step = self.update_step(task_id, seq, move, values, entry=entry, dispatch=dispatch)
        rows = await self.db.rows(step.statement, step.values)
        return self._read(rows[0]) if rows else None

    def update_step(
        self, task_id: str, seq: int, move: Move, values: Mapping[str, Any], *,
        entry: TimelineEntry | None = None, dispatch: int | None = None,
    ) -> Step:
        """`update`'s statement and its values, for `update_all`."""
        shape = (move, tuple((name, value if isinstance(value, RowValue) else None) for name, value in values.items()),
                 entry is not None, dispatch is not None)
        bound = {f"set_{name}": value for name, value in values.items() if not isinstance(value, RowValue)}
        bound.update(row_id=task_id, row_seq=seq, row_dispatch=dispatch, row_updated_at=utcnow(),
                     row_entry=self._entry_value(entry))
        return Step(self._update_statement(shape), bound, shape)

    async def update_all(
        self, steps: list[Step], moves: list[Move],
        then: Callable[[list[TaskDict | None], list[Sequence[Sequence[Any]]]], Awaitable[None]],
        others: list[tuple[DriverStatement, dict[str, Any]]] = [],  # noqa: B006 -- never changed
    ) -> list[TaskDict | None]:
        """Several `update_step`s (making these moves) in one transaction, other statements after them, and
        `then(the tasks as written (None: refused), the others' rows)` in it too.

        On PostgreSQL each move's count trigger locks its two rows of task_counts (store/tables.py), in
        the order of the moves: two such transactions could wait on each other. The rows of every status
        the moves touch are locked first, in one order for every transaction."""
        runs = self._runs(steps)
        written: list[TaskDict | None] = [None] * len(steps)

        async def read(found: list[Sequence[Sequence[Any]]]) -> None:
            for (_, placed), rows in zip(runs, found, strict=False):
                by_id = {row[ID]: row for row in rows}
                for i in placed:
                    row = by_id.get(steps[i].values["row_id"])
                    written[i] = self._read(row) if row is not None else None
            await then(written, found[len(runs):])

        prelude = "" if self.db.dialect == "sqlite" else self._count_locks(moves)
        await self.db.rows_then([run for run, _ in runs] + others, read, prelude=prelude)
        return written

    def _runs(self, steps: list[Step]) -> list[tuple[tuple[DriverStatement, dict[str, Any]], list[int]]]:
        """The statements that make these steps, each with the steps it makes. On SQLite one per step (a
        statement there is a call, not a round trip); on PostgreSQL one per shape, as long as each task's
        steps stay in their order, one per statement (a task's next step goes to a later statement)."""
        if self.db.dialect == "sqlite":
            return [((step.statement, step.values), [i]) for i, step in enumerate(steps)]
        batches: list[tuple[Shape, list[int]]] = []
        latest: dict[str, int] = {}  # task id → the batch of its latest step
        for i, step in enumerate(steps):
            task_id = step.values["row_id"]
            later = range(latest.get(task_id, -1) + 1, len(batches))
            at = next((b for b in later if batches[b][0] == step.shape), None)
            if at is None:
                batches.append((step.shape, []))
                at = len(batches) - 1
            batches[at][1].append(i)
            latest[task_id] = at
        runs = []
        for shape, placed in batches:
            if len(placed) == 1:
                runs.append(((steps[placed[0]].statement, steps[placed[0]].values), placed))
                continue
            columns = {name: [steps[i].values[name] for i in placed] for name in self._binds(shape)}
            runs.append(((self._batch_statement(shape), columns), placed))
        return runs

    @staticmethod
    def _count_locks(moves: list[Move]) -> str:
        """The rows of task_counts of every status these moves touch, locked in one order (a statement
        without arguments, to go with BEGIN: the statuses are the status machine's own names)."""
        statuses = sorted({status.value for move in moves for status in
                           (*move.sources, *([move.target] if move.target else []))})
        assert all(status.isalpha() for status in statuses)
        listed = ", ".join(f"'{status}'" for status in statuses)
        return (f"SELECT task_type, status FROM task_counts WHERE status IN ({listed}) "
                "ORDER BY task_type, status FOR UPDATE")

    def _binds(self, shape: Shape) -> dict[str, sa.types.TypeEngine[Any]]:
        """The values a change of this shape binds, and their types."""
        _, columns, appends, dispatched = shape
        binds: dict[str, sa.types.TypeEngine[Any]] = {
            "row_id": tasks.c.id.type, "row_seq": tasks.c.seq.type, "row_updated_at": tasks.c.updated_at.type}
        if dispatched:
            binds["row_dispatch"] = tasks.c.dispatch.type
        if appends:
            binds["row_entry"] = self._entry_type
        binds.update({f"set_{name}": tasks.c[name].type for name, computed in columns if computed is None})
        return binds

    @functools.lru_cache(maxsize=64)  # noqa: B019 -- one store per process, a few dozen shapes
    def _update_statement(self, shape: Shape) -> DriverStatement:
        bound = {name: sa.bindparam(name, type_=type_) for name, type_ in self._binds(shape).items()}
        return self.db.compiled(self._update(shape, bound))

    @functools.lru_cache(maxsize=64)  # noqa: B019 -- one store per process, a few dozen shapes
    def _batch_statement(self, shape: Shape) -> DriverStatement:
        """`_update_statement` for many tasks at once (PostgreSQL): each value bound as an array."""
        binds = self._binds(shape)
        rows = arrays(binds)
        # lets the tasks be found by their primary key: with statistics from before a burst, the plan
        # otherwise reads every task of the guard's statuses
        statement = self._update(shape, {name: rows.c[name] for name in binds}).where(
            tasks.c.id == sa.any_(array("row_id", binds["row_id"])))
        return self.db.compiled(statement)

    def _update(self, shape: Shape, bound: Mapping[str, sa.ColumnElement[Any]]) -> sa.Update:
        """A change of this shape, its values taken from `bound` (bind parameters, or the columns of a
        table of values)."""
        move, columns, appends, dispatched = shape
        stmt = tasks.update().where(tasks.c.id == bound["row_id"], _guard(move), tasks.c.seq < bound["row_seq"])
        if dispatched:
            stmt = stmt.where(tasks.c.dispatch == bound["row_dispatch"])
        values: dict[str, Any] = {name: computed.sql() if computed is not None else bound[f"set_{name}"]
                                  for name, computed in columns}
        if move.target is not None:
            values["status"] = move.target.value
        values.update(seq=bound["row_seq"], updated_at=bound["row_updated_at"])
        if appends:
            values["timeline"] = self._append(bound["row_entry"])
        return stmt.values(**values).returning(*SHOWN)

    async def update_many(self, task_ids: list[str], first_seq: int, move: Move, values: Mapping[str, Any], *,
                          entry: TimelineEntry) -> list[TaskDict]:
        """`update` for many tasks in one transaction, the i-th task given seq `first_seq + i`: one
        statement compiled once and run by the driver's executemany, then the rows changed read back
        (those not in the move's sources, or holding a newer change than their seq, are left alone).
        Rows are written in task type order, so the count triggers take their counter rows in one
        order in every transaction (store/tables.py)."""
        stmt = tasks.update().where(tasks.c.id == sa.bindparam("row_id"), _guard(move),
                                    tasks.c.seq < sa.bindparam("row_seq")).values(
            **_move_values(move, values), seq=sa.bindparam("row_seq"), updated_at=utcnow(),
            timeline=self._append(sa.bindparam("row_entry", type_=self._entry_type)))
        update = self.db.compiled(stmt)
        seqs = {task_id: first_seq + i for i, task_id in enumerate(task_ids)}

        async def work() -> list[TaskDict]:
            found = await self.db.fetch_all(sa.select(tasks.c.id, tasks.c.task_type).where(tasks.c.id.in_(task_ids)))
            kinds = {r["id"]: r["task_type"] for r in found}
            timeline = self._entry_value(entry)
            rows = [{"row_id": task_id, "row_seq": seqs[task_id], "row_entry": timeline}
                    for task_id in sorted(kinds, key=lambda task_id: (kinds[task_id], task_id))]
            if rows:
                await self.db.executemany(update, rows)
            changed = tasks.select().where(tasks.c.id.in_(task_ids), tasks.c.seq >= first_seq,
                                           tasks.c.seq < first_seq + len(task_ids))
            return sorted((task_of(r) for r in await self.db.fetch_all(changed)), key=lambda task: task["seq"])

        return await self.db.atomically(work)

    def _append(self, entry: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """The timeline with one more entry (its value: `_entry_value`)."""
        if self.db.dialect == "postgresql":
            return tasks.c.timeline.op("||")(entry)
        return sa.func.json_insert(tasks.c.timeline, "$[#]", sa.func.json(entry))

    def _entry_value(self, entry: TimelineEntry | None) -> Any:
        if entry is None:
            return None
        return [entry] if self.db.dialect == "postgresql" else dumps(entry)

    async def statuses(self, task_ids: list[str]) -> dict[str, str]:
        query = sa.select(tasks.c.id, tasks.c.status).where(tasks.c.id.in_(task_ids))
        return {r["id"]: r["status"] for r in await self.db.fetch_all(query)}

    async def finished_before(self, before: datetime, limit: int) -> list[str]:
        """Ids of final tasks that ended before `before`, oldest first (retention)."""
        query = (sa.select(tasks.c.id)
                 .where(tasks.c.completed_at < before, tasks.c.status.in_(sorted(FINAL)))
                 .order_by(tasks.c.completed_at).limit(limit))
        return [r["id"] for r in await self.db.fetch_all(query)]

    async def running(self) -> list[TaskDict]:
        return [task_of(r) for r in await self.db.fetch_all(tasks.select().where(tasks.c.status == Status.RUNNING))]

    async def running_jobs(self) -> list[tuple[str, int]]:
        """(id, dispatch) of every running task: what queue positions need, without loading the tasks."""
        query = sa.select(tasks.c.id, tasks.c.dispatch).where(tasks.c.status == Status.RUNNING)
        return [(row[0], int(row[1])) for row in await self.db.fetch_all(query)]

    async def waiting_since(self, before: datetime, limit: int) -> list[tuple[str, int, Status]]:
        """(id, dispatch, status) of queued tasks not changed since `before` whose next run (if scheduled)
        is due by then: the reconciler reads them every few seconds, so no whole rows."""
        query = (
            sa.select(tasks.c.id, tasks.c.dispatch, tasks.c.status)
            .where(tasks.c.status.in_([Status.PENDING, Status.RETRYING]), tasks.c.updated_at < before,
                   sa.or_(tasks.c.next_run_at.is_(None), tasks.c.next_run_at < before))
            .order_by(tasks.c.updated_at)
            .limit(limit)
        )
        return [(r["id"], r["dispatch"], Status(r["status"])) for r in await self.db.fetch_all(query)]

    async def with_seqs(self, seqs: list[int]) -> list[TaskDict]:
        """Tasks whose latest change has one of these seqs."""
        query = tasks.select().where(tasks.c.seq.in_(seqs)).order_by(tasks.c.seq)
        return [task_of(r) for r in await self.db.fetch_all(query)]

    async def max_seq(self) -> int:
        return int(await self.db.fetch_val(sa.select(sa.func.coalesce(sa.func.max(tasks.c.seq), 0))))

    async def changed_between(self, after: int, upto: int, limit: int) -> list[TaskDict]:
        """Tasks whose latest change has `after < seq <= upto`, oldest change first."""
        query = tasks.select().where(tasks.c.seq > after, tasks.c.seq <= upto).order_by(tasks.c.seq).limit(limit)
        return [task_of(r) for r in await self.db.fetch_all(query)]
