"""Parameter schemas: strict types, bounds, defaults and the descriptions the dashboard builds forms from."""

import json
import math

import pytest

from app.core.errors import InvalidParameters
from app.tasks.params import Bool, Choice, Float, Int, List, Size, Str, Uploads, validate_parameters


def refused(param: object, value: object, field: str = "f") -> InvalidParameters:
    with pytest.raises(InvalidParameters) as caught:
        param.validate(field, value)  # type: ignore[attr-defined]
    assert caught.value.field == field
    return caught.value


def test_int_accepts_ints_in_bounds() -> None:
    rows = Int(10, minimum=1, maximum=1_000_000, description="rows")
    assert rows.validate("rows", 1) == 1
    assert rows.validate("rows", 1_000_000) == 1_000_000


@pytest.mark.parametrize("value", ["abc", True, False, 5.0, 2.5, None, [1], 0, 1_000_001])
def test_int_refuses_other_types_and_out_of_range(value: object) -> None:
    rows = Int(10, minimum=1, maximum=1_000_000, description="rows")
    refused(rows, value, "rows")


def test_int_message_names_field_bounds_and_value() -> None:
    error = refused(Int(10, minimum=1, maximum=1_000_000, description="rows"), "abc", "rows")
    assert str(error) == "rows: must be an integer between 1 and 1000000, got 'abc'"


def test_float_accepts_ints_and_returns_float() -> None:
    pace = Float(2.0, minimum=0.0, maximum=600.0, description="pace")
    assert pace.validate("pace", 3) == 3.0 and isinstance(pace.validate("pace", 3), float)
    assert pace.validate("pace", 0.25) == 0.25


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "1", None, -0.1, 600.5, 10**400])
def test_float_refuses_non_finite_bool_strings_and_out_of_range(value: object) -> None:
    refused(Float(2.0, minimum=0.0, maximum=600.0, description="pace"), value, "pace")


def test_str_checks_type_length_and_lines() -> None:
    subject = Str("hi", max_length=5, min_length=1, description="subject")
    assert subject.validate("subject", "hello") == "hello"
    for value in (5, None, "", "toolong", "a\nb", "a\rb"):
        refused(subject, value, "subject")
    text = Str("", max_length=20, multiline=True, description="text")
    assert text.validate("text", "one\n\ntwo") == "one\n\ntwo"


def test_choice_accepts_only_listed_strings() -> None:
    operation = Choice("resize", choices=("resize", "blur"), description="op")
    assert operation.validate("operation", "blur") == "blur"
    error = refused(operation, "sharpen", "operation")
    assert "resize, blur" in error.message
    refused(operation, 1, "operation")


def test_bool_refuses_ints_and_strings() -> None:
    flag = Bool(False, description="flag")
    assert flag.validate("flag", True) is True
    for value in (1, 0, "true", None):
        refused(flag, value, "flag")


def test_size_takes_pairs_or_a_square() -> None:
    size = Size((256, 256), minimum=1, maximum=4096, description="size")
    assert size.validate("size", [640, 480]) == [640, 480]
    assert size.validate("size", (3, 4)) == [3, 4]
    assert size.validate("size", 100) == [100, 100]


@pytest.mark.parametrize("value", [[1], [1, 2, 3], [0, 10], [10, 4097], [True, 5], [5.0, 5], "10x10", None, 0])
def test_size_refuses_bad_pairs(value: object) -> None:
    refused(Size((256, 256), minimum=1, maximum=4096, description="size"), value, "target_size")


def test_list_takes_scalars_and_returns_a_new_list() -> None:
    data = List(("a",), max_items=5, item_max_length=3, description="data")
    items = ["abc", 1, 2.5, True, None]
    validated = data.validate("data", items)
    assert validated == items and validated is not items
    assert data.validate("data", ("x", "y")) == ["x", "y"]


@pytest.mark.parametrize("value", ["abc", {"a": 1}, [[1]], [{"a": 1}], ["abcd"], [math.nan], [1] * 6, None])
def test_list_refuses_non_lists_nesting_long_items_and_too_many(value: object) -> None:
    refused(List(("a",), max_items=5, item_max_length=3, description="data"), value, "data")


