"""The JSON shapes on the wire (task, events), typed once and encoded in one place."""

import json
from typing import Any, Literal, NamedTuple, NotRequired, TypedDict

import orjson

from app.core.clock import utcnow
from app.core.status import FINAL, Change, Status


class TimelineEntry(TypedDict, total=False):
    status: str
    at: str
    attempt: int
    message: str


def entry(status: Status, **extra: Any) -> TimelineEntry:
    """A timeline entry for a change made now."""
    return {"status": status.value, "at": utcnow().isoformat(), **extra}  # type: ignore[typeddict-item]


class TaskDict(TypedDict):
    id: str
    task_type: str
    status: str
    parameters: dict[str, Any]
    progress: float
    stage: str | None
    result_data: dict[str, Any] | None
    error_message: str | None
    error_traceback: str | None
    created_at: str
    started_at: str | None
    completed_at: str | None
    updated_at: str
    attempts: int
    dispatch: int
    seq: int
    cancel_requested: bool
    worker: str | None
    timeline: list[TimelineEntry]
    max_attempts: int | None
    attempts_base: int | None
    timeout: float | None
    next_run_at: str | None
    idempotency_key: str | None
    priority: str
    run_at: str | None
    schedule_id: str | None
    source_task_id: str | None
    callback_url: str | None
    truncated: NotRequired[list[str]]  # in lists and live frames: the fields cut short (`brief`)


class WebhookAttempt(TypedDict):
    attempt: int
    at: str
    status_code: int | None  # None: no answer (timeout, connection refused)
    error: str | None  # None: delivered (a 2xx)
    duration_ms: float


class WebhookDelivery(TypedDict):
    id: str
    task_id: str
    seq: int  # of the change that ended the task
    hook: str  # task (its callback_url) | global (WEBHOOK_URL)
    url: str  # the global hook's only up to its host
    event: str
    status: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None
    history: list[WebhookAttempt]


class ScheduleDict(TypedDict):
    id: str
    name: str
    task_type: str
    parameters: dict[str, Any]
    priority: str
    cron: str | None
    interval: float | None
    timezone: str
    paused: bool
    next_run_at: str | None  # the tick due next; null while paused
    last_run_at: str | None
    last_task_id: str | None
    runs: int
    created_at: str
    updated_at: str


WorkerState = Literal["live", "lost", "stopped"]


class WorkerDict(TypedDict):
    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    task_types: list[str]  # the types it serves (its BUILTIN_TASKS and TASK_MODULES)
    started: float  # unix seconds, like every time here
    last_heartbeat: float
    running: list[str]  # task ids, as of the last heartbeat
    completed: int  # attempts it ended with SUCCESS since it started
    failed: int  # attempts it ended with FAILED, or with a retry to come
    state: WorkerState
    stopped: float | None  # when it stopped cleanly


class LogLine(TypedDict):
    n: int  # increasing per task: clients merge history and live lines by it
    at: str
    attempt: int
    line: str


def logs_frame(task_id: str, lines: list[LogLine], next: int | None = None) -> str:
    """Live lines, or a page of stored ones; `next`: more are stored, ask for those after it."""
    if next is None:
        return dumps({"type": "logs", "task_id": task_id, "lines": lines})
    return dumps({"type": "logs", "task_id": task_id, "lines": lines, "next": next})


def dumps(value: object) -> str:
    """JSON, compact, as UTF-8 text: the one path every frame, event, stored JSON column and API answer
    takes. orjson, several times faster than `json` on tasks; `json` for what orjson refuses (integers
    beyond 64 bits, lone surrogates, keys that are not strings), which it writes as before. A NaN or an
    infinity becomes null (what reaches here has been checked: parameters and results refuse them)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    """`dumps`' reverse: orjson, or `json` for what only it reads (NaN written by an older version)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


# A task in a list page or a live frame stays under BRIEF_MAX bytes of JSON, so no frame comes near 256 KiB
# (a default client's limit is 1 MiB): each large field is cut to about FIELD_MAX and named in `truncated`.
# GET /api/tasks/{id} gives the whole task.
BRIEF_MAX = 128 * 1024
FIELD_MAX = 24 * 1024
LARGE_FIELDS = ("parameters", "result_data", "error_message", "error_traceback")
PART_MAX = 1024  # bytes of JSON of one value of a cut object; a longer one is replaced by a note


