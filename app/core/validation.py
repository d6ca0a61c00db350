"""Validation by pydantic, answered in our words: the first error becomes an InvalidParameters naming
the field, with a message built from the field's JSON Schema (its bounds, choices, length); and the
checks any decoded JSON a client sends passes first (depth, lone surrogates)."""

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from app.core.errors import InvalidParameters

SINGLE_LINE = r"^[^\r\n]*$"  # a string pattern refusing line breaks: "must be a single line"
ERROR = "x-error"  # a schema may carry its own message for anything wrong with its value
# Deeper than any real body; deep enough bodies crash recursive code (json's own decoder near 1,000 levels).
MAX_JSON_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")  # `"\ud800"` decodes to one: not text, no UTF-8 encodes it


def shown(value: object) -> str:
    """The offending value as it goes into an error message, as JSON (it came as JSON: `true`, not
    Python's `True`); short, even for a megabyte of text."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """A property's schema with a `$ref` followed and a nullable `anyOf` reduced to its non-null part."""
    found = dict(schema)
    if "$ref" in found:
        found = {**defs[found.pop("$ref").rsplit("/", 1)[-1]], **found}
    options = [option for option in found.get("anyOf", []) if option.get("type") != "null"]
    if len(options) == 1 and "anyOf" in found:
        found = {**resolve(options[0], defs), **{k: v for k, v in found.items() if k != "anyOf"}}
    return found


def _bounds(schema: Mapping[str, Any], number: bool) -> str:
    """A number's bounds as a type error mentions them ("an integer between 1 and 10")."""
    def fmt(value: float) -> str:
        return f"{value:g}" if number else str(value)
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f" between {fmt(low)} and {fmt(high)}"
    said = [f"at least {fmt(low)}" if low is not None else "",
            f"more than {fmt(schema['exclusiveMinimum'])}" if "exclusiveMinimum" in schema else "",
            f"at most {fmt(high)}" if high is not None else "",
            f"less than {fmt(schema['exclusiveMaximum'])}" if "exclusiveMaximum" in schema else ""]
    return f" of {' and '.join(filter(None, said))}" if any(said) else ""


def describe_error(error: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    """What is wrong with a value, in the words of its (resolved) schema."""
    kind, value = error["type"], error.get("input")
    if ERROR in schema:
        return f"{schema[ERROR]}, got {shown(value)}"
    if kind in ("string_too_short", "string_too_long") and schema.get("minLength") and "maxLength" in schema:
        return f"must be {schema['minLength']} to {schema['maxLength']} characters long, got {len(value)}"
    ranged = "minimum" in schema and "maximum" in schema and kind in ("greater_than_equal", "less_than_equal")
    if kind in BOUNDS and not ranged:  # a value of the right type out of one bound: that bound, as the error says
        return constraint(error)
    if "enum" in schema or "const" in schema:
        return f"must be one of {', '.join(map(str, schema.get('enum', [schema.get('const')])))}, got {shown(value)}"
    match schema.get("type"):
        case "integer":
            return f"must be an integer{_bounds(schema, number=False)}, got {shown(value)}"
        case "number":
            return f"must be a finite number{_bounds(schema, number=True)}, got {shown(value)}"
        case "boolean":
            return f"must be true or false, got {shown(value)}"
        case "string" if kind == "string_pattern_mismatch":
            single = schema.get("pattern") == SINGLE_LINE
            return "must be a single line" if single else f"must match {schema['pattern']}"
        case "string":
            return f"must be a string, got {shown(value)}"
        case "array":
            return f"must be a list, got {shown(value)}"
        case "object":
            return f"must be a JSON object, got {shown(value)}"
    message = str(error["msg"])
    return f"{message[0].lower()}{message[1:]}, got {shown(value)}"


WORDS = {"string": "a string", "integer": "an integer", "number": "a finite number", "boolean": "a boolean",
         "null": "null", "array": "a list", "object": "a JSON object"}


BOUNDS = frozenset({"string_too_long", "string_too_short", "too_long", "too_short", "greater_than_equal",
                    "greater_than", "less_than_equal", "less_than", "multiple_of"})


def _items(count: int) -> str:
    return f"{count} item" if count == 1 else f"{count} items"


def constraint(error: Mapping[str, Any]) -> str:
    """A value of the right type refused by one of its bounds, from the error's own context."""
    ctx, value = error.get("ctx") or {}, error.get("input")
    match error["type"]:
        case "string_too_long":
            return f"must be at most {ctx['max_length']} characters long, got {len(value)}"
        case "string_too_short":
            return f"must be at least {ctx['min_length']} characters long, got {len(value)}"
        case "too_long":
            return f"must have at most {_items(ctx['max_length'])}, got {len(value)}"
        case "too_short":
            return f"must have at least {_items(ctx['min_length'])}, got {len(value)}"
        case "finite_number":
            return f"must be a finite number, got {shown(value)}"
        case "greater_than_equal" | "greater_than" | "less_than_equal" | "less_than":
            bound = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most",
                     "less_than": "less than"}[error["type"]]
            return f"must be {bound} {next(iter(ctx.values()))}, got {shown(value)}"
        case "multiple_of":
            return f"must be a multiple of {ctx['multiple_of']}, got {shown(value)}"
    message = str(error["msg"])
    return f"{message[0].lower()}{message[1:]}, got {shown(value)}"


