"""The OpenAPI 3.1 document of the REST API: paths from the app's route table, schemas from the wire
types and from each task type's parameter schema, so neither can drift from the code unnoticed."""

from collections.abc import Iterable, Iterator, Mapping
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints, is_typeddict

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from app.api import MAX_BODY_BYTES, MAX_PAGE
from app.lifecycle import MAX_ATTEMPTS, TIMEOUT
from app.params import Param
from app.status import Status
from app.tasks.base import TaskType
from app.wire import LogLine, TaskDict, TimelineEntry

Schema = dict[str, Any]
JSON_TYPES: dict[object, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                                 dict: "object", list: "array", NoneType: "null"}
HEX_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
# What Python's str.strip() removes: the server trims `q` with it, so the schema must allow exactly that.
SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*"
REASONS = {200: "OK", 201: "Created", 400: "Malformed JSON", 404: "Not found", 409: "Conflict with the task's status",
           413: "Body too large", 415: "Unsupported media type", 422: "Invalid input (`field` names it)",
           503: "A dependency is down"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def type_schema(hint: object) -> Schema:
    """A Python annotation of the wire types as JSON Schema."""
    if is_typeddict(hint):
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
    props["id"] = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
    props["status"] = {"enum": list(Status)}
    props["progress"].update(minimum=0, maximum=100)
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
            raise ValueError(f"no JSON Schema for parameter type {other!r}: map it in app/openapi.py")
    return {**schema, "default": d["default"], "description": d["description"]}


def submit_schema(types: Mapping[str, TaskType]) -> Schema:
    limits = {
        "max_attempts": {"type": ["integer", "null"], "minimum": MAX_ATTEMPTS.minimum,
                         "maximum": MAX_ATTEMPTS.maximum, "description": MAX_ATTEMPTS.description},
        "timeout": {"type": ["number", "null"], "minimum": TIMEOUT.minimum, "maximum": TIMEOUT.maximum,
                    "description": TIMEOUT.description},
    }
    return {"oneOf": [
        {"title": kind.name, "type": "object", "required": ["task_type"], "additionalProperties": False,
         "properties": {
             "task_type": {"const": kind.name},
             "parameters": {"type": "object", "additionalProperties": False, "description": kind.description,
                            "properties": {name: parameter_schema(p) for name, p in kind.params.items()}},
             **limits}}
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
        "Timeline": {"type": "array", "items": typed_dict_schema(TimelineEntry, closed=False)},
        "Error": {"type": "object", "properties": {"detail": string, "field": string}, "required": ["detail"],
                  "additionalProperties": False},
        "Counts": counts,
        "TaskList": _object(tasks={"type": "array", "items": ref("Task")}, total=integer, limit=integer,
                            offset=integer, counts=ref("Counts"), seq=integer),
        "Stats": _object(counts=ref("Counts"), seq=integer),
        "TaskTypes": _object(task_types={"type": "array", "items": _object(
            name={"enum": list(types)}, description=string, timeout={"type": "number"}, max_attempts=integer,
            parameters={"type": "object", "additionalProperties": described})}),
        "Submit": submit_schema(types),
        "Health": {**_object(status={"enum": ["ok", "unavailable"]}, redis=check, database=check,
                             workers=_object(ok=boolean, live=integer),
                             events=_object(ok=boolean, seq=integer, clients=integer)),
                   "properties": {"detail": string}, "additionalProperties": True},
        "Upload": _object(id=HEX_ID, filename=string, content_type=string, kind={"enum": ["csv", "image"]},
                          size={"type": "integer", "minimum": 1},
                          sha256={"type": "string", "pattern": "^[0-9a-f]{64}$"}),
        "Logs": _object(task_id=string, lines={"type": "array", "items": typed_dict_schema(LogLine)}),
    }}


def _object(**properties: Schema) -> Schema:
    """A closed object whose every property is present."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
