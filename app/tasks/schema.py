"""A task type's parameters as one pydantic model, made from its function's signature: the keyword
parameters after the reporter, their annotations (with `Annotated[…, Field(…)]` bounds, `Literal`
choices) and defaults (none: required), or a single pydantic model parameter. The model validates
submits (422s naming the field), and its JSON Schema feeds `/api/task-types`, the dashboard's form
and the OpenAPI document."""

import functools
import inspect
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

from app.core.errors import InvalidParameters
from app.core.validation import invalid, resolve
from app.tasks.runtime import Reporter, SyncReporter
from app.tasks.types import MULTILINE, UPLOAD_KIND

STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, validate_default=True)


class TaskDefinitionError(TypeError):
    """A task function that cannot be a task type; the message names its module and the parameter."""


def camel(name: str) -> str:
    """`word_count` → `WordCount`: the stem of a type's model and component names."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name) if part)


def parameters_model(function: Callable[..., Any], name: str) -> tuple[type[BaseModel], bool]:
    """The model of the function's parameters, and whether the function takes the model itself (one
    pydantic model parameter) rather than its fields as keyword arguments."""
    where = f"{function.__module__}.{function.__qualname__}"
    parameters = list(inspect.signature(function).parameters.values())
    if not parameters or parameters[0].kind not in (parameters[0].POSITIONAL_ONLY, parameters[0].POSITIONAL_OR_KEYWORD):
        raise TaskDefinitionError(f"{where}: the first parameter receives the Reporter (e.g. `report: Reporter`)")
    try:
        hints = get_type_hints(function, include_extras=True)
    except Exception as exc:  # a name the annotations use that the module does not define
        raise TaskDefinitionError(f"{where}: its annotations cannot be read: {exc}") from None
    first = parameters[0]
    if first.default is not first.empty or hints.get(first.name, Reporter) not in (Reporter, SyncReporter):
        raise TaskDefinitionError(f"{where}: the first parameter receives the Reporter (`report: Reporter`, or "
                                  f"`report: SyncReporter` in a plain function); {first.name!r} looks like one of "
                                  "the task's own parameters")
    fields: dict[str, Any] = {}
    for parameter in parameters[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TaskDefinitionError(f"{where}: parameter {parameter.name!r}: *args and **kwargs are not parameters "
                                      "a form can ask for; name each one")
        if parameter.name not in hints:
            raise TaskDefinitionError(f"{where}: parameter {parameter.name!r} has no type annotation")
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (hints[parameter.name], default)
    model_name = f"{camel(name)}Parameters"
    only = next(iter(fields.values()), None) if len(fields) == 1 else None
    takes_model = only is not None and inspect.isclass(only[0]) and issubclass(only[0], BaseModel)
    try:
        if takes_model:
            assert only is not None
            # the user's model as it is, but refusing unknown fields (a typo must not pass silently)
            config = ConfigDict(**{**only[0].model_config, "extra": "forbid", "validate_default": True})
            model = type(model_name, (only[0],), {"model_config": config, "__module__": function.__module__})
        else:
            model = create_model(model_name, __config__=STRICT, __module__=function.__module__, **fields)
        json.dumps(model.model_json_schema())
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError, ValueError) as exc:
        raise TaskDefinitionError(f"{where}: {_culprit(fields)}: {str(exc).splitlines()[0]}") from None
    # Upload ids are checked on submit (they exist, of the right kind) only as parameters of their own:
    # `CsvUpload`, `list[CsvUpload]`, either `| None`; an id deeper down would go unchecked.
    if json.dumps(model.model_json_schema()).count(f'"{UPLOAD_KIND}"') != len(upload_fields(model)):
        raise TaskDefinitionError(f"{where}: an upload type (CsvUpload, ImageUpload) may be a parameter's type, or "
                                  "its list's items, with `| None` or not; not inside another type")
    try:  # a default that its own annotation refuses is a bug: refused now, not at the first submit
        model.model_validate_json("{}")
    except ValidationError as exc:
        if bad := [error for error in exc.errors(include_url=False) if error["type"] != "missing"]:
            raise TaskDefinitionError(f"{where}: the default of parameter {bad[0]['loc'][0]!r} is not valid for "
                                      f"its annotation: {bad[0]['msg']}") from None
    return model, takes_model


def _culprit(fields: Mapping[str, Any]) -> str:
    """Which parameter pydantic cannot describe: each one's annotation tried alone."""
    for name, (annotation, _) in fields.items():
        try:
            json.dumps(TypeAdapter(annotation).json_schema())
        except (PydanticSchemaGenerationError, PydanticUserError, TypeError, ValueError):
            return f"parameter {name!r} has an unsupported annotation {annotation!r}"
    return "its parameters cannot be described as JSON"


