"""The database schema (SQLAlchemy Core): one `tasks` table and its indexes."""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB


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
    sa.Column("task_type", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("parameters", JSONColumn, nullable=False),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("stage", sa.String(200)),
    sa.Column("result_data", JSONColumn),
    sa.Column("error_message", sa.Text),
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
    sa.Index("ix_tasks_created", "created_at", "id"),
    sa.Index("ux_tasks_idempotency_key", "idempotency_key", unique=True),
    sa.Index("ix_tasks_status_created", "status", "created_at", "id"),
    sa.Index("ix_tasks_type_created", "task_type", "created_at", "id"),
    sa.Index("ix_tasks_seq", "seq"),
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
