"""SQLite through `databases` with one connection per process.

`databases`' own SQLite backend opens a new sqlite3 connection, on a new thread, for every
statement, and concurrent writers of one process then queue in SQLite's busy handler, which
sleeps in steps of up to 100 ms: a worker running ten jobs drained 4 tasks/s. Here the process
keeps one connection and lends it to one `databases` connection at a time (a statement, or a whole
transaction), so the process's statements queue in order instead; other processes still meet at
SQLite's file lock, with the busy timeout.
"""

import asyncio
import logging
from typing import Any

import aiosqlite
from databases import DatabaseURL
from databases.backends.sqlite import SQLiteBackend, SQLitePool

log = logging.getLogger(__name__)

# WAL with synchronous=NORMAL commits without an fsync (the WAL is synced at checkpoints): a
# committed change survives the process crashing, and only a power loss can take the last ones,
# the same promise as Redis' `appendfsync everysec` that holds the queue.
PRAGMAS = ("PRAGMA synchronous=NORMAL",)


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
                    await connection.execute(pragma)
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