def task_frame(task: TaskDict, change: Change) -> str:
    frame = dumps({"type": "task", "seq": task["seq"], "change": change, "task": task})
    if utf8_size(frame) <= BRIEF_MAX:
        return frame
    return dumps({"type": "task", "seq": task["seq"], "change": change, "task": _cut(task)})


def brief(task: TaskDict) -> TaskDict:
    """The task as lists and live frames carry it: whole when its JSON fits BRIEF_MAX, else with its
    large fields cut short and named in `truncated`."""
    return task if utf8_size(dumps(task)) <= BRIEF_MAX else _cut(task)


def _cut(task: TaskDict) -> TaskDict:
    cut = [name for name in LARGE_FIELDS if task.get(name) is not None and utf8_size(dumps(task.get(name))) > FIELD_MAX]
    if not cut:
        return task
    return {**task, **{name: _shortened(task[name], FIELD_MAX) for name in cut}, "truncated": cut}  # type: ignore


def _shortened(value: Any, budget: int) -> Any:
    """A string's start, or an object's first entries (each long value replaced by a note) within `budget`."""
    if isinstance(value, str):
        return value[:budget // 4] + " …"  # a character is at most 4 bytes
    if not isinstance(value, dict):
        return f"… {utf8_size(dumps(value))} bytes of JSON: open the task to see them"
    kept: dict[str, Any] = {}
    used = 0
    for number, (key, item) in enumerate(value.items()):
        size = utf8_size(dumps(item))
        if size > PART_MAX:
            item = _shortened(item, PART_MAX) if isinstance(item, str) else f"… {size} bytes of JSON"
            size = PART_MAX
        used += utf8_size(dumps(key)) + size + 2  # the key quoted, a colon and a comma
        if used > budget:
            kept["…"] = f"{len(value) - number} more entries: open the task to see them"
            break
        kept[key] = item
    return kept


def utf8_size(text: str) -> int:
    """Bytes of `text` as UTF-8, without encoding it when it is ASCII (as JSON from `dumps` mostly is:
    str.isascii() reads a flag)."""
    return len(text) if text.isascii() else len(text.encode())


def hello_frame(seq: int) -> str:
    return dumps({"type": "hello", "seq": seq})


class Event(NamedTuple):
    """One change as the web processes receive it from Redis: routing fields plus the client frame.

    The routing fields travel in a short header before the frame so that the fan-out never has to
    parse a (possibly large) task to route it.
    """

    seq: int
    change: str  # a Change, "deleted", or "skip" for a sequence number whose write did not happen
    task_id: str
    status: str
    frame: str
    wire: bytes = b""  # the frame as a complete WebSocket frame, built once for every client

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @property
    def coalescable(self) -> bool:
        return self.change == "progress"


def encode_event(task: TaskDict, change: Change) -> str:
    return f"{task['seq']}|{change}|{task['id']}|{task['status']}|{task_frame(task, change)}"


def event_of(task: TaskDict, change: Change) -> Event:
    """The event of a change read from the database (a gap being repaired): as if it had been published."""
    frame = task_frame(task, change)
    return Event(task["seq"], change, task["id"], task["status"], frame, websocket_frame(frame))


def encode_deleted(seq: int, task_ids: list[str]) -> str:
    """Tasks removed (bulk delete, retention): one event for many, so a big removal is one frame."""
    return f"{seq}|deleted||DELETED|{dumps({'type': 'deleted', 'seq': seq, 'task_ids': task_ids})}"


def encode_skip(seq: int) -> str:
    return f"{seq}|skip|||"


def decode_event(payload: str) -> Event:
    seq, change, task_id, status, frame = payload.split("|", 4)
    return Event(int(seq), change, task_id, status, frame, websocket_frame(frame))


def websocket_frame(text: str) -> bytes:
    """`text` as one unmasked, uncompressed WebSocket text frame, as a server writes it."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload
