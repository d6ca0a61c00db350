"""The OpenAPI document's component schemas: the wire types (core/wire.py), each task type's parameters,
the submit body and the other bodies and answers."""

from collections.abc import Mapping
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints, is_typeddict

from app.core.priority import Priority
from app.core.status import Status
from app.core.wire import LogLine, ScheduleDict, TaskDict, WebhookDelivery, WorkerDict
from app.lifecycle.new_task import DELAY, MAX_ATTEMPTS, TIMEOUT
from app.metrics.series import WINDOWS
from app.schedules.rules import CRON_MAX, INTERVAL, NAME, PAUSED
from app.tasks.base import TaskType
from app.tasks.params import Param
from app.web.tasks import MAX_BATCH
from app.webhooks.urls import MAX_URL

Schema = dict[str, Any]
JSON_TYPES: dict[object, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                                 dict: "object", list: "array", NoneType: "null"}
HEX_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def type_schema(hint: object) -> Schema:
    """A Python annotation of the wire types as JSON Schema."""
    if is_typeddict(hint):  # left open: timeline entries carry more than TimelineEntry names (a worker)
        return typed_dict_schema(hint, closed=False)
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        options = [type_schema(arg) for arg in args]
        if all(set(option) == {"type"} for option in options):
            return {"type": [option["type"] for option in options]}
        return {"anyOf": options}
    if origin is list:
        return {"type": "array", "items": type_schema(args[0])}
    if origin is dict:
        return {"type": "object"}
    return {"type": JSON_TYPES[hint]} if hint in JSON_TYPES else {}


def typed_dict_schema(typed: Any, *, closed: bool = True) -> Schema:
    properties = {name: type_schema(hint) for name, hint in get_type_hints(typed).items()}
    for name, schema in properties.items():
        if name.endswith("_at"):
            schema["format"] = "date-time"
    schema: Schema = {"type": "object", "properties": properties, "required": sorted(typed.__required_keys__)}
    return {**schema, "additionalProperties": False} if closed else schema


def task_schema() -> Schema:
    schema = typed_dict_schema(TaskDict)
    props = schema["properties"]
    props["id"] = HEX_ID
    props["status"] = {"enum": list(Status)}
    props["progress"].update(minimum=0, maximum=100)
    props["priority"] = {"enum": list(Priority)}
    # Added by GET (one task, or the list) for tasks still waiting in the queue; 1 = next.
    props["queue_position"] = {"type": ["integer", "null"], "minimum": 1}
    return schema


def parameter_schema(param: Param) -> Schema:
    """One task parameter as JSON Schema, from the same `describe()` the dashboard's form is built from."""
    d = param.describe()
    bounds = {"minimum": d.get("minimum"), "maximum": d.get("maximum")}
    match d["type"]:
        case "integer" | "number":
            schema: Schema = {"type": d["type"], **bounds}
        case "string":
            schema = {"type": "string", "maxLength": d["max_length"], "minLength": d["min_length"]}
            if not d["multiline"]:
                schema["pattern"] = "^[^\\r\\n]*$"
        case "choice":
            schema = {"enum": d["choices"]}
        case "boolean":
            schema = {"type": "boolean"}
        case "size":  # [width, height], or one integer for a square
            side = {"type": "integer", **bounds}
            schema = {"oneOf": [side, {"type": "array", "items": side, "minItems": 2, "maxItems": 2}]}
        case "list":  # maxLength applies to the string items only
            item = {"type": ["string", "number", "boolean", "null"], "maxLength": d["item_max_length"]}
            schema = {"type": "array", "items": item, "maxItems": d["max_items"]}
        case "uploads":
            schema = {"type": "array", "items": HEX_ID, "maxItems": d["max_items"],
                      "x-upload-kind": d["kind"]}
        case other:
            raise ValueError(f"no JSON Schema for parameter type {other!r}: map it in web/schemas.py")
    return {**schema, "default": d["default"], "description": d["description"]}