UPLOAD_ID = "0123456789abcdef0123456789abcdef"


def test_uploads_take_a_list_of_upload_ids() -> None:
    images = Uploads((), kind="image", max_items=2, description="images")
    assert images.validate("uploads", []) == []
    assert images.validate("uploads", (UPLOAD_ID,)) == [UPLOAD_ID]
    assert images.validate("uploads", [UPLOAD_ID, "f" * 32]) == [UPLOAD_ID, "f" * 32]


@pytest.mark.parametrize("value", [UPLOAD_ID, None, {"id": UPLOAD_ID}, [UPLOAD_ID] * 3, [UPLOAD_ID.upper()],
                                   [UPLOAD_ID[:-1]], [UPLOAD_ID + "0"], ["../" + UPLOAD_ID[3:]], [5], [[UPLOAD_ID]]])
def test_uploads_refuse_anything_but_a_short_list_of_ids(value: object) -> None:
    error = refused(Uploads((), kind="image", max_items=2, description="images"), value, "uploads")
    assert error.message


def test_uploads_describe_their_kind() -> None:
    assert Uploads((), kind="csv", max_items=1, description="d").describe() == {
        "type": "uploads", "default": [], "description": "d", "kind": "csv", "max_items": 1}


def test_describe_is_json_ready_with_the_bounds_that_apply() -> None:
    assert Int(5, minimum=1, maximum=9, description="d").describe() == {
        "type": "integer", "default": 5, "description": "d", "minimum": 1, "maximum": 9}
    assert Str("x", max_length=9, multiline=True, description="d").describe() == {
        "type": "string", "default": "x", "description": "d", "max_length": 9, "min_length": 0, "multiline": True}
    assert Choice("a", choices=("a", "b"), description="d").describe()["choices"] == ["a", "b"]
    assert Bool(True, description="d").describe() == {"type": "boolean", "default": True, "description": "d"}
    assert Size((2, 3), minimum=1, maximum=9, description="d").describe()["default"] == [2, 3]
    described = List(("a", 1), max_items=4, item_max_length=2, description="d").describe()
    assert described["type"] == "list" and described["default"] == ["a", 1] and described["max_items"] == 4
    assert Float(0.5, minimum=0, maximum=1, description="d").describe()["type"] == "number"
    json.dumps(described, allow_nan=False)


def test_an_invalid_default_fails_when_the_schema_is_built() -> None:
    with pytest.raises(InvalidParameters):
        Int(0, minimum=1, maximum=2, description="d")


SCHEMA = {
    "rows": Int(1000, minimum=1, maximum=10_000, description="rows"),
    "pace": Float(2.0, minimum=0.0, maximum=10.0, description="pace"),
    "size": Size((4, 4), minimum=1, maximum=8, description="size"),
}


def test_validate_parameters_fills_defaults_in_schema_order() -> None:
    assert validate_parameters(SCHEMA, {}) == {"rows": 1000, "pace": 2.0, "size": [4, 4]}
    result = validate_parameters(SCHEMA, {"size": 2, "rows": 5})
    assert list(result) == ["rows", "pace", "size"]
    assert result == {"rows": 5, "pace": 2.0, "size": [2, 2]}


@pytest.mark.parametrize("raw", [None, [], "rows=5", 5])
def test_validate_parameters_wants_an_object(raw: object) -> None:
    with pytest.raises(InvalidParameters) as caught:
        validate_parameters(SCHEMA, raw)
    assert caught.value.field == "parameters"
    assert caught.value.message == "must be a JSON object"


def test_validate_parameters_names_an_unknown_key_and_the_known_ones() -> None:
    with pytest.raises(InvalidParameters) as caught:
        validate_parameters(SCHEMA, {"rows": 5, "colour": "red"})
    assert caught.value.field == "colour"
    assert caught.value.message == "unknown parameter; known: rows, pace, size"


def test_validate_parameters_names_the_bad_field() -> None:
    with pytest.raises(InvalidParameters) as caught:
        validate_parameters(SCHEMA, {"rows": 5, "pace": True})
    assert caught.value.field == "pace"
