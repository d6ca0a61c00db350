"""Upload parameters of every shape a task type may give them (one file, several, either optional):
each id checked on submit to exist and be of the parameter's kind, an optional one left out."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field

from app.core.errors import InvalidParameters
from app.lifecycle.new_task import checked_parameters
from app.store.uploads import Upload, UploadStore
from app.tasks import CsvUpload, ImageUpload, Reporter, TaskDefinitionError, task


@task
async def shapes(report: Reporter, one: CsvUpload, maybe: CsvUpload | None = None,
                 several: Annotated[list[ImageUpload], Field(max_length=3)] = [],
                 perhaps: list[CsvUpload] | None = None) -> dict:
    return {}


async def _saved(store: UploadStore, content: bytes, content_type: str) -> Upload:
    async def chunks() -> AsyncIterator[bytes]:
        yield content

    return await store.save(chunks(), "f", content_type)


async def test_each_shape_is_checked_and_an_optional_one_may_be_left_out(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, 10_000, 1_000_000, 50_000_000)
    csv = (await _saved(store, b"a,b\n1,2\n", "text/csv")).id
    assert checked_parameters(shapes, {"one": csv}, store) == {"one": csv, "maybe": None, "several": [],
                                                                "perhaps": None}
    assert checked_parameters(shapes, {"one": csv, "maybe": csv, "perhaps": [csv]}, store)["perhaps"] == [csv]
    for raw, field in (({"one": "0" * 32}, "one"), ({"one": csv, "maybe": "f" * 32}, "maybe"),
                       ({"one": csv, "several": [csv]}, "several"), ({"one": csv, "perhaps": ["e" * 32]}, "perhaps")):
        with pytest.raises(InvalidParameters) as caught:
            checked_parameters(shapes, raw, store)
        assert caught.value.field == field, raw
    described = shapes.describe()["parameters"]
    assert [(described[name]["type"], described[name]["many"]) for name in ("one", "maybe", "several", "perhaps")] \
        == [("uploads", False), ("uploads", False), ("uploads", True), ("uploads", True)]


def test_an_upload_type_inside_another_type_is_refused() -> None:
    async def nested(report: Reporter, files: dict[str, CsvUpload]) -> dict:
        return {}

    with pytest.raises(TaskDefinitionError, match="upload type"):
        task(nested)