OPTIONS: Schema = {
    "priority": {"enum": list(Priority), "default": Priority.DEFAULT.value,
                 "description": "Queued higher-priority tasks start before lower ones."},
    "run_at": {"type": ["string", "null"],
               "description": "Start no earlier than this (ISO 8601 with an offset, at most 366 days ahead); "
                              "not with `delay`; null: at once."},
    "delay": {"type": ["number", "null"], "minimum": DELAY.minimum, "maximum": DELAY.maximum,
              "description": DELAY.description},
    "callback_url": {"type": ["string", "null"], "maxLength": MAX_URL, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
                     "description": "An absolute http(s) URL that gets a signed POST on each final state the "
                                    "task reaches (a 422 when the server has no WEBHOOK_SECRET, or for a private "
                                    "address unless WEBHOOK_ALLOW_PRIVATE); null: none."},
}


LIMITS: Schema = {
    "max_attempts": {"type": ["integer", "null"], "minimum": MAX_ATTEMPTS.minimum,
                     "maximum": MAX_ATTEMPTS.maximum, "description": MAX_ATTEMPTS.description},
    "timeout": {"type": ["number", "null"], "minimum": TIMEOUT.minimum, "maximum": TIMEOUT.maximum,
                "description": TIMEOUT.description},
}


def submit_schema(types: Mapping[str, TaskType]) -> Schema:
    return {"oneOf": [
        {"title": kind.name, "type": "object", "required": ["task_type"], "additionalProperties": False,
         "properties": {
             "task_type": {"const": kind.name},
             "parameters": {"type": "object", "additionalProperties": False, "description": kind.description,
                            "properties": {name: parameter_schema(p) for name, p in kind.params.items()}},
             **LIMITS, **OPTIONS}}
        for kind in types.values()
    ]}


def components(types: Mapping[str, TaskType]) -> Schema:
    counts = {"type": "object", "properties": {s: {"type": "integer", "minimum": 0} for s in Status},
              "required": list(Status), "additionalProperties": False}
    integer, string, boolean = {"type": "integer"}, {"type": "string"}, {"type": "boolean"}
    described = {"type": "object", "properties": {
        "type": {"enum": ["integer", "number", "string", "choice", "boolean", "size", "list", "uploads"]},
        "default": {}, "description": string, "minimum": {"type": "number"}, "maximum": {"type": "number"},
        "max_length": integer, "min_length": integer, "multiline": boolean, "max_items": integer,
        "item_max_length": integer, "kind": string, "choices": {"type": "array", "items": string}},
        "required": ["type", "default", "description"], "additionalProperties": False}
    check = {"type": "object", "required": ["ok"], "properties": {"ok": boolean}}
    return {"schemas": {
        "Task": task_schema(),
        "Error": {"type": "object", "properties": {"detail": string, "field": string}, "required": ["detail"],
                  "additionalProperties": False},
        "Counts": counts,
        "TaskList": closed_object(tasks={"type": "array", "items": ref("Task")}, total=integer, limit=integer,
                            offset=integer, counts=ref("Counts"), seq=integer,
                            next={"type": ["string", "null"], "description": "`after` for the next page; null: none"}),
        "Stats": closed_object(counts=ref("Counts"), seq=integer),
        "TaskTypes": closed_object(task_types={"type": "array", "items": closed_object(
            name={"enum": list(types)}, description=string, timeout={"type": "number"}, max_attempts=integer,
            parameters={"type": "object", "additionalProperties": described})}),
        "Submit": submit_schema(types),
        "Batch": {"type": "object", "required": ["tasks"], "additionalProperties": False, "properties": {
            "tasks": {"type": "array", "items": ref("Submit"), "minItems": 1, "maxItems": MAX_BATCH}}},
        "TaskBatch": closed_object(tasks={"type": "array", "items": ref("Task")}),
        "BulkOutcome": closed_object(action={"enum": ["cancel", "retry", "delete"]}, dry_run=boolean,
                               matched=integer, eligible=integer, applied={"type": ["integer", "null"]},
                               skipped={"type": ["integer", "null"]}),
        "Health": closed_object(status={"enum": ["ok", "unavailable"]}, redis=check, database=check,
                          workers=closed_object(ok=boolean, live=integer),
                          events=closed_object(ok=boolean, seq=integer, clients=integer),
                          detail=string) | {"required": ["status", "redis", "database", "workers", "events"]},
        "Upload": closed_object(id=HEX_ID, filename=string, content_type=string, kind={"enum": ["csv", "image"]},
                          size={"type": "integer", "minimum": 1},
                          sha256={"type": "string", "pattern": "^[0-9a-f]{64}$"}),
        "WorkerList": closed_object(workers={"type": "array", "items": worker_schema()},
                              heartbeat_interval={"type": "number"}, heartbeat_ttl={"type": "number"},
                              now={"type": "number", "description": "Unix seconds, the server's clock"}),
        "Logs": closed_object(task_id=string, lines={"type": "array", "items": typed_dict_schema(LogLine)}),
        "Series": series_schema(),
        "Webhooks": closed_object(task_id=string, deliveries={"type": "array", "items": webhook_schema()}),
        **schedule_schemas(types),
    }}


