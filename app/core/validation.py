"""Validation by pydantic, answered in our words: the first error becomes an InvalidParameters naming
the field, with a message built from the field's JSON Schema (its bounds, choices, length)."""

import json
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from app.core.errors import InvalidParameters

SINGLE_LINE = r"^[^\r\n]*$"  # a string pattern refusing line breaks: "must be a single line"
ERROR = "x-error"  # a schema may carry its own message for anything wrong with its value


def shown(value: object) -> str:
    """The offending value as it goes into an error message: short, even for a megabyte of text."""
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
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    def fmt(value: float) -> str:
        return f"{value:g}" if number else str(value)
    if low is not None and high is not None:
        return f" between {fmt(low)} and {fmt(high)}"
    if low is not None:
        return f" of at least {fmt(low)}"
    return f" of at most {fmt(high)}" if high is not None else ""


def describe_error(error: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    """What is wrong with a value, in the words of its (resolved) schema."""
    kind, value = error["type"], error.get("input")
    if ERROR in schema:
        return f"{schema[ERROR]}, got {shown(value)}"
    if "enum" in schema or "const" in schema:
        return f"must be one of {', '.join(map(str, schema.get('enum', [schema.get('const')])))}, got {shown(value)}"
    match schema.get("type"):
        case "integer":
            return f"must be an integer{_bounds(schema, number=False)}, got {shown(value)}"
        case "number":
            return f"must be a finite number{_bounds(schema, number=True)}, got {shown(value)}"
        case "boolean":
            return f"must be true or false, got {shown(value)}"
        case "string" if kind in ("string_too_short", "string_too_long"):
            length = f"{schema.get('minLength', 0)} to {schema.get('maxLength')}"
            return f"must be {length} characters long, got {len(value)}"
        case "string" if kind == "string_pattern_mismatch":
            single = schema.get("pattern") == SINGLE_LINE
            return "must be a single line" if single else f"must match {schema['pattern']}"
        case "string":
            return f"must be a string, got {shown(value)}"
        case "array" if kind == "too_long":
            return f"must have at most {schema.get('maxItems')} items, got {len(value)}"
        case "array" if kind == "too_short":
            return f"must have at least {schema.get('minItems')} items, got {len(value)}"
        case "array":
            return f"must be a list, got {shown(value)}"
        case "object":
            return f"must be a JSON object, got {shown(value)}"
    message = str(error["msg"])
    return f"{message[0].lower()}{message[1:]}, got {shown(value)}"


WORDS = {"string": "a string", "integer": "an integer", "number": "a finite number", "boolean": "a boolean",
         "null": "null", "array": "a list", "object": "a JSON object"}


def constraint(error: Mapping[str, Any]) -> str:
    """A value of the right type refused by one of its bounds, from the error's own context."""
    ctx, value = error.get("ctx") or {}, error.get("input")
    match error["type"]:
        case "string_too_long":
            return f"must be at most {ctx['max_length']} characters long, got {len(value)}"
        case "string_too_short":
            return f"must be at least {ctx['min_length']} characters long, got {len(value)}"
        case "too_long":
            return f"must have at most {ctx['max_length']} items, got {len(value)}"
        case "too_short":
            return f"must have at least {ctx['min_length']} items, got {len(value)}"
        case "finite_number":
            return f"must be a finite number, got {shown(value)}"
        case "greater_than_equal" | "greater_than" | "less_than_equal" | "less_than":
            bound = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most",
                     "less_than": "less than"}[error["type"]]
            return f"must be {bound} {next(iter(ctx.values()))}, got {shown(value)}"
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
    if not loc or error["type"] in ("model_type", "dict_type", "model_attributes_type"):
        return InvalidParameters(root, "must be a JSON object")
    field = str(loc[0])
    if error["type"] == "extra_forbidden":
        return InvalidParameters(field, f"unknown parameter; known: {', '.join(properties)}")
    if error["type"] == "missing":
        return InvalidParameters(field, "required")
    here, prefix, depth = resolve(properties.get(field, {}), defs), "", 1
    while depth < len(loc) and isinstance(loc[depth], int) and "items" in here and ERROR not in here:
        prefix += f"item {loc[depth]} "
        here, depth = resolve(here["items"], defs), depth + 1
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
