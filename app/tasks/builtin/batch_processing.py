"""The `batch_processing` task: processes each item of a list on its own, with per-item outcomes."""

import hashlib
import math
import sys
from typing import Annotated, Any

from pydantic import Field

from app.tasks import Reporter, task
from app.tasks.builtin.pacing import Pace

MAX_LISTED = 100
# characters of a string's upper case shown: a result lists 100 items and is read in the dashboard, where
# 100 strings of 10,000 characters would bury the rest (and pass RESULT_MAX_BYTES, which moves it to a file)
MAX_UPPER = 500


def _max_int_bits(digits: int) -> float:
    """Bits of the longest integer Python writes in decimal, given its int_max_str_digits (0: no limit)."""
    return int((digits - 1) * math.log2(10)) if digits else math.inf


MAX_INT_BITS = _max_int_bits(sys.get_int_max_str_digits())


def process_item(item: object) -> dict[str, Any]:
    """One item's output; raises ValueError for an item that cannot be processed."""
    if isinstance(item, str):
        upper = item.upper()
        shown = {"upper": upper[:MAX_UPPER], "upper_truncated": True} if len(upper) > MAX_UPPER else {"upper": upper}
        return {"length": len(item), **shown, "sha256": hashlib.sha256(item.encode()).hexdigest()}
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        try:
            square = item * item
            root = math.sqrt(item) if item >= 0 else None
        except OverflowError:
            raise ValueError("number too large") from None
        too_large = not math.isfinite(square) if isinstance(square, float) else abs(square).bit_length() > MAX_INT_BITS
        if too_large:
            raise ValueError("number too large")  # its square could not be written as JSON
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
    # the delay is a minimum pace per item: the work itself counts towards it
    pace = Pace(len(data) * delay_per_item)
    for index, item in enumerate(data):
        stage = f"item {index + 1}/{len(data)}"
        await report(100 * index / len(data), stage)
        try:
            outcomes.append({"index": index, "ok": True, "output": process_item(item)})
        except ValueError as exc:
            if fail_fast:
                raise ValueError(f"item {index} failed: {exc}") from None
            outcomes.append({"index": index, "ok": False, "error": str(exc)})
            failed += 1
            await report.log(f"item {index} failed: {exc}")
        await pace.wait((index + 1) / len(data), lambda share: report(100 * share, stage))
    await report.log(f"{len(data) - failed} of {len(data)} items succeeded, {failed} failed")
    everything_failed = bool(data) and failed == len(data)
    # every item was tried: the bar of a batch that failed them all stands at its end too
    await report(100, "every item failed" if everything_failed else "done")
    if everything_failed:
        # a batch with nothing to show for it fails; one with some successes lists its failures instead
        count = f"all {len(data)} items" if len(data) > 1 else "the item"
        raise ValueError(f"{count} failed: item 0: {outcomes[0]['error']}")
    return {
        "total": len(data),
        "succeeded": len(data) - failed,
        "failed": failed,
        "items": outcomes[:MAX_LISTED],
        "items_truncated": len(outcomes) > MAX_LISTED,
    }
