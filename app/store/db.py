"""The process's one database handle, shared by every store: statements, transactions, and, on the hot
paths, statements compiled once and run on the driver's own connection (rows as tuples, batches by its
executemany). The only place that holds a `databases.Database`."""

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from databases.core import Connection
from databases.interfaces import Record
from sqlalchemy.dialects.postgresql import ARRAY

from app.store import sqlite
from app.store.backends import TaskDatabase

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT = 30.0  # seconds a writer waits for the lock before "database is locked"
Query = sa.ClauseElement | str


class DriverStatement(NamedTuple):
    """A compiled statement as the driver takes it: its text, the names its arguments take in order with
    their bind processors (JSON, timestamps, booleans; None: the value as it is), and the values compiled
    into it."""

    sql: str
    names: list[tuple[str, Callable[[Any], Any] | None]]
    params: dict[str, Any]

    def args(self, rows: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
        """Each row's arguments in order; a name a row lacks takes the value compiled into the statement."""
        params = self.params
        return [[(row[name] if name in row else params[name]) if process is None
                 else process(row[name] if name in row else params[name]) for name, process in self.names]
                for row in rows]


Rows = Sequence[Sequence[Any]]  # a statement's rows, as the driver gives them
Decode = Callable[[Any], Any] | None  # a column's result processor (JSON, timestamps, booleans), if it has one


def array(name: str, type_: sa.types.TypeEngine[Any]) -> sa.Cast[Any]:
    """An array of `type_` bound by `name` (PostgreSQL), cast so the server knows its type."""
    return sa.cast(sa.bindparam(name, type_=ARRAY(type_)), ARRAY(type_))


def arrays(binds: Mapping[str, sa.types.TypeEngine[Any]], ordinality: str | None = None) -> sa.TableValuedAlias:
    """A table of rows given as one array per column (PostgreSQL's `unnest`), each bound by its name: many
    rows in one statement, whose text does not depend on their number. `ordinality` names a column
    numbering the rows in the order given."""
    columns = [array(name, type_) for name, type_ in binds.items()]
    table = sa.func.unnest(*columns).table_valued(*(sa.column(name) for name in binds), with_ordinality=ordinality)
    return table.render_derived(name="v")


class Db:
    def __init__(self, database: TaskDatabase) -> None:
        self._database = database
        self.dialect = database.url.dialect
        # Set inside `atomically`'s transaction: work that calls `atomically` again joins it.
        self._in_transaction = contextvars.ContextVar(f"in_transaction_{id(self)}", default=False)

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator["Db"]:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1].split("?", 1)[0]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            database = TaskDatabase(url, timeout=SQLITE_BUSY_TIMEOUT)  # one connection per process: store/sqlite.py
        else:
            database = TaskDatabase(url)
        await database.connect()
        try:
            yield cls(database)
        finally:
            await database.disconnect()

    async def fetch_one(self, query: Query, values: Mapping[str, Any] | None = None) -> Record | None:
        return await self._database.fetch_one(query, values)  # type: ignore[arg-type]

    async def fetch_all(self, query: Query, values: Mapping[str, Any] | None = None) -> list[Record]:
        return await self._database.fetch_all(query, values)  # type: ignore[arg-type]

    async def fetch_val(self, query: Query, values: Mapping[str, Any] | None = None) -> Any:
        return await self._database.fetch_val(query, values)  # type: ignore[arg-type]

    async def execute(self, query: Query, values: Mapping[str, Any] | None = None) -> Any:
        return await self._database.execute(query, values)  # type: ignore[arg-type]

    async def ping(self) -> None:
        await self.fetch_val("SELECT 1")

    def compiled(self, statement: sa.Executable, columns: Sequence[str] | None = None) -> DriverStatement:
        """A statement (of these columns only, for an INSERT) in the driver's own placeholders, for its
        executemany: SQLAlchemy compiling each row costs more than the database's own work."""
        compiled = statement.compile(dialect=self._database.sql_dialect, column_keys=list(columns) if columns else None)
        processors = compiled._bind_processors  # type: ignore[attr-defined]
        if self.dialect == "postgresql":  # pyformat, turned into asyncpg's $n as `databases` does
            names = list(compiled.params)
            sql = compiled.string % {name: f"${i}" for i, name in enumerate(names, start=1)}
        else:
            sql, names = compiled.string, list(compiled.positiontup or ())
        return DriverStatement(sql, [(name, processors.get(name)) for name in names], compiled.params)

    def column_definition(self, column: sa.Column[Any]) -> str:
        """A column's DDL as `ALTER TABLE … ADD COLUMN` takes it, in this database's dialect."""
        return str(sa.schema.CreateColumn(column).compile(dialect=self._database.sql_dialect))

    def decoders(self, columns: Sequence[sa.ColumnElement[Any]]) -> list[Decode]:
        """How each of these result columns is read from the driver's raw value, as `databases` reads it."""
        dialect = self._database.sql_dialect
        return [column.type._cached_result_processor(dialect, None) for column in columns]  # type: ignore[attr-defined]

    async def rows(self, statement: DriverStatement, values: Mapping[str, Any]) -> Rows:
        """The rows a compiled statement gives for these values, as the driver returns them (no `Record`:
        decoding one costs more than the statement on the hot paths)."""
        args = statement.args([values])[0]
        async with self._database.connection() as connection:
            if self.dialect == "sqlite":
                return (await sqlite.run(connection.raw_connection, statement.sql, args)).rows
            return await connection.raw_connection.fetch(statement.sql, *args)  # type: ignore[no-any-return]

    async def rows_then(self, steps: Sequence[tuple[DriverStatement, Mapping[str, Any]]],
                        then: Callable[[list[Rows]], Awaitable[None]], *,
                        prelude: str = "") -> list[Rows]:
        """`rows` of each step, then `then(their rows)`, all in one transaction (`atomically`'s promises),
        which first runs `prelude` (a statement without arguments, e.g. row locks) and ignores its rows.
        On SQLite, BEGIN and the steps go to the connection's thread in one trip: a group of changes
        costs two trips (with COMMIT) instead of one per change and two more; on PostgreSQL BEGIN and
        the prelude go in one (the simple query protocol runs several statements)."""
        if self._in_transaction.get():
            if prelude:
                async with self._database.connection() as connection:
                    await self._plain(connection, prelude)
            return await self._each_then(steps, then)
        if self.dialect != "sqlite":
            begin = f"BEGIN; {prelude}" if prelude else "BEGIN"
            return await self._transaction(lambda connection: self._plain(connection, begin),
                                           lambda: self._each_then(steps, then))
        found: list[Rows] = []

        async def begin_sqlite(connection: Connection) -> None:
            args = [(statement.sql, statement.args([values])[0]) for statement, values in steps]
            ran = await sqlite.begin_with(connection.raw_connection, "BEGIN IMMEDIATE",
                                          [(prelude, [])] + args if prelude else args)
            found.extend(step.rows for step in ran[1 if prelude else 0:])

        await self._transaction(begin_sqlite, lambda: then(found))
        return found

    async def _each_then(self, steps: Sequence[tuple[DriverStatement, Mapping[str, Any]]],
                         then: Callable[[list[Rows]], Awaitable[None]]) -> list[Rows]:
        found = [await self.rows(statement, values) for statement, values in steps]
        await then(found)
        return found

    async def executemany(self, statement: DriverStatement, rows: Iterable[Mapping[str, Any]]) -> None:
        """The statement once per row, by the driver (in the transaction of `atomically`, when inside one)."""
        args = statement.args(rows)
        async with self._database.connection() as connection:
            if self.dialect == "sqlite":
                await sqlite.run_many(connection.raw_connection, statement.sql, args)
            else:
                await connection.raw_connection.executemany(statement.sql, args)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """One connection held for a block (a session-level lock, statements that must share it)."""
        async with self._database.connection() as connection:
            yield connection

    async def atomically(self, work: Callable[[], Awaitable[T]]) -> T:
        """`work`'s statements in one transaction, carried to its end even if the caller is cancelled.

        BEGIN and COMMIT are plain statements on a connection held by `async with`, not `databases`'
        transaction object, which keeps its connection for good when cancelled inside BEGIN or
        COMMIT or when COMMIT fails: on SQLite that is the process's only connection (store/sqlite.py),
        with the write lock. On SQLite the write lock is taken at BEGIN (IMMEDIATE): a transaction that
        reads first and writes after another process committed would fail at once with "database is
        locked" (its snapshot is stale), never waiting in the busy handler.

        Called from inside such work, it runs `work` as part of that transaction (a change that must be
        atomic with what it writes beside the task, written within a group commit or alone)."""
        if self._in_transaction.get():
            return await work()
        begin = "BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN"
        return await self._transaction(lambda connection: self._plain(connection, begin), work)

    async def _transaction(self, begin: Callable[[Connection], Awaitable[None]], work: Callable[[], Awaitable[T]]) -> T:
        """`begin(connection)` (a transaction begun, and maybe its first statements), `work()`, COMMIT; shielded."""
        async def run() -> T:
            self._in_transaction.set(True)  # in this task's own context only
            async with self._database.connection() as connection:
                await begin(connection)
                try:
                    result = await work()
                except BaseException:
                    await self._plain(connection, "ROLLBACK")
                    raise
                await self._plain(connection, "COMMIT")
                return result

        return await asyncio.shield(asyncio.ensure_future(run()))

    @asynccontextmanager
    async def writers_held_off(self, table: str) -> AsyncIterator[Connection]:
        """A transaction that holds the write lock (SQLite) or keeps writers of `table` out (PostgreSQL)."""
        async with self._database.connection() as connection:
            # on SQLite IMMEDIATE: the write lock, before reading
            await self._plain(connection, "BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
            try:
                if self.dialect == "postgresql":
                    await self._plain(connection, f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
                yield connection
            except BaseException:
                await self._plain(connection, "ROLLBACK")
                raise
            await self._plain(connection, "COMMIT")

    async def _plain(self, connection: Connection, sql: str) -> None:
        """A statement without arguments or rows (BEGIN, COMMIT …), straight to the driver."""
        if self.dialect == "sqlite":
            await sqlite.run(connection.raw_connection, sql)
        else:
            await connection.raw_connection.execute(sql)
