"""The OpenAPI document's component schemas: the wire types (core/wire.py), each task type's parameters,
the submit body and the other bodies and answers."""

from collections.abc import Mapping
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import models_json_schema

from app.core.priority import Priority
from app.core.status import Status
from app.core.wire import LARGE_FIELDS, LogLine, ScheduleDict, TaskDict, WebhookDelivery, WorkerDict
from app.lifecycle.new_task import Delay, MaxAttempts, Timeout
from app.metrics.series import WINDOWS
from app.schedules.rules import CRON_MAX, INTERVAL, NAME, PAUSED
from app.tasks import TaskType
from app.tasks.schema import TaskDefinitionError, camel
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
    props["truncated"] = {"type": "array", "items": {"enum": list(LARGE_FIELDS)}, "description": (
        "In lists and WebSocket frames, the fields cut short (a large task): GET /api/tasks/{id} has them whole.")}
    return schema


OPTION_TYPES: dict[str, Any] = {
    "max_attempts": (MaxAttempts | None, None),
    "timeout": (Timeout | None, None),
    "priority": (Priority, Field(Priority.DEFAULT, description="Queued higher-priority tasks start before lower "
                                                                 "ones.")),
    "run_at": (str | None, Field(None, description="Start no earlier than this (ISO 8601 with an offset, at most "
                                                   "366 days ahead); not with `delay`; null: at once.")),
    "delay": (Delay | None, None),
    "callback_url": (str | None, Field(None, max_length=MAX_URL, pattern="^[Hh][Tt][Tt][Pp][Ss]?://", description=(
        "An absolute http(s) URL that gets a signed POST on each final state the task reaches (a 422 when the "
        "server has no WEBHOOK_SECRET, or for a private address unless WEBHOOK_ALLOW_PRIVATE); null: none."))),
}


def submit_model(kind: TaskType) -> type[BaseModel]:
    """The body that submits a task of this type: `task_type`, its `parameters` (the type's own model:
    a component `<Type>Parameters`) and the options."""
    required = any(field.is_required() for field in kind.parameters.model_fields.values())
    parameters = (kind.parameters, Field(... if required else {}, description=kind.description))
    return create_model(f"{camel(kind.name)}Submit", __config__=ConfigDict(extra="forbid"),
                        task_type=(Literal[kind.name], ...), parameters=parameters, **OPTION_TYPES)  # type: ignore[call-overload]


def submit_schemas(types: Mapping[str, TaskType]) -> dict[str, Schema]:
    """`Submit`, a `oneOf` of the named `<Type>Submit` components told apart by `task_type`, with those
    components and the `<Type>Parameters` they refer to; and `Rerun`, the changes a re-run may make."""
    models = {name: submit_model(kind) for name, kind in types.items()}
    rerun = create_model("Rerun", __config__=ConfigDict(extra="forbid"), **OPTION_TYPES,  # type: ignore[call-overload]
                         parameters=(dict[str, Any] | None, Field(None, description=(
                             "New parameters, replacing the earlier task's whole (checked as on submit)"))))
    _, found = models_json_schema([(model, "validation") for model in [*models.values(), rerun]],
                                  ref_template="#/components/schemas/{model}")
    named = {name: f"#/components/schemas/{model.__name__}" for name, model in models.items()}
    return {**found.get("$defs", {}), "Submit": {
        "oneOf": [{"$ref": target} for target in named.values()],
        "discriminator": {"propertyName": "task_type", "mapping": named},
        "description": "A task to submit: its type, the type's parameters (defaults for those left out) and "
                       "options."}}


