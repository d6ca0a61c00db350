"""SQLite through `databases` with one connection per process.

`databases`' own SQLite backend opens a new sqlite3 connection, on a new thread, for every
statement, and concurrent writers of one process then queue in SQLite's busy handler, which
sleeps in steps of up to 100 ms: a worker running ten jobs drained 4 tasks/s. Here the process
keeps one connection and lends it to one `databases` connection at a time (a statement, or a whole
transaction), so the process's statements queue in order instead; other processes still meet at
SQLite's file lock, with the busy timeout.

Every statement runs start to end on the connection's own thread (`run`): the cursor is made,
read and closed there, and no cursor object ever reaches the event loop. A cursor left to the
loop thread resets its statement whenever it is collected, and sqlite3 hands a finished
statement to the next cursor with the same SQL: collected late, it would reset a statement the
connection's thread is running ("bad parameter or other API misuse").
"""

import asyncio
import logging
import sqlite3
from collections.abc import AsyncGenerator, Sequence
from typing import Any, NamedTuple

import aiosqlite
from databases import DatabaseURL
from databases.backends.common.records import Record, Row, create_column_maps
from databases.backends.sqlite import SQLiteBackend, SQLiteConnection, SQLitePool
from sqlalchemy.engine.cursor import CursorResultMetaData
from sqlalchemy.sql import ClauseElement

log = logging.getLogger(__name__)

# WAL with synchronous=NORMAL commits without an fsync (the WAL is synced at checkpoints): a
# committed change survives the process crashing, and only a power loss can take the last ones,
# the same promise as Redis' `appendfsync everysec` that holds the queue.
PRAGMAS = ("PRAGMA synchronous=NORMAL",)


class Ran(NamedTuple):
    """What a statement gave, read on the connection's thread: plain values only."""

    rows: list[tuple[Any, ...]]
    description: Any
    lastrowid: int | None
    rowcount: int


def _statement(connection: sqlite3.Connection, sql: str, args: Sequence[Any]) -> Ran:
    cursor = connection.execute(sql, args)
    try:
        return Ran(cursor.fetchall(), cursor.description, cursor.lastrowid, cursor.rowcount)
    finally:
        cursor.close()


def _statements(connection: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    connection.executemany(sql, rows).close()


def _begun(connection: sqlite3.Connection, begin: str, steps: Sequence[tuple[str, Sequence[Any]]]) -> list[Ran]:
    _statement(connection, begin, ())
    try:
        return [_statement(connection, sql, args) for sql, args in steps]
    except BaseException:
        _statement(connection, "ROLLBACK", ())
        raise


async def run(connection: aiosqlite.Connection, sql: str, args: Sequence[Any] = ()) -> Ran:
    """One statement, its cursor's whole life on the connection's thread."""
    return await connection._execute(lambda: _statement(connection._conn, sql, args))


async def run_many(connection: aiosqlite.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """One statement for each row of arguments (sqlite3's executemany), on the connection's thread."""
    await connection._execute(lambda: _statements(connection._conn, sql, rows))


async def begin_with(connection: aiosqlite.Connection, begin: str,
                     steps: Sequence[tuple[str, Sequence[Any]]]) -> list[Ran]:
    """A transaction begun and these statements run in it, in one trip to the connection's thread (rolled
    back there if one fails; else left open for the caller to end)."""
    return await connection._execute(lambda: _begun(connection._conn, begin, steps))


class OwnerThreadConnection(SQLiteConnection):
    """`databases`' SQLite connection with each statement run by `run`."""

    async def fetch_all(self, query: ClauseElement) -> list[Record]:
        return await self._records(query)

    async def fetch_one(self, query: ClauseElement) -> Record | None:
        records = await self._records(query)
        return records[0] if records else None

    async def execute(self, query: ClauseElement) -> Any:
        query_str, args, _, _ = self._compile(query)
        ran = await run(self.raw_connection, query_str, args)
        return ran.rowcount if ran.lastrowid == 0 else ran.lastrowid

    async def execute_many(self, queries: list[ClauseElement]) -> None:
        for query in queries:
            await self.execute(query)

    async def iterate(self, query: ClauseElement) -> AsyncGenerator[Any, None]:
        for record in await self._records(query):
            yield record

    async def _records(self, query: ClauseElement) -> list[Record]:
        query_str, args, result_columns, context = self._compile(query)
        ran = await run(self.raw_connection, query_str, args)
        if not ran.rows:
            return []
        column_maps = create_column_maps(result_columns)
        metadata = CursorResultMetaData(context, ran.description)
        return [Record(Row(metadata, metadata._processors, metadata._keymap, row), result_columns,
                       self._dialect, column_maps) for row in ran.rows]


class SharedConnectionPool(SQLitePool):
    def __init__(self, url: DatabaseURL, **options: Any) -> None:
        super().__init__(url, **options)
        self._connection: aiosqlite.Connection | None = None
        self._turn = asyncio.Semaphore(1)

    async def acquire(self) -> aiosqlite.Connection:
        await self._turn.acquire()
        try:
            if self._connection is None:
                connection = await super().acquire()
                for pragma in PRAGMAS:
                    await run(connection, pragma)
                self._connection = connection
        except BaseException:
            self._turn.release()
            raise
        return self._connection

    async def release(self, connection: aiosqlite.Connection) -> None:
        try:
            if connection.in_transaction:  # left open (a failed COMMIT): it would hold the write lock for good
                log.warning("a transaction was left open on the SQLite connection; rolling it back")
                await connection.rollback()
        finally:
            self._turn.release()

    async def close(self) -> None:
        async with self._turn:
            if self._connection is not None:
                await super().release(self._connection)
                self._connection = None


class SharedSQLiteBackend(SQLiteBackend):
    def __init__(self, database_url: DatabaseURL | str, **options: Any) -> None:
        super().__init__(database_url, **options)
        self._pool = SharedConnectionPool(self._database_url, **self._options)

    async def disconnect(self) -> None:
        await self._pool.close()
        await super().disconnect()

