"""A task type's parameters from its function's signature: strict types, bounds, choices, defaults and
required fields, the 422 messages naming the field, and what the form and the API are told."""

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field, computed_field

from app.core.errors import InvalidParameters
from app.tasks import CsvUpload, ImageUpload, Line, Reporter, TaskDefinitionError, Text, task
from app.tasks.define import result_object


@task
async def sample(
    report: Reporter,
    rows: Annotated[int, Field(ge=1, le=1_000_000, description="rows")] = 10,
    pace: Annotated[float, Field(ge=0.0, le=600.0)] = 2.0,
    subject: Annotated[Line, Field(min_length=1, max_length=5)] = "hi",
    text: Annotated[Text, Field(max_length=20)] = "",
    operation: Literal["resize", "blur"] = "resize",
    flag: bool = False,
    data: Annotated[list[Annotated[str, Field(max_length=3)] | int | float | bool | None], Field(max_length=5)] = ["a"],
    images: Annotated[list[ImageUpload], Field(max_length=2)] = [],
) -> dict:
    """A sample with one parameter of each kind."""
    return {}


def refused(field: str, value: object) -> InvalidParameters:
    with pytest.raises(InvalidParameters) as caught:
        sample.validate({field: value})
    assert caught.value.field == field, caught.value
    return caught.value


def test_ints_in_bounds_pass_and_the_message_names_field_bounds_and_value() -> None:
    assert sample.validate({"rows": 1})["rows"] == 1 and sample.validate({"rows": 1_000_000})["rows"] == 1_000_000
    assert str(refused("rows", "abc")) == "rows: must be an integer between 1 and 1000000, got \"abc\""


@pytest.mark.parametrize("value", ["abc", True, False, 5.0, 2.5, None, [1], 0, 1_000_001])
def test_ints_refuse_other_types_and_out_of_range(value: object) -> None:
    refused("rows", value)


def test_floats_accept_ints_and_return_floats() -> None:
    assert sample.validate({"pace": 3})["pace"] == 3.0 and isinstance(sample.validate({"pace": 3})["pace"], float)
    assert sample.validate({"pace": 0.25})["pace"] == 0.25


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "1", None, -0.1, 600.5, 10**400])
def test_floats_refuse_non_finite_bool_strings_and_out_of_range(value: object) -> None:
    refused("pace", value)


def test_strings_check_type_length_and_lines() -> None:
    assert sample.validate({"subject": "hello"})["subject"] == "hello"
    for value in (5, None, "", "toolong", "a\nb", "a\rb"):
        refused("subject", value)
    assert refused("subject", "a\nb").message == "must be a single line"
    assert refused("subject", "toolong").message == "must be 1 to 5 characters long, got 7"
    assert sample.validate({"text": "one\n\ntwo"})["text"] == "one\n\ntwo"


def test_choices_accept_only_listed_strings() -> None:
    assert sample.validate({"operation": "blur"})["operation"] == "blur"
    assert refused("operation", "sharpen").message == "must be one of resize, blur, got \"sharpen\""
    refused("operation", 1)


def test_booleans_refuse_ints_and_strings() -> None:
    assert sample.validate({"flag": True})["flag"] is True
    for value in (1, 0, "true", None):
        assert refused("flag", value).message.startswith("must be true or false")


def test_lists_take_scalars() -> None:
    assert sample.validate({"data": ["abc", 1, 2.5, True, None]})["data"] == ["abc", 1, 2.5, True, None]


@pytest.mark.parametrize(("value", "message"), [
    ("abc", "must be a list, got \"abc\""),
    ({"a": 1}, "must be a list, got {\"a\": 1}"),
    ([[1]], "item 0 must be a string, an integer, a finite number, a boolean or null, got [1]"),
    ([{"a": 1}], "item 0 must be a string, an integer, a finite number, a boolean or null, got {\"a\": 1}"),
    (["abcd"], "item 0 must be at most 3 characters long, got 4"),
    ([1, math.nan], "item 1 must be a finite number, got NaN"),
    ([1] * 6, "must have at most 5 items, got 6"),
])
def test_lists_refuse_non_lists_nesting_long_items_and_too_many(value: object, message: str) -> None:
    assert refused("data", value).message == message


UPLOAD_ID = "0123456789abcdef0123456789abcdef"


def test_uploads_take_a_list_of_upload_ids() -> None:
    assert sample.validate({"images": []})["images"] == []
    assert sample.validate({"images": [UPLOAD_ID, "f" * 32]})["images"] == [UPLOAD_ID, "f" * 32]


@pytest.mark.parametrize("value", [UPLOAD_ID, None, {"id": UPLOAD_ID}, [UPLOAD_ID] * 3, [UPLOAD_ID.upper()],
                                   [UPLOAD_ID[:-1]], [UPLOAD_ID + "0"], ["../" + UPLOAD_ID[3:]], [5], [[UPLOAD_ID]]])
