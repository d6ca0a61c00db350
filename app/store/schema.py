"""The schema made or brought up to date when a process opens the database: tables and indexes, columns a
later version added, the count triggers, the search index; SQLite switched to WAL."""

import asyncio
import sqlite3

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from app.store import search
from app.store.db import SQLITE_BUSY_TIMEOUT, Db
from app.store.tables import COUNT_TRIGGER_NAMES, COUNT_TRIGGERS, metadata, task_counts, tasks

SCHEMA_LOCK = 7_146_871_352  # PostgreSQL advisory lock key held while the schema is created or updated


async def create_schema(db: Db) -> None:
    if db.dialect == "sqlite":
        await _use_wal(db)
        await _create_tables(db)
        return
    # Web and workers starting together on a new PostgreSQL database would race in CREATE …
    # IF NOT EXISTS (a duplicate key in pg_class): one process at a time, on one connection.
    async with db.connection() as connection:
        await connection.execute(f"SELECT pg_advisory_lock({SCHEMA_LOCK})")
        try:
            await _create_tables(db)
        finally:
            await connection.execute(f"SELECT pg_advisory_unlock({SCHEMA_LOCK})")


async def _use_wal(db: Db) -> None:
    """Switch the file to WAL (persistent: stored in the file). Switching takes an exclusive lock
    and SQLite answers "database is locked" at once instead of calling the busy handler when
    another process holds the file, as web and workers opening a new database together do."""
    deadline = asyncio.get_running_loop().time() + SQLITE_BUSY_TIMEOUT
    while True:
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.01)


async def _create_tables(db: Db) -> None:
    for table in metadata.sorted_tables:
        await db.execute(CreateTable(table, if_not_exists=True))
        await _add_missing_columns(db, table)
        for index in table.indexes:
            await db.execute(CreateIndex(index, if_not_exists=True))
    if not await _has_count_triggers(db):
        await _start_counting(db)
    if not await search.has_index(db, db.dialect):
        await _start_searching(db)


async def _add_missing_columns(db: Db, table: sa.Table) -> None:
    """Columns added by a later version are added to an older database (nullable, or with a default)."""
    if db.dialect == "sqlite":
        present = {row["name"] for row in await db.fetch_all(f"PRAGMA table_info({table.name})")}
    else:
        query = "SELECT column_name FROM information_schema.columns WHERE table_name = :name"
        present = {row["column_name"] for row in await db.fetch_all(query, {"name": table.name})}
    for column in table.columns:
        if column.name not in present:
            await db.execute(f"ALTER TABLE {table.name} ADD COLUMN {db.column_definition(column)}")


async def _has_count_triggers(db: Db) -> bool:
    if db.dialect == "sqlite":
        query = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'tasks' AND name IN "
    else:
        query = ("SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                 "WHERE relname = 'tasks' AND tgname IN ")
    query += f"({', '.join(repr(name) for name in COUNT_TRIGGER_NAMES)})"
    return bool(await db.fetch_val(query) == len(COUNT_TRIGGER_NAMES))


async def _start_counting(db: Db) -> None:
    """Count the tasks into `task_counts` and create the triggers that keep it exact, with writers held
    off in between. Runs for a new database, one from before the counts, and after `tasks` was dropped
    and made again (its triggers went with it; the stale counters did not)."""
    async with db.writers_held_off("tasks") as connection:
        if not await _has_count_triggers(db):  # another process may have just done it
            await connection.execute(task_counts.delete())
            counted = sa.select(tasks.c.task_type, tasks.c.status, sa.func.count()).group_by(
                tasks.c.task_type, tasks.c.status)
            await connection.execute(task_counts.insert().from_select(["task_type", "status", "n"], counted))
            for name in COUNT_TRIGGER_NAMES:  # a partial set, if someone dropped one
                on = " ON tasks" if db.dialect == "postgresql" else ""
                await connection.execute(f"DROP TRIGGER IF EXISTS {name}{on}")
            for statement in COUNT_TRIGGERS[db.dialect]:
                await connection.execute(statement)


async def _start_searching(db: Db) -> None:
    """Build the text search index (store/search.py) from the tasks stored and create the triggers that
    keep it, with writers held off in between: for a new database and one from before the index."""
    async with db.writers_held_off("tasks") as connection:
        if not await search.has_index(connection, db.dialect):  # another process may have just done it
            await search.build_index(connection, db.dialect)
