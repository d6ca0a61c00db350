"""The `batch_processing` task: processes each item of a list on its own, with per-item outcomes."""

import asyncio
import hashlib
import math
import time
from typing import Any

from app.tasks.base import Reporter, TaskType
from app.tasks.params import Bool, Float, List

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


async def run(params: dict[str, Any], report: Reporter) -> dict[str, Any]:
    data: list[object] = params["data"]
    delay: float = params["delay_per_item"]
    outcomes: list[dict[str, Any]] = []
    failed = 0
    start = time.monotonic()
    for index, item in enumerate(data):
        await report(100 * index / len(data), f"item {index + 1}/{len(data)}")
        try:
            outcomes.append({"index": index, "ok": True, "output": process_item(item)})
        except ValueError as exc:
            if params["fail_fast"]:
                raise ValueError(f"item {index} failed: {exc}") from None
            outcomes.append({"index": index, "ok": False, "error": str(exc)})
            failed += 1
            await report.log(f"item {index} failed: {exc}")
        # the delay is a minimum pace: sleep only what the work itself did not take
        await asyncio.sleep(max(0.0, start + (index + 1) * delay - time.monotonic()))
    await report.log(f"{len(data) - failed} of {len(data)} items succeeded, {failed} failed")
    await report(100, "done")
    return {
        "total": len(data),
        "succeeded": len(data) - failed,
        "failed": failed,
        "items": outcomes[:MAX_LISTED],
        "items_truncated": len(outcomes) > MAX_LISTED,
    }


TASK_TYPE = TaskType(
    name="batch_processing",
    description="Processes each item: strings get length, upper case and SHA-256; numbers square and root.",
    params={
        "data": List(("alpha", "beta", "gamma", "delta", "epsilon"), max_items=10_000, item_max_length=10_000,
                     description="Items to process: strings or numbers."),
        "delay_per_item": Float(0.1, minimum=0.0, maximum=10.0, description="Minimum seconds per item."),
        "fail_fast": Bool(False, description="Fail the whole batch at the first item that fails."),
    },
    run=run,
    timeout=3600.0,
)