def test_uploads_refuse_anything_but_a_short_list_of_ids(value: object) -> None:
    assert refused("images", value).message


def test_validate_fills_defaults_in_the_functions_order_and_stores_json() -> None:
    values = sample.validate({"rows": 5})
    assert list(values) == ["rows", "pace", "subject", "text", "operation", "flag", "data", "images"]
    assert values["rows"] == 5 and values["pace"] == 2.0 and values["data"] == ["a"]
    json.dumps(values, allow_nan=False)


@pytest.mark.parametrize("raw", [None, [], "rows=5", 5])
def test_parameters_must_be_an_object(raw: object) -> None:
    with pytest.raises(InvalidParameters) as caught:
        sample.validate(raw)
    assert (caught.value.field, caught.value.message) == ("parameters", "must be a JSON object")


def test_an_unknown_parameter_is_named_with_the_known_ones() -> None:
    with pytest.raises(InvalidParameters) as caught:
        sample.validate({"rows": 5, "colour": "red"})
    assert caught.value.field == "colour"
    assert caught.value.message == "unknown parameter; known: rows, pace, subject, text, operation, flag, data, images"


def test_the_form_is_told_labels_help_defaults_and_bounds() -> None:
    described = json.loads(json.dumps(sample.describe(), allow_nan=False))
    assert described["name"] == "sample" and described["description"] == "A sample with one parameter of each kind."
    fields = described["parameters"]
    assert fields["rows"] == {"type": "integer", "title": "Rows", "description": "rows", "required": False,
                              "default": 10, "minimum": 1, "maximum": 1_000_000}
    assert (fields["subject"]["type"], fields["subject"]["multiline"], fields["subject"]["max_length"]) == (
        "string", False, 5)
    assert fields["text"]["multiline"] is True
    assert fields["operation"]["choices"] == ["resize", "blur"] and fields["flag"]["type"] == "boolean"
    assert (fields["images"]["type"], fields["images"]["kind"], fields["images"]["max_items"]) == ("uploads", "image", 2)
    assert fields["data"]["type"] == "list" and fields["pace"]["title"] == "Pace"


def test_a_parameter_without_a_default_is_required() -> None:
    @task
    async def needs(report: Reporter, text: str, files: list[CsvUpload], repeat: int = 1) -> dict:
        return {}

    with pytest.raises(InvalidParameters) as caught:
        needs.validate({"files": []})
    assert (caught.value.field, caught.value.message) == ("text", "required")
    assert needs.validate({"text": "x", "files": []}) == {"text": "x", "files": [], "repeat": 1}
    assert needs.describe()["parameters"]["text"]["required"] is True
    assert "default" not in needs.describe()["parameters"]["text"]


def test_one_pydantic_model_parameter_is_the_schema_and_the_function_gets_it() -> None:
    class Options(BaseModel):
        width: Annotated[int, Field(ge=1, le=10)] = 3
        label: str = "x"

    @task(name="modelled")
    async def with_model(report: Reporter, options: Options) -> dict:
        return {"width": options.width}

    assert with_model.validate({"width": 4}) == {"width": 4, "label": "x"}
    assert with_model.arguments({"width": 4, "label": "x"})["options"].width == 4
    with pytest.raises(InvalidParameters) as caught:
        with_model.validate({"width": 4, "height": 2})
    assert caught.value.field == "height"
    assert with_model.parameters.__name__ == "ModelledParameters"


class Box(BaseModel):
    width_cm: Annotated[int, Field(alias="widthCm", ge=1)] = 2

    @computed_field  # type: ignore[prop-decorator]
    @property
    def area(self) -> int:
        return self.width_cm ** 2


@task(name="boxed")
async def with_box(report: Reporter, box: Box) -> dict:
    return {}


def test_a_models_aliases_name_its_fields_and_computed_fields_are_not_parameters() -> None:
    stored = with_box.validate({"widthCm": 5})
    assert stored == {"widthCm": 5}
    assert with_box.arguments(stored)["box"].area == 25
    assert list(with_box.describe()["parameters"]) == ["widthCm"]


def test_many_tasks_parameters_validated_at_once_are_stored_as_each_alone_would_be() -> None:
    """A batch checks the parameters of a type's items in one pydantic call: what it stores must be
    what checking each alone stores (defaults, order, JSON values, aliases, no computed fields)."""
    raws: list[object] = [{"rows": 5}, {}, {"data": [1, None, "ab"], "flag": True}, {"pace": 3}]
    assert sample.validate_many(raws) == [sample.validate(raw) for raw in raws]
    assert with_box.validate_many([{"widthCm": 5}, {}]) == [{"widthCm": 5}, {"widthCm": 2}]