def worker_schema() -> Schema:
    schema = typed_dict_schema(WorkerDict)
    schema["properties"]["state"] = {"enum": ["live", "lost", "stopped"], "description": (
        "live: heart-beating; lost: silent past its heartbeat TTL (its tasks are recovered); stopped: "
        "stopped cleanly (listed for a while)")}
    return schema


def webhook_schema() -> Schema:
    schema = typed_dict_schema(WebhookDelivery)
    schema["properties"].update(hook={"enum": ["task", "global"]}, status={"enum": ["pending", "delivered", "failed"]},
                                event={"enum": ["task.succeeded", "task.failed", "task.cancelled"]})
    return schema


def series_schema() -> Schema:
    """The charts' figures per minute (metrics/series.py): every list holds one value per bucket."""
    integer, seconds = {"type": "integer", "minimum": 0}, {"type": "number", "minimum": 0}
    per_minute = {"type": "array", "items": integer}
    maybe = {"type": "array", "items": {"type": ["number", "null"], "minimum": 0}}
    return closed_object(
        window={"enum": list(WINDOWS)}, step={"const": 60}, start=integer, now=seconds,
        buckets=per_minute | {"description": "Unix seconds of each minute, oldest first; the last is the current one"},
        succeeded=per_minute, failed=per_minute, wait_p50=maybe, wait_p95=maybe,
        queue_depth={"type": "array", "items": {"type": ["integer", "null"], "minimum": 0}},
        run_time={"type": "array", "items": closed_object(task_type={"type": "string"}, count=integer, p50=seconds,
                                                    p95=seconds)},
        queue_depth_now=integer, workers_live=integer)


def schedule_schemas(types: Mapping[str, TaskType]) -> Schema:
    """A schedule, and the body that creates (task_type required) or edits one (schedules/rules.py)."""
    schedule = typed_dict_schema(ScheduleDict)
    schedule["properties"].update(id=HEX_ID, priority={"enum": list(Priority)},
                                  runs={"type": "integer", "minimum": 0}, last_task_id=HEX_ID | {"type": ["string", "null"]})
    fields = {
        "name": {"type": ["string", "null"], "maxLength": NAME.max_length, "pattern": "^[^\\r\\n]*$",
                 "description": NAME.description},
        "task_type": {"enum": list(types)},
        "parameters": {"type": "object", "description": "The task type's parameters, checked as on submit."},
        "priority": {"enum": list(Priority), "default": Priority.DEFAULT.value},
        "cron": {"type": ["string", "null"], "maxLength": CRON_MAX,
                 "description": "Five fields (minute hour day-of-month month day-of-week), in `timezone`; "
                                "or `interval`, not both."},
        "interval": {"type": ["number", "null"], "minimum": INTERVAL.minimum, "maximum": INTERVAL.maximum,
                     "description": INTERVAL.description},
        "timezone": {"type": "string", "minLength": 1, "maxLength": 64, "default": "UTC",
                     "description": "IANA time zone the cron expression is read in."},
        "paused": {"type": "boolean", "description": PAUSED.description},
    }
    body = {"type": "object", "additionalProperties": False, "properties": fields}
    return {"Schedule": schedule, "ScheduleList": closed_object(schedules={"type": "array", "items": ref("Schedule")}),
            "ScheduleCreate": {**body, "required": ["task_type"]}, "ScheduleEdit": body}


def closed_object(**properties: Schema) -> Schema:
    """A closed object whose every property is present."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
