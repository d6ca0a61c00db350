"""A user's own task module, as a team would write one outside `app/` (loaded with
TASK_MODULES=tests.support.user_tasks): the public task API used the way docs/tasks.md shows it."""

import asyncio
import multiprocessing
import re
import time
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.tasks import Line, Reporter, SyncReporter, Text, TransientError, task


@task(description="Counts the words of a text", timeout=60, max_attempts=2)
async def word_count(
    report: Reporter,
    text: Annotated[Text, Field(title="Text to count", description="Any text; words are split on blanks.")],
    repeat: Annotated[int, Field(ge=1, le=100, description="Count it this many times over.")] = 1,
    pause: Annotated[float, Field(ge=0, le=5, description="Seconds to wait between counts.")] = 0.0,
) -> dict:
    words = 0
    for done in range(repeat):
        await report(100 * done / repeat, f"count {done + 1} of {repeat}")
        words += len(text.split())
        await report.log(f"counted {words} words so far")
        await asyncio.sleep(pause)
    return {"words": words}


class Shape(BaseModel):
    """A rectangle's sides."""

    width: Annotated[int, Field(ge=1, le=1000, description="Width in units.")] = 3
    height: Annotated[int, Field(ge=1, le=1000, description="Height in units.")] = 4
    unit: Literal["cm", "m"] = "cm"


@task
async def area(report: Reporter, shape: Shape) -> dict:
    """The area of a rectangle (its parameters are one pydantic model)."""
    await report(50, "multiplying")
    return {"area": shape.width * shape.height, "unit": f"{shape.unit}²"}


@task
def slow_sum(report: SyncReporter, upto: Annotated[int, Field(ge=1, le=10**6)] = 1000,
             pause: Annotated[float, Field(ge=0, le=5)] = 0.0) -> dict:
    """A plain function: it runs in a thread, reporting without await."""
    total = 0
    for step in range(10):
        report(step * 10, f"block {step + 1} of 10")
        total += sum(range(step * upto // 10, (step + 1) * upto // 10))
        time.sleep(pause)
    report.log(f"summed to {upto}")
    return {"sum": total}


@task(executor="process", timeout=30)
def burn(report: SyncReporter, seconds: Annotated[float, Field(ge=0, le=60, description="CPU seconds to burn.")] = 1.0,
         helpers: Annotated[int, Field(ge=0, le=4, description="Processes of its own to square numbers in.")] = 0,
         fail_with: Line = "") -> dict:
    """CPU-bound pure Python in a child process: the worker's loop never waits on it."""
    report(1, "burning")
    end, spins = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        spins += 1  # no report inside: only killing the process can stop it early
    report.log(f"{spins} spins")
    if fail_with:
        raise ValueError(fail_with)
    if helpers:
        with multiprocessing.get_context("spawn").Pool(helpers) as pool:
            return {"spins": spins, "squares": pool.map(square, range(5))}
    return {"spins": spins}


def square(n: int) -> int:
    return n * n


def _limits(report: SyncReporter) -> dict:
    """The operator's limits as a plain function sees them."""
    return {"csv_max_columns": report.limits.csv_max_columns, "image_max_pixels": report.limits.image_max_pixels}


limits_in_thread = task(name="limits_in_thread")(_limits)
limits_in_process = task(name="limits_in_process", executor="process")(_limits)


@task(executor="process", timeout=60)
def grind(report: SyncReporter, size: Annotated[int, Field(ge=1, le=200_000)] = 1000) -> dict:
    """CPU-bound in one C call that holds the GIL (a regex backtracking through a run of punctuation,
    quadratic in `size`: 60,000 takes most of a minute), in a child process: the worker's loop never waits."""
    report(1, "grinding")
    found = re.match(r"\S.*?(?:[.!?]+(?=\s|\Z)|\Z)", "a" + "!" * size + "x", re.S)
    return {"matched": len(found.group()) if found else 0}


@task(max_attempts=2)
async def explode(report: Reporter, message: str = "boom", transient: bool = False,
                  recover_after: Annotated[int, Field(ge=0, le=5, description="Failures before it succeeds "
                                                                               "(0: it never does).")] = 0) -> dict:
    """Raises (its traceback is kept with the task), or succeeds once it has failed `recover_after` times."""
    await report(10, "about to fail")
    failures = report.data_dir / f"{report.task_id}.failures"
    failed = int(failures.read_text()) if failures.exists() else 0
    if recover_after and failed >= recover_after:
        return {"failed_before": failed}
    failures.write_text(str(failed + 1))
    return fail_deeply(message, transient)


def fail_deeply(message: str, transient: bool) -> dict:
    if transient:
        raise TransientError(message)
    raise ValueError(message)