@pytest.mark.parametrize("raws", [[{"rows": 5}, {"rows": 0}], [{"rows": 5}, None], [{}, {"colour": "red"}],
                                  [{"pace": math.nan}]])
def test_many_with_one_invalid_are_left_to_be_checked_one_by_one(raws: list[object]) -> None:
    assert sample.validate_many(raws) is None


@pytest.mark.parametrize(("outcome", "message"), [
    (3, "returned int; return a dict"),
    ({"when": object()}, "not JSON"),
    ({"mean": math.nan}, "NaN or an infinity"),
    ({"square": 10**4400}, "an integer of more than 4300 digits, too long to write as JSON"),
])
def test_a_result_that_cannot_be_stored_fails_naming_why(outcome: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        result_object("sample", outcome)


def test_a_result_may_hold_what_pydantic_gives_as_json() -> None:
    class Summary(BaseModel):
        at: datetime
        where: Path

    when = datetime(2026, 1, 2, tzinfo=UTC)
    assert result_object("sample", {"summary": Summary(at=when, where=Path("/tmp/x")), 1: (2, 3)}) == {
        "summary": {"at": "2026-01-02T00:00:00Z", "where": "/tmp/x"}, "1": [2, 3]}
    assert result_object("sample", None) == {}


class Inner(BaseModel):
    width: Annotated[int, Field(ge=1)] = 3


@task
async def nested(report: Reporter, shape: Inner = Inner(), shapes: list[Inner] = [],
                 counts: dict[str, int] = {}, step: Annotated[int, Field(multiple_of=5)] = 5,
                 ratio: Annotated[float, Field(gt=0)] = 1.0, name: Annotated[str, Field(min_length=3)] = "abc") -> dict:
    return {}


@pytest.mark.parametrize(("raw", "field", "message"), [
    ({"shape": {"width": 0}}, "shape.width", "must be at least 1, got 0"),
    ({"shape": {"width": "x"}}, "shape.width", "must be an integer of at least 1, got \"x\""),
    ({"shape": 5}, "shape", "must be a JSON object, got 5"),
    ({"shapes": [{}, {"width": 0}]}, "shapes", "item 1 width must be at least 1, got 0"),
    ({"counts": {"a": "b"}}, "counts", "key \"a\" must be an integer, got \"b\""),
    ({"step": 7}, "step", "must be a multiple of 5, got 7"),
    ({"ratio": 0}, "ratio", "must be more than 0.0, got 0"),
    ({"name": "ab"}, "name", "must be at least 3 characters long, got 2"),
])
def test_a_bound_or_a_nested_value_is_named_where_it_is(raw: dict, field: str, message: str) -> None:
    with pytest.raises(InvalidParameters) as caught:
        nested.validate(raw)
    assert (caught.value.field, caught.value.message) == (field, message)


def test_name_description_and_limits_come_from_the_decorator_or_the_function() -> None:
    @task(name="renamed", description="Told.", timeout=60, max_attempts=2)
    async def some_function(report: Reporter) -> None:
        """Not this."""

    assert (some_function.name, some_function.description, some_function.timeout) == ("renamed", "Told.", 60.0)
    assert some_function.retry.max_attempts == 2 and some_function.executor == "async"


def test_plain_functions_run_in_a_thread_unless_they_ask_for_a_process() -> None:
    @task
    def in_thread(report: Reporter) -> None:
        pass

    def plain(report: Reporter) -> None:
        pass

    assert in_thread.executor == "thread"
    with pytest.raises(TaskDefinitionError, match="plain function"):
        task(executor="async")(plain)


@pytest.mark.parametrize(("define", "named"), [
    ("async def f(report, x): ...", "parameter 'x' has no type annotation"),
    ("class Thing: ...\nasync def f(report, x: Thing = None): ...", "parameter 'x' has an unsupported annotation"),
    ("async def f(report, *items: int): ...", "*args and **kwargs"),
    ("async def f(*, x: int = 1): ...", "the first parameter receives the Reporter"),
    ("async def f(n: int = 1): ...", "'n' looks like one of the task's own parameters"),
    ("async def f(n: int): ...", "'n' looks like one of the task's own parameters"),
    ("async def f(report, x: Annotated[int, Field(ge=1)] = 0): ...", "the default of parameter 'x'"),
    ("def f(report): ...\nf.__qualname__ = 'outer.<locals>.f'", None),
])
def test_a_function_that_cannot_be_a_task_type_is_refused_naming_the_parameter(define: str, named: str | None) -> None:
    scope: dict[str, object] = {"Annotated": Annotated, "Field": Field}
    exec(define, scope)  # noqa: S102 -- a small function made for the test
    function = scope["f"]
    with pytest.raises(TaskDefinitionError) as caught:
        task(executor="process")(function) if named is None else task(function)  # type: ignore[arg-type]
    assert (named or "importable module") in str(caught.value)
