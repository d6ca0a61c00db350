"""The `batch_processing` task: processes each item of a list on its own, with per-item outcomes."""

import asyncio
import hashlib
import math
import time
from typing import Annotated, Any

from pydantic import Field

from app.tasks import Reporter, task

MAX_LISTED = 100


def process_item(item: object) -> dict[str, Any]:
    """One item's output; raises ValueError for an item that cannot be processed."""
    if isinstance(item, str):
        return {"length": len(item), "upper": item.upper(),
                "sha256": hashlib.sha256(item.encode()).hexdigest()}
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        try:
            square = item * item
            root = math.sqrt(item) if item >= 0 else None
        except OverflowError:
            raise ValueError("number too large") from None
        if isinstance(square, float) and not math.isfinite(square):
            raise ValueError("number too large")  # its square would not be valid JSON
        return {"value": item, "square": square, "sqrt": root}
    raise ValueError("unsupported item type")


Item = Annotated[str, Field(max_length=10_000)] | int | float | bool | None  # a JSON scalar


@task(timeout=3600.0)
async def batch_processing(
    report: Reporter,
    data: Annotated[list[Item], Field(max_length=10_000, description="Items to process: strings or numbers.")] = [
        "alpha", "beta", "gamma", "delta", "epsilon"],
    delay_per_item: Annotated[float, Field(ge=0.0, le=10.0, description="Minimum seconds per item.")] = 0.1,
    fail_fast: Annotated[bool, Field(description="Fail the whole batch at the first item that fails.")] = False,
) -> dict[str, Any]:
    """Processes each item: strings get length, upper case and SHA-256; numbers square and root."""
    outcomes: list[dict[str, Any]] = []
    failed = 0
    start = time.monotonic()
    for index, item in enumerate(data):
        await report(100 * index / len(data), f"item {index + 1}/{len(data)}")
        try:
            outcomes.append({"index": index, "ok": True, "output": process_item(item)})
        except ValueError as exc:
            if fail_fast:
                raise ValueError(f"item {index} failed: {exc}") from None
            outcomes.append({"index": index, "ok": False, "error": str(exc)})
            failed += 1
            await report.log(f"item {index} failed: {exc}")
        # the delay is a minimum pace: sleep only what the work itself did not take
        await asyncio.sleep(max(0.0, start + (index + 1) * delay_per_item - time.monotonic()))
    await report.log(f"{len(data) - failed} of {len(data)} items succeeded, {failed} failed")
    await report(100, "done")
    return {
        "total": len(data),
        "succeeded": len(data) - failed,
        "failed": failed,
        "items": outcomes[:MAX_LISTED],
        "items_truncated": len(outcomes) > MAX_LISTED,
    }
