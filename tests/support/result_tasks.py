"""Task types whose results the dashboard's generic view must make readable (loaded with
TASK_MODULES=tests.support.result_tasks): any JSON object given back as it came, and a result of
about a megabyte, wide, long and deep."""

from typing import Annotated, Any

from pydantic import Field

from app.tasks import Reporter, task


@task
async def echo(report: Reporter,
               value: Annotated[dict[str, Any], Field(description="Returned as the result.")]) -> dict:
    """Its result is the object it was given: keys and values of the caller's choosing."""
    await report(50, "echoing")
    return value


def nested(depth: int) -> dict[str, Any]:
    return {"level": depth, "inner": nested(depth - 1) if depth > 1 else "bottom"}


@task
async def sprawl(report: Reporter, rows: Annotated[int, Field(ge=1, le=20_000)] = 5000,
                 depth: Annotated[int, Field(ge=1, le=50)] = 30) -> dict:
    """A result near the 1 MB cap: a long list of wide objects, a long list of numbers, deep nesting."""
    await report(10, "building")
    return {
        "records": [{f"field_{column}": f"row {row} column {column}" for column in range(12)} for row in range(rows)],
        "numbers": list(range(rows * 4)),
        "deep": nested(depth),
    }