def validate(model: type[BaseModel], raw: object) -> dict[str, Any]:
    """The parameters as JSON values, defaults filled in, in the function's order; InvalidParameters
    naming the field (`parameters` when `raw` is no JSON object)."""
    if not isinstance(raw, dict):
        raise InvalidParameters("parameters", "must be a JSON object")
    try:
        # `json`, not the orjson path: a NaN or an infinity (Python's JSON reader takes them) must reach
        # pydantic as such to be refused naming its field, where orjson would write null
        validated = model.model_validate_json(json.dumps(raw))
    except ValidationError as exc:
        raise invalid(exc, model.model_json_schema()) from None
    # as the schema names them (a field's alias) and without computed fields: what the function's
    # arguments are validated from again when it runs (define.TaskType.arguments)
    return validated.model_dump(mode="json", by_alias=True, exclude_computed_fields=True)


def validate_many(model: type[BaseModel], raws: list[object]) -> list[dict[str, Any]] | None:
    """`validate` for many tasks' parameters at once (a batch: one pydantic call, not one per task); None
    if any is invalid (each is then checked alone, to name its field)."""
    if not all(isinstance(raw, dict) for raw in raws):
        return None
    adapter = _many(model)
    try:
        validated = adapter.validate_json(json.dumps(raws))  # `json`: as in `validate`
    except ValidationError:
        return None
    dumped: list[dict[str, Any]] = adapter.dump_python(validated, mode="json", by_alias=True,
                                                       exclude_computed_fields=True)
    return dumped


@functools.cache
def _many(model: type[BaseModel]) -> TypeAdapter[list[BaseModel]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


@functools.cache  # asked for each task submitted; a type's model is made once, when its module loads
def upload_fields(model: type[BaseModel]) -> dict[str, str]:
    """The parameters that take upload ids, and the kind of file each takes."""
    return {name: field["kind"] for name, field in describe(model).items() if field["type"] == "uploads"}


def describe(model: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """Each parameter for a form: its kind of control, label, help, default and bounds, read from the
    model's JSON Schema (so the form asks for exactly what the server checks)."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    return {name: _field(resolve(prop, defs), defs, name in required) for name, prop in schema["properties"].items()}


def _field(schema: Mapping[str, Any], defs: Mapping[str, Any], required: bool) -> dict[str, Any]:
    shown: dict[str, Any] = {"title": schema.get("title", ""), "description": schema.get("description", ""),
                             "required": required}
    if not required:
        shown["default"] = schema.get("default")
    items = resolve(schema.get("items", {}), defs)
    if "enum" in schema or "const" in schema:
        shown.update(type="choice", choices=list(schema.get("enum", [schema.get("const")])))
    elif schema.get("type") in ("integer", "number"):
        shown.update(type=schema["type"], **{key: schema[key] for key in ("minimum", "maximum") if key in schema})
    elif schema.get("type") == "boolean":
        shown.update(type="boolean")
    elif UPLOAD_KIND in schema:  # one file: the value is an id, not a list of them
        shown.update(type="uploads", kind=schema[UPLOAD_KIND], max_items=1, many=False)
    elif schema.get("type") == "string":
        shown.update(type="string", max_length=schema.get("maxLength"), min_length=schema.get("minLength", 0),
                     multiline=bool(schema.get(MULTILINE)))  # `Text`: a text area; any other string a text field
    elif schema.get("type") == "array" and UPLOAD_KIND in items:
        shown.update(type="uploads", kind=items[UPLOAD_KIND], max_items=schema.get("maxItems"), many=True)
    elif schema.get("type") == "array" and schema.get("x-size"):
        shown.update(type="size", minimum=items.get("minimum"), maximum=items.get("maximum"))
    elif schema.get("type") == "array":
        shown.update(type="list", max_items=schema.get("maxItems"), schema=dict(schema))  # edited as JSON
    else:
        shown.update(type="json", schema=dict(schema))  # edited as JSON, checked by the server
    return shown