def _union(errors: list[Mapping[str, Any]], schema: Mapping[str, Any]) -> str:
    """A value none of a union's members took: what the member of its type refused (a bound), else
    every kind of value the union takes."""
    if specific := [error for error in errors if not error["type"].endswith("_type")]:
        return constraint(specific[0])
    kinds = [WORDS.get(member.get("type", ""), member.get("type", "?")) for member in schema.get("anyOf", [])]
    listed = ", ".join(kinds[:-1]) + f" or {kinds[-1]}" if len(kinds) > 1 else "".join(kinds)
    return f"must be {listed}, got {shown(errors[0].get('input'))}"


def invalid(exc: ValidationError, schema: Mapping[str, Any], *, root: str = "parameters") -> InvalidParameters:
    """The first error of a model's validation as a 422: the field it is about (`root` for the whole
    object) and what is wrong, a list's item as `item <i> …` of its field."""
    errors = exc.errors(include_url=False)
    error = errors[0]
    loc = error["loc"]
    defs, properties = schema.get("$defs", {}), schema.get("properties", {})
    if error["type"] == "json_invalid":  # e.g. a string holding a lone surrogate, which no JSON may carry
        return InvalidParameters(root, f"is not valid JSON ({error['msg']})")
    if not loc:
        return InvalidParameters(root, "must be a JSON object")
    if len(loc) == 1 and error["type"] == "extra_forbidden":
        return InvalidParameters(str(loc[0]), f"unknown parameter; known: {', '.join(properties)}")
    # Down the value to where the error is: a nested object's field lengthens the field's name
    # (`shape.width`); from a list's item on, the rest is said in the message (`item 2 width …`).
    path, prefix, depth = [str(loc[0])], "", 1
    here = resolve(properties.get(path[0], {}), defs)
    while depth < len(loc) and ERROR not in here:
        step = loc[depth]
        if isinstance(step, int) and "items" in here:
            prefix, here = prefix + f"item {step} ", resolve(here["items"], defs)
        elif isinstance(step, str) and step in here.get("properties", {}):
            if prefix:
                prefix += f"{step} "
            else:
                path.append(step)
            here = resolve(here["properties"][step], defs)
        elif isinstance(step, str) and isinstance(here.get("additionalProperties"), dict):  # a dict's value
            prefix, here = prefix + f"key {shown(step)} ", resolve(here["additionalProperties"], defs)
        else:
            break
        depth += 1
    field = ".".join(path)
    if error["type"] == "extra_forbidden":
        known = ", ".join(here.get("properties", {}))
        return InvalidParameters(field, prefix + f"unknown field {shown(loc[-1])}; known: {known}")
    if error["type"] == "missing":
        return InvalidParameters(field, prefix + (f"{shown(loc[-1])} required" if depth < len(loc) else "required"))
    if depth < len(loc) and "anyOf" in here:  # a union: each member reported, its tag in the location
        same = [other for other in errors if other["loc"][:depth] == loc[:depth]]
        return InvalidParameters(field, prefix + _union(same, here))
    return InvalidParameters(field, prefix + describe_error(error, here))


def check(adapter: TypeAdapter[Any], field: str, value: object) -> Any:
    """One value checked against a type (a bound option, a schedule's interval): 422 naming `field`."""
    try:
        return adapter.validate_json(json.dumps(value))
    except ValidationError as exc:
        schema = adapter.json_schema()
        error = exc.errors(include_url=False)[0]
        raise InvalidParameters(field, describe_error(error, resolve(schema, schema.get("$defs", {})))) from None


def check_json(data: object, root: str = "body") -> None:
    """422 for decoded JSON (a request's body, a WebSocket message: `root`) nested deeper than MAX_JSON_DEPTH
    or holding a lone surrogate in a string or key, naming the top-level field it is in; walked without
    recursion, so any depth the decoder returned is safe to look at."""
    pending: list[tuple[object, int, str]] = [(data, 1, root)]
    while pending:
        value, depth, field = pending.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise InvalidParameters(field, "contains a lone surrogate (such as \\ud800), which is not text")
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth > MAX_JSON_DEPTH:
            raise InvalidParameters(root, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else ((None, item) for item in value)
        for key, item in items:
            if key is not None and _SURROGATE.search(key):
                raise InvalidParameters(root, "has a key with a lone surrogate (such as \\ud800), which is not text")
            pending.append((item, depth + 1, key if depth == 1 and key is not None else field))
