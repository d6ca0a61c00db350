"""Which tasks a list, a search or a bulk action is about: one filter, read from a query string
(the list, kept in the dashboard's URL) or from a JSON object (a bulk action's `filter`), with the
same names and the same 422s."""

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from app.core.errors import InvalidParameters
from app.core.priority import Priority
from app.core.status import Status
from app.store.tables import TYPE_NAME_MAX

ID_CHARS = frozenset("0123456789abcdef")
MAX_TEXT = 200  # characters of a text search
NAMES = frozenset({"status", "task_type", "q", "priority", "text", "from", "to", "schedule_id", "source_task_id"})


@dataclass(frozen=True)
class TaskFilter:
    status: str | None = None
    task_type: str | None = None
    id_prefix: str | None = None  # `q`: lower-case hex, dashes dropped
    priority: str | None = None
    text: str | None = None  # words found in the parameters, the result or the error
    created_from: datetime | None = None  # `from`, inclusive
    created_to: datetime | None = None  # `to`, exclusive
    schedule_id: str | None = None
    source_task_id: str | None = None
    scheduled: bool = False  # only PENDING tasks whose start lies ahead (a run_at or delay not reached)

    @classmethod
    def parse(cls, values: Mapping[str, object], *, prefix: str = "") -> "TaskFilter":
        """From query parameters or a JSON object; empty values mean "any". `prefix` names the
        fields in a 422 (e.g. `filter.`)."""
        def given(name: str) -> str | None:
            value = values.get(name)
            if value is None or value == "":
                return None
            if not isinstance(value, str):
                raise InvalidParameters(prefix + name, "must be a string")
            return value.strip() or None

        status = given("status")
        if status is not None and status.upper() not in Status.__members__:
            raise InvalidParameters(prefix + "status", f"unknown status {status!r}; known: {', '.join(Status)}")
        # any type's name: tasks of a type no longer served are still stored (and listed)
        task_type = given("task_type")
        if task_type is not None and not (task_type.isidentifier() and len(task_type) <= TYPE_NAME_MAX):
            raise InvalidParameters(prefix + "task_type", f"must be a task type's name (an identifier of at most "
                                    f"{TYPE_NAME_MAX} characters), got {task_type[:40]!r}")
        raw_q = given("q")
        id_prefix = raw_q.lower().replace("-", "") if raw_q else None
        if id_prefix is not None and not (len(id_prefix) <= 32 and set(id_prefix) <= ID_CHARS):
            raise InvalidParameters(prefix + "q", f"searches task ids by prefix: up to 32 hex digits, got {raw_q[:40]!r}")
        priority = given("priority")
        if priority is not None and priority not in set(Priority):
            raise InvalidParameters(prefix + "priority", f"must be one of {', '.join(Priority)}, got {priority[:40]!r}")
        text = given("text")
        if text is not None and len(text) > MAX_TEXT:
            raise InvalidParameters(prefix + "text", f"at most {MAX_TEXT} characters")
        created_from, created_to = _time(prefix + "from", given("from")), _time(prefix + "to", given("to"))
        scheduled = given("scheduled")
        if scheduled not in (None, "true", "false"):
            raise InvalidParameters(prefix + "scheduled", f"must be true or false, got {scheduled[:40]!r}")
        ids = {name: given(name) for name in ("schedule_id", "source_task_id")}
        for name, value in ids.items():
            if value is not None and not (len(value) <= 36 and set(value) <= ID_CHARS | {"-"}):
                raise InvalidParameters(prefix + name, f"must be an id, got {value[:40]!r}")
        return cls(status=status.upper() if status else None, task_type=task_type, id_prefix=id_prefix or None,
                   priority=priority, text=text, created_from=created_from, created_to=created_to,
                   scheduled=scheduled == "true", **ids)

    @property
    def counted(self) -> bool:
        """True when `task_counts` holds the total (status and type only)."""
        return not self.scheduled and all(getattr(self, f.name) is None for f in fields(self)
                                          if f.name not in ("status", "task_type", "scheduled"))

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def _time(field: str, raw: str | None) -> datetime | None:
    if raw is None:
        return None
    if "T" in raw and raw.count(" ") == 1:  # a `+01:00` offset in a query string not percent-encoded
        raw = raw.replace(" ", "+")
    try:
        when = datetime.fromisoformat(raw)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):  # not a date, or beyond the calendar's ends once in UTC
        raise InvalidParameters(field, f"must be an ISO 8601 date or date and time, got {raw[:40]!r}") from None
