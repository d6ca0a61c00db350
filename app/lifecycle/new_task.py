"""A new task's row, and the submit options beside its parameters (attempts, time limit, priority,
a start time, a webhook), checked the same way for a submit, a batch item, a re-run and a schedule's tick."""

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from app.core.clock import utcnow
from app.core.errors import InvalidParameters, NotFound
from app.core.priority import Priority
from app.core.status import Status
from app.core.validation import check
from app.core.wire import entry
from app.store.uploads import UploadStore
from app.tasks import TaskType, images
from app.tasks.schema import upload_fields
from app.webhooks.urls import callback_url

# The options a submit may give beside its parameters, as types: checked here, described in the API.
MaxAttempts = Annotated[int, Field(ge=1, le=20, strict=True, description="Attempts before the task ends FAILED.")]
TIMEOUT_MAX = 86_400.0  # seconds: the longest time limit a submit may set
Timeout = Annotated[float, Field(ge=0.1, le=TIMEOUT_MAX, strict=True, allow_inf_nan=False,
                                 description="Seconds one attempt may run.")]
Delay = Annotated[float, Field(ge=0.0, le=366 * 86_400.0, strict=True, allow_inf_nan=False,
                               description="Seconds from now before the task may start.")]
MAX_ATTEMPTS, TIMEOUT, DELAY = TypeAdapter(MaxAttempts), TypeAdapter(Timeout), TypeAdapter(Delay)
MAX_AHEAD = timedelta(days=366)  # the furthest `run_at` may lie in the future
KIND_NAMES = {"csv": "a CSV file", "image": "an image"}
OPTION_FIELDS = frozenset({"max_attempts", "timeout", "priority", "run_at", "delay", "callback_url"})


PRIORITIES = frozenset(Priority)


def priority(value: object, field: str = "priority") -> str:
    if not isinstance(value, str) or value not in PRIORITIES:
        raise InvalidParameters(field, f"must be one of {', '.join(Priority)}, got {str(value)[:40]!r}")
    return str(value)


def start_time(run_at: object, delay: object) -> datetime | None:
    """When the task may start: `run_at` (ISO 8601 with an offset) or `delay` seconds from now;
    None for at once. A time in the past means at once too."""
    if run_at is not None and delay is not None:
        raise InvalidParameters("run_at", "give run_at or delay, not both")
    if delay is not None:
        seconds = check(DELAY, "delay", delay)
        return utcnow() + timedelta(seconds=seconds) if seconds else None
    if run_at is None:
        return None
    if not isinstance(run_at, str):
        raise InvalidParameters("run_at", "must be an ISO 8601 date and time string")
    try:
        when = datetime.fromisoformat(run_at)
        if when.tzinfo is None:
            raise InvalidParameters("run_at", "needs a UTC offset (e.g. Z or +01:00): a bare time is ambiguous")
        when = when.astimezone(UTC)
    except (ValueError, OverflowError):  # not a date, or beyond the calendar's ends once in UTC
        raise InvalidParameters("run_at", f"must be ISO 8601 (e.g. 2026-12-24T18:00:00Z), got {run_at[:40]!r}") from None
    if when > utcnow() + MAX_AHEAD:
        raise InvalidParameters("run_at", f"may be at most {MAX_AHEAD.days} days ahead")
    return when


def checked_parameters(kind: TaskType, raw: object, uploads: UploadStore) -> dict[str, object]:
    """A task's parameters as its type's schema checks them (defaults filled in), each upload they
    name existing and of the kind the parameter takes; InvalidParameters names the field."""
    return checked_uploads(kind, kind.validate(raw), uploads)


def checked_uploads(kind: TaskType, params: dict[str, Any], uploads: UploadStore) -> dict[str, Any]:
    """Validated parameters whose uploads exist and are of the kind each parameter takes."""
    for name, file_kind in upload_fields(kind.parameters).items():
        given = params[name]  # an id, a list of them, or None (an optional upload left out)
        for upload_id in [given] if isinstance(given, str) else given or []:
            try:
                upload = uploads.use(upload_id)  # marked: a removal running now keeps it
            except NotFound:
                raise InvalidParameters(name, f"unknown upload {upload_id!r}") from None
            if upload.kind != file_kind:
                raise InvalidParameters(
                    name, f"upload {upload_id!r} ({upload.filename}) is {KIND_NAMES[upload.kind]}, not "
                    f"{KIND_NAMES[file_kind]}")
            if file_kind == "image" and (refused := images.too_large(upload.path, upload.filename,
                                                                     uploads.image_max_pixels)):
                raise InvalidParameters(name, refused)
    return params


def task_row(task_type: str, parameters: dict[str, Any], options: Mapping[str, Any] | None = None, *,
             schedule_id: str | None = None, source_task_id: str | None = None, signed: bool = False,
             allow_private: bool = False) -> dict[str, Any]:
    """The row of a new PENDING task, its options checked (422 naming the field); `signed`: webhooks can
    be signed here (WEBHOOK_SECRET is set), so a `callback_url` is accepted; `allow_private`: it may
    point at a private address (WEBHOOK_ALLOW_PRIVATE)."""
    options = options or {}
    max_attempts, timeout = options.get("max_attempts"), options.get("timeout")
    when = start_time(options.get("run_at"), options.get("delay"))
    now = utcnow()
    timeline = entry(Status.PENDING, message=f"scheduled for {when.isoformat()}") if when else entry(Status.PENDING)
    return {
        "id": uuid.uuid4().hex, "task_type": task_type, "status": Status.PENDING.value, "parameters": parameters,
        "progress": 0.0, "created_at": now, "updated_at": now, "attempts": 0, "dispatch": 1,
        "cancel_requested": False, "timeline": [timeline],
        "max_attempts": None if max_attempts is None else check(MAX_ATTEMPTS, "max_attempts", max_attempts),
        "timeout": None if timeout is None else check(TIMEOUT, "timeout", timeout),
        "priority": priority(options.get("priority", Priority.DEFAULT.value)),
        "run_at": when, "next_run_at": when, "schedule_id": schedule_id, "source_task_id": source_task_id,
        "idempotency_key": None, "request_hash": None,
        "callback_url": callback_url(options.get("callback_url"), signed=signed, allow_private=allow_private),
    }