def components(types: Mapping[str, TaskType]) -> Schema:
    counts = {"type": "object", "properties": {s: {"type": "integer", "minimum": 0} for s in Status},
              "required": list(Status), "additionalProperties": False}
    integer, string, boolean = {"type": "integer"}, {"type": "string"}, {"type": "boolean"}
    described = {"type": "object", "properties": {
        "type": {"enum": ["integer", "number", "string", "choice", "boolean", "size", "list", "uploads", "json"]},
        "title": string, "description": string, "required": boolean, "default": {},
        "minimum": {"type": ["number", "null"]}, "maximum": {"type": ["number", "null"]},
        "max_length": {"type": ["integer", "null"]}, "min_length": integer, "multiline": boolean,
        "max_items": {"type": ["integer", "null"]}, "kind": string, "many": boolean,
        "choices": {"type": "array", "items": {}},
        "schema": {"type": "object"}},
        "required": ["type", "title", "description", "required"], "additionalProperties": False,
        "description": "One parameter as a form asks for it (the `schema` of its type has it all)."}
    check = {"type": "object", "required": ["ok"], "properties": {"ok": boolean}}
    fixed = {
        "Task": task_schema(),
        "Error": {"type": "object", "properties": {"detail": string, "field": string}, "required": ["detail"],
                  "additionalProperties": False},
        "Counts": counts,
        "TaskList": closed_object(tasks={"type": "array", "items": ref("Task")}, total=integer, limit=integer,
                            offset=integer, counts=ref("Counts"), seq=integer,
                            next={"type": ["string", "null"], "description": "`after` for the next page; null: none"}),
        "Stats": closed_object(counts=ref("Counts"), seq=integer),
        "TaskTypeList": closed_object(task_types={"type": "array", "items": closed_object(
            name={"enum": list(types)}, description=string, timeout={"type": "number"}, max_attempts=integer,
            executor={"enum": ["async", "thread", "process"]}, module=string,
            parameters={"type": "object", "additionalProperties": described},
            schema={"type": "object", "description": "The JSON Schema of the type's parameters"})}),

        "Batch": {"type": "object", "required": ["tasks"], "additionalProperties": False, "properties": {
            "tasks": {"type": "array", "items": ref("Submit"), "minItems": 1, "maxItems": MAX_BATCH}}},
        "TaskBatch": closed_object(tasks={"type": "array", "items": ref("Task")}),
        "BulkOutcome": closed_object(action={"enum": ["cancel", "retry", "delete"]}, dry_run=boolean,
                               matched=integer, eligible=integer, applied={"type": ["integer", "null"]},
                               skipped={"type": ["integer", "null"]}),
        "QueueState": closed_object(queue=string, paused=boolean,
                                    paused_at={"type": ["string", "null"], "format": "date-time"}),
        "Health": closed_object(status={"enum": ["ok", "unavailable"]}, redis=check, database=check,
                          workers=closed_object(ok=boolean, live=integer),
                          events=closed_object(ok=boolean, seq=integer, clients=integer),
                          queue=closed_object(queue=string, paused={"type": ["boolean", "null"]},
                                              paused_at={"type": ["string", "null"]}),
                          detail=string) | {"required": ["status", "redis", "database", "workers", "events", "queue"]},
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
    }
    generated = submit_schemas(types)
    if clash := sorted(set(fixed) & set(generated)):
        raise TaskDefinitionError(f"a task type's parameters use a model named {clash[0]!r}, the name of one of the "
                                  "API's own schemas: rename that model")
    return {"schemas": {**fixed, **generated}}


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
        queue_depth={"type": "array", "items": {"type": ["integer", "null"], "minimum": 0},
                     "description": "The most jobs waiting at once in each minute; null: not observed"},
        queue_depth_mean={"type": "array", "items": {"type": ["number", "null"], "minimum": 0},
                          "description": "The mean of the workers' samples in each minute; null: no sample"},
        run_time={"type": "array", "items": closed_object(
            task_type={"type": "string"}, count=integer, p50=seconds, p95=seconds,
            max={"type": ["number", "null"], "minimum": 0,
                 "description": "The longest run; null if not recorded for every minute (older figures)"})},
        queue_depth_now=integer, workers_live=integer)


def schedule_schemas(types: Mapping[str, TaskType]) -> Schema:
    """A schedule, and the body that creates (task_type required) or edits one (schedules/rules.py)."""
    schedule = typed_dict_schema(ScheduleDict)
    schedule["properties"].update(id=HEX_ID, priority={"enum": list(Priority)},
                                  runs={"type": "integer", "minimum": 0}, last_task_id=HEX_ID | {"type": ["string", "null"]})
    fields = {
        "name": {**NAME.json_schema(), "type": ["string", "null"]},
        "task_type": {"enum": list(types)},
        "parameters": {"type": "object", "description": "The task type's parameters, checked as on submit."},
        "priority": {"enum": list(Priority), "default": Priority.DEFAULT.value},
        "cron": {"type": ["string", "null"], "maxLength": CRON_MAX,
                 "description": "Five fields (minute hour day-of-month month day-of-week), in `timezone`; "
                                "or `interval`, not both."},
        "interval": {**INTERVAL.json_schema(), "type": ["number", "null"]},
        "timezone": {"type": "string", "minLength": 1, "maxLength": 64, "default": "UTC",
                     "description": "IANA time zone the cron expression is read in."},
        "paused": PAUSED.json_schema(),
    }
    body = {"type": "object", "additionalProperties": False, "properties": fields}
    return {"Schedule": schedule, "ScheduleList": closed_object(schedules={"type": "array", "items": ref("Schedule")}),
            "ScheduleCreate": {**body, "required": ["task_type"]}, "ScheduleEdit": body}


def closed_object(**properties: Schema) -> Schema:
    """A closed object whose every property is present."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
