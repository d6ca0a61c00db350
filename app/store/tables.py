"""The database schema (SQLAlchemy Core): the `tasks` table and its indexes, task logs, and counts."""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

TYPE_NAME_MAX = 64  # characters of a task type's name


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (naive UTC text) as on PostgreSQL (timestamptz)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONColumn = sa.JSON().with_variant(JSONB(), "postgresql")

metadata = sa.MetaData()

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("task_type", sa.String(TYPE_NAME_MAX), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("parameters", JSONColumn, nullable=False),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("stage", sa.String(200)),
    sa.Column("result_data", JSONColumn),
    sa.Column("error_message", sa.Text),
    sa.Column("error_traceback", sa.Text),  # where the last failed attempt raised (capped by the worker)
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    # Which arq job may run this task: each enqueue gets a fresh number and job id
    # `<id>:<dispatch>`, so a stale or re-delivered job finds the row moved on and does nothing.
    sa.Column("dispatch", sa.Integer, nullable=False, default=1),
    # The system-wide sequence number (Redis INCR) of the task's latest change; never decreases.
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("worker", sa.String(200)),
    sa.Column("timeline", JSONColumn, nullable=False),
    sa.Column("max_attempts", sa.Integer),  # per-task override of the type's retry limit
    sa.Column("attempts_base", sa.Integer),  # `attempts` at the last manual retry: a fresh budget
    sa.Column("timeout", sa.Float),  # per-task override of the type's time limit, seconds
    sa.Column("next_run_at", UTCDateTime),  # when a RETRYING task's next attempt is due
    sa.Column("idempotency_key", sa.String(200)),
    sa.Column("request_hash", sa.String(64)),  # of the submit that first used the key
    sa.Column("priority", sa.String(8), nullable=False, server_default="default"),  # high | default | low
    sa.Column("run_at", UTCDateTime),  # a delayed or scheduled task's requested start; never earlier
    sa.Column("schedule_id", sa.String(36)),  # the recurring schedule that made this run
    sa.Column("source_task_id", sa.String(36)),  # the task this one re-runs (edited or duplicated)
    sa.Column("callback_url", sa.String(2000)),  # a webhook for each final state it reaches (webhooks/hooks.py)
    sa.Index("ix_tasks_created", "created_at", "id"),
    sa.Index("ux_tasks_idempotency_key", "idempotency_key", unique=True),
    sa.Index("ix_tasks_status_created", "status", "created_at", "id"),
    sa.Index("ix_tasks_type_created", "task_type", "created_at", "id"),
    sa.Index("ix_tasks_type_status_created", "task_type", "status", "created_at", "id"),
    # an id prefix's tasks with their status and type: counted, and tested for those, in the index alone
    sa.Index("ix_tasks_id_type_status", "id", "task_type", "status"),
    sa.Index("ix_tasks_seq", "seq"),
    sa.Index("ix_tasks_schedule_created", "schedule_id", "created_at", "id"),
    sa.Index("ix_tasks_source", "source_task_id"),
    sa.Index("ix_tasks_completed", "completed_at"),  # retention finds old finished tasks without a scan
)

# Recurring tasks: every tick (a cron expression's or an interval's) becomes one ordinary task.
# `next_run_at` is the tick due next; the worker that moves it on (a guarded UPDATE) creates that
# tick's task in the same transaction, so a tick runs once however many workers watch it.
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("task_type", sa.String(TYPE_NAME_MAX), nullable=False),
    sa.Column("parameters", JSONColumn, nullable=False),
    sa.Column("priority", sa.String(8), nullable=False, server_default="default"),
    sa.Column("cron", sa.String(200)),  # five fields, in `timezone`
    sa.Column("interval", sa.Float),  # seconds; either this or `cron`
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("next_run_at", UTCDateTime),
    sa.Column("last_run_at", UTCDateTime),
    sa.Column("last_task_id", sa.String(36)),
    sa.Column("runs", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_schedules_due", "paused", "next_run_at"),
)

