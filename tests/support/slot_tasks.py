"""A task module for the worker's slot tests (TASK_MODULES=tests.support.slot_tasks): a task whose own
end has to wait for the database."""

import sqlite3
import threading

from app.tasks import SyncReporter, task


@task
def hold_writes(report: SyncReporter, database: str, seconds: float = 3.0) -> dict:
    """Takes SQLite's write lock and keeps it `seconds` after returning: the task's end is written then."""
    connection = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")

    def release() -> None:
        connection.execute("ROLLBACK")
        connection.close()

    threading.Timer(seconds, release).start()
    return {"held": seconds}
