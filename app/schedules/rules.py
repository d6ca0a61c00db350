"""Recurring tasks: a schedule's JSON shape, the check of a create or edit body, and its ticks.

A schedule fires on a cron expression (five fields, read in the schedule's IANA time zone) or every
`interval` seconds. Only the tick due next is stored (`next_run_at`); ticks missed while no worker
ran are not made up one by one: the due tick runs once and the next is the first one still ahead.
"""

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError
from pydantic import Field, TypeAdapter

from app.core.clock import utcnow
from app.core.errors import InvalidParameters
from app.core.validation import SINGLE_LINE, check
from app.core.wire import ScheduleDict
from app.lifecycle.new_task import checked_parameters, priority
from app.store.uploads import UploadStore
from app.tasks import TaskTypes

NAME = TypeAdapter(Annotated[str, Field(max_length=200, pattern=SINGLE_LINE, strict=True,
                                        description="Shown in the dashboard; the task type when left empty.")])
INTERVAL = TypeAdapter(Annotated[float, Field(ge=1.0, le=366 * 86_400.0, strict=True, allow_inf_nan=False,
                                              description="Seconds between runs.")])
PAUSED = TypeAdapter(Annotated[bool, Field(strict=True, description="A paused schedule does not run.")])
CRON_MAX = 200  # characters of a cron expression
FIELDS = frozenset({"name", "task_type", "parameters", "priority", "cron", "interval", "timezone", "paused"})


def zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not 0 < len(name) <= 64:
        raise InvalidParameters("timezone", "must be an IANA time zone name such as UTC or Europe/Paris")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidParameters("timezone", f"unknown time zone {name[:64]!r} (IANA names: UTC, Europe/Paris, …)") from None


def next_tick(cron: str | None, interval: float | None, timezone: str, after: datetime) -> datetime:
    """The first tick strictly after `after`, in UTC. An interval counts from `after` itself: the
    caller passes the tick just run (or the time of a create, edit or resume)."""
    if interval is not None:
        return after + timedelta(seconds=interval)
    assert cron is not None
    tz = zone(timezone)
    hourly = cron.split()[1] == "*"
    while True:
        tick = croniter(cron, after.astimezone(tz)).get_next(datetime).astimezone(UTC)
        # The hour a clock goes back is lived twice: a schedule at set hours runs in the first pass
        # only (as cron does), one that runs every hour runs in both.
        if hourly or not tick.astimezone(tz).fold:
            return tick  # type: ignore[no-any-return]
        after = tick


def following_tick(cron: str | None, interval: float | None, timezone: str, tick: datetime,
                   now: datetime) -> datetime:
    """The tick after `tick` that is still ahead of `now`: ticks missed meanwhile are skipped."""
    if interval is not None:
        missed = int((now - tick).total_seconds() // interval) if now > tick else 0
        return tick + timedelta(seconds=interval * (missed + 1))
    return next_tick(cron, None, timezone, max(tick, now))


def check_cron(value: object) -> str:
    if not isinstance(value, str) or len(value) > CRON_MAX or len(value.split()) != 5:
        raise InvalidParameters("cron", "must be five fields: minute hour day-of-month month day-of-week")
    if not croniter.is_valid(value):
        raise InvalidParameters("cron", f"not a valid cron expression: {value!r}")
    try:
        croniter(value, utcnow()).get_next(datetime)
    except CroniterError:
        raise InvalidParameters("cron", f"{value!r} never fires") from None
    return " ".join(value.split())


def schedule_values(body: Mapping[str, Any], types: TaskTypes, uploads: UploadStore,
                    current: ScheduleDict | None = None) -> dict[str, Any]:
    """A create body (or an edit's, applied over `current`) as the schedule's columns, checked:
    InvalidParameters names the field. Parameters are checked against the task type's schema as a
    submit checks them (defaults filled in)."""
    merged: dict[str, Any] = {"parameters": {}, "priority": "default", "timezone": "UTC", "paused": False,
                              "cron": None, "interval": None, **(current or {}), **body}
    if "task_type" not in merged:
        raise InvalidParameters("task_type", "required")
    kind = types.named(merged["task_type"])
    if "task_type" in body and current and body["task_type"] != current["task_type"] and "parameters" not in body:
        merged["parameters"] = {}  # another type's parameters mean nothing to this one
    params = checked_parameters(kind, merged["parameters"], uploads)
    cron, interval = merged["cron"], merged["interval"]
    if cron is not None and interval is not None:
        raise InvalidParameters("cron", "give cron or interval, not both (send the other as null to switch)")
    if cron is None and interval is None:
        raise InvalidParameters("cron", "required: a cron expression (five fields), or interval (seconds) instead")
    name = merged.get("name")
    values = {
        "name": kind.name if name in (None, "") else check(NAME, "name", name),
        "task_type": kind.name, "parameters": params,
        "priority": priority(merged["priority"]),
        "cron": None if cron is None else check_cron(cron),
        "interval": None if interval is None else check(INTERVAL, "interval", interval),
        "timezone": merged["timezone"], "paused": check(PAUSED, "paused", merged["paused"]),
    }
    zone(values["timezone"])
    return values


def new_row(values: Mapping[str, Any]) -> dict[str, Any]:
    now = utcnow()
    return {**values, "id": uuid.uuid4().hex, "runs": 0, "created_at": now, "updated_at": now,
            "last_run_at": None, "last_task_id": None, "next_run_at": first_tick(values, now)}


def first_tick(values: Mapping[str, Any], now: datetime) -> datetime | None:
    """When a schedule created, edited or resumed now runs first; None while paused."""
    if values["paused"]:
        return None
    return next_tick(values["cron"], values["interval"], values["timezone"], now)


def when_changes(current: ScheduleDict, values: Mapping[str, Any]) -> bool:
    """Whether an edit moves the next tick: a new timing, or a pause or resume."""
    return any(values[name] != current[name] for name in ("cron", "interval", "timezone", "paused"))