# The webhooks' outbox: one row per (task, final change, hook), written in the transaction of that
# change; workers claim due rows with a guarded UPDATE (the lease) and record every attempt.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("task_id", sa.String(36), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),  # of the change that ended the task
    sa.Column("hook", sa.String(8), nullable=False),  # task (its callback_url) | global (WEBHOOK_URL)
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),  # task.succeeded | task.failed | task.cancelled
    sa.Column("task", JSONColumn, nullable=False),  # the task as that change left it: the body's `task`
    sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime),  # due then (while pending); a claim moves it to the lease's end
    sa.Column("leased_by", sa.String(200)),  # the worker sending the current attempt
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("history", JSONColumn, nullable=False),  # every attempt: at, status_code, error, duration_ms
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    sa.Index("ux_webhook_deliveries_change", "task_id", "seq", "hook", unique=True),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

# Lines a task logs while it runs (capped per task by the worker); `id` orders them.
task_logs = sa.Table(
    "task_logs",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.String(36), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("line", sa.Text, nullable=False),
    sa.Index("ix_task_logs_task", "task_id", "id"),
)

# Tasks per (type, status), kept exact by database triggers on `tasks` (see `TaskStore.create_schema`),
# whichever process writes: the counters and the list's totals read a few dozen rows, never the tasks.
task_counts = sa.Table(
    "task_counts",
    metadata,
    sa.Column("task_type", sa.String(TYPE_NAME_MAX), primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
)

# The triggers that keep `task_counts` exact. PostgreSQL counts inserts and deletes per statement
# (a batch insert takes each counter row once, in key order) and status moves per row, taking the
# two counter rows in key order too: concurrent writers never wait on each other in a cycle.
COUNT_TRIGGER_NAMES = ("task_counts_insert", "task_counts_move", "task_counts_delete")
COUNT_TRIGGERS = {
    "sqlite": [
        """CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN
             INSERT INTO task_counts (task_type, status, n) VALUES (NEW.task_type, NEW.status, 1)
               ON CONFLICT (task_type, status) DO UPDATE SET n = n + 1;
           END""",
        """CREATE TRIGGER task_counts_move AFTER UPDATE OF status, task_type ON tasks
           WHEN OLD.status IS NOT NEW.status OR OLD.task_type IS NOT NEW.task_type BEGIN
             UPDATE task_counts SET n = n - 1 WHERE task_type = OLD.task_type AND status = OLD.status;
             INSERT INTO task_counts (task_type, status, n) VALUES (NEW.task_type, NEW.status, 1)
               ON CONFLICT (task_type, status) DO UPDATE SET n = n + 1;
           END""",
        """CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN
             UPDATE task_counts SET n = n - 1 WHERE task_type = OLD.task_type AND status = OLD.status;
           END""",
    ],
    "postgresql": [
        """CREATE OR REPLACE FUNCTION task_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             INSERT INTO task_counts (task_type, status, n)
               SELECT task_type, status, count(*) FROM changed_rows GROUP BY 1, 2 ORDER BY 1, 2
               ON CONFLICT (task_type, status) DO UPDATE SET n = task_counts.n + EXCLUDED.n;
             RETURN NULL;
           END $$""",
        """CREATE OR REPLACE FUNCTION task_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             INSERT INTO task_counts (task_type, status, n)
               SELECT task_type, status, -count(*) FROM changed_rows GROUP BY 1, 2 ORDER BY 1, 2
               ON CONFLICT (task_type, status) DO UPDATE SET n = task_counts.n + EXCLUDED.n;
             RETURN NULL;
           END $$""",
        """CREATE OR REPLACE FUNCTION task_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             INSERT INTO task_counts (task_type, status, n)
               SELECT t, s, d FROM (VALUES (OLD.task_type, OLD.status, -1), (NEW.task_type, NEW.status, 1))
                 AS moved (t, s, d) ORDER BY t, s
               ON CONFLICT (task_type, status) DO UPDATE SET n = task_counts.n + EXCLUDED.n;
             RETURN NULL;
           END $$""",
        """CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks REFERENCING NEW TABLE AS changed_rows
           FOR EACH STATEMENT EXECUTE FUNCTION task_counts_add()""",
        """CREATE TRIGGER task_counts_move AFTER UPDATE OF status, task_type ON tasks FOR EACH ROW
           WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.task_type IS DISTINCT FROM NEW.task_type)
           EXECUTE FUNCTION task_counts_move()""",
        """CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks REFERENCING OLD TABLE AS changed_rows
           FOR EACH STATEMENT EXECUTE FUNCTION task_counts_remove()""",
    ],
}
