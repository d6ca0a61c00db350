"""Parameter schemas for task types: typed JSON fields with defaults and bounds, validated strictly."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeGuard

from app.core.errors import InvalidParameters

_SCALARS = (str, int, float, bool, type(None))
_HEX = frozenset("0123456789abcdef")


def _shown(value: object) -> str:
    """The offending value as it goes into an error message: short, even for a megabyte of text."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass, but `true` for a row count is a client mistake, not a 1
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


@dataclass(frozen=True)
class Param:
    """One field of a schema; subclasses give `default` its type and add their bounds."""

    default: Any
    description: str = field(kw_only=True)
    type_name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        # a schema whose own default is invalid is a bug: fail at import, not on the first submit
        self.validate("default", self.default)

    def validate(self, field: str, value: object) -> object:
        raise NotImplementedError

    def details(self) -> dict[str, Any]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {"type": self.type_name, "default": self.validate("default", self.default),
                "description": self.description, **self.details()}


@dataclass(frozen=True)
class Int(Param):
    default: int
    minimum: int
    maximum: int
    type_name: ClassVar[str] = "integer"

    def validate(self, field: str, value: object) -> int:
        if _is_int(value) and self.minimum <= value <= self.maximum:
            return value
        raise InvalidParameters(
            field, f"must be an integer between {self.minimum} and {self.maximum}, got {_shown(value)}")

    def details(self) -> dict[str, Any]:
        return {"minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True)
class Float(Param):
    default: float
    minimum: float
    maximum: float
    type_name: ClassVar[str] = "number"

    def validate(self, field: str, value: object) -> float:
        if _is_number(value) and self.minimum <= value <= self.maximum:
            return float(value)
        raise InvalidParameters(
            field, f"must be a finite number between {self.minimum:g} and {self.maximum:g}, got {_shown(value)}")

    def details(self) -> dict[str, Any]:
        return {"minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True)
class Str(Param):
    default: str
    max_length: int
    min_length: int = 0
    multiline: bool = False
    type_name: ClassVar[str] = "string"

    def validate(self, field: str, value: object) -> str:
        if not isinstance(value, str):
            raise InvalidParameters(field, f"must be a string, got {_shown(value)}")
        if not self.min_length <= len(value) <= self.max_length:
            raise InvalidParameters(
                field, f"must be {self.min_length} to {self.max_length} characters long, got {len(value)}")
        # single-line values end up in places like mail headers, where a line break is an injection
        if not self.multiline and ("\n" in value or "\r" in value):
            raise InvalidParameters(field, "must be a single line")
        return value

    def details(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "min_length": self.min_length, "multiline": self.multiline}


@dataclass(frozen=True)
class Choice(Param):
    default: str
    choices: tuple[str, ...]
    type_name: ClassVar[str] = "choice"

    def validate(self, field: str, value: object) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise InvalidParameters(field, f"must be one of {', '.join(self.choices)}, got {_shown(value)}")
        return value

    def details(self) -> dict[str, Any]:
        return {"choices": list(self.choices)}


@dataclass(frozen=True)
class Bool(Param):
    default: bool
    type_name: ClassVar[str] = "boolean"

    def validate(self, field: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise InvalidParameters(field, f"must be true or false, got {_shown(value)}")
        return value


@dataclass(frozen=True)
class Size(Param):
    """A `[width, height]` pair; a single integer means a square."""

    default: tuple[int, int]
    minimum: int
    maximum: int
    type_name: ClassVar[str] = "size"

    def validate(self, field: str, value: object) -> list[int]:
        pair = [value, value] if _is_int(value) else value
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                or not all(_is_int(side) and self.minimum <= side <= self.maximum for side in pair)):
            raise InvalidParameters(field, f"must be [width, height] with integers between {self.minimum} "
                                           f"and {self.maximum}, got {_shown(value)}")
        return list(pair)

    def details(self) -> dict[str, Any]:
        return {"minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True)
class List(Param):
    """A JSON list of scalars (string, number, boolean, null); strings are capped in length."""

    default: tuple[object, ...]
    max_items: int
    item_max_length: int
    type_name: ClassVar[str] = "list"

    def validate(self, field: str, value: object) -> list[object]:
        if not isinstance(value, (list, tuple)):
            raise InvalidParameters(field, f"must be a list, got {_shown(value)}")
        if len(value) > self.max_items:
            raise InvalidParameters(field, f"must have at most {self.max_items} items, got {len(value)}")
        for index, item in enumerate(value):
            self._check_item(field, index, item)
        return list(value)

    def _check_item(self, field: str, index: int, item: object) -> None:
        if not isinstance(item, _SCALARS) or (isinstance(item, float) and not math.isfinite(item)):
            raise InvalidParameters(
                field, f"item {index} must be a string, a finite number, a boolean or null, got {_shown(item)}")
        if isinstance(item, str) and len(item) > self.item_max_length:
            raise InvalidParameters(
                field, f"item {index} must be at most {self.item_max_length} characters long, got {len(item)}")

    def details(self) -> dict[str, Any]:
        return {"max_items": self.max_items, "item_max_length": self.item_max_length}


@dataclass(frozen=True)
class Uploads(Param):
    """Ids of files uploaded through `POST /api/uploads`, of one kind ("csv" or "image").

    Only the shape is checked here; that each id names an upload of this kind is checked on
    submit, where the upload store is at hand.
    """

    default: tuple[str, ...]
    kind: str
    max_items: int
    type_name: ClassVar[str] = "uploads"

    def validate(self, field: str, value: object) -> list[str]:
        if not isinstance(value, (list, tuple)):
            raise InvalidParameters(field, f"must be a list of upload ids, got {_shown(value)}")
        if len(value) > self.max_items:
            raise InvalidParameters(field, f"must have at most {self.max_items} upload ids, got {len(value)}")
        for index, item in enumerate(value):
            if not (isinstance(item, str) and len(item) == 32 and set(item) <= _HEX):
                raise InvalidParameters(field, f"item {index} must be an upload id (32 hex digits), got {_shown(item)}")
        return list(value)

    def details(self) -> dict[str, Any]:
        return {"kind": self.kind, "max_items": self.max_items}


def validate_parameters(schema: Mapping[str, Param], raw: object) -> dict[str, object]:
    """The validated parameters in schema order, with defaults filled in; raises InvalidParameters."""
    if not isinstance(raw, dict):
        raise InvalidParameters("parameters", "must be a JSON object")
    for name in raw:
        if name not in schema:
            raise InvalidParameters(str(name), f"unknown parameter; known: {', '.join(schema)}")
    return {name: param.validate(name, raw.get(name, param.default)) for name, param in schema.items()}
