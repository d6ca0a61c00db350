"""What a plain (`def`) task function's reporter offers, in a thread and in a child process: the same as an
`async def` one's (docs/tasks.md), the operator's limits included."""

from pathlib import Path

import pytest

from app.tasks.define import types_in
from app.tasks.runtime import Limits
from tests.support import user_tasks
from tests.support.task_runs import FakeReporter


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["limits_in_thread", "limits_in_process"])
async def test_a_plain_task_sees_the_operators_limits(name: str, tmp_path: Path) -> None:
    (kind,) = [kind for kind in types_in(user_tasks) if kind.name == name]
    report = FakeReporter(tmp_path, limits=Limits(csv_max_columns=7, image_max_pixels=11))
    assert await kind.run({}, report) == {"csv_max_columns": 7, "image_max_pixels": 11}
