"""Group commit (core/batches.py): what arrives while a batch is handled forms the next batch; each item
gets its own outcome, and an error of the whole batch reaches every item of it."""

import asyncio

import pytest

from app.core.batches import Batches


async def test_items_that_arrive_during_a_batch_form_the_next_each_with_its_own_outcome() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def handle(items: list[int]) -> list[int | Exception]:
        batches.append(items)
        if len(batches) == 1:
            await release.wait()
        return [ValueError(item) if item == 3 else item * 10 for item in items]

    batched: Batches[int, int] = Batches(handle, "test")
    first = asyncio.create_task(batched.add(1))
    await asyncio.sleep(0)  # the first batch is being handled
    later = [asyncio.create_task(batched.add(item)) for item in (2, 3, 4)]
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(first, *later, return_exceptions=True)
    assert batches == [[1], [2, 3, 4]]
    assert outcomes[0] == 10 and outcomes[1] == 20 and outcomes[3] == 40
    assert isinstance(outcomes[2], ValueError)


async def test_an_error_of_the_batch_is_every_items_and_the_next_batch_still_runs() -> None:
    async def handle(items: list[str]) -> list[str]:
        if "bad" in items:
            raise ConnectionError("gone")
        return items

    batched: Batches[str, str] = Batches(handle, "test")
    results = await asyncio.gather(batched.add("bad"), batched.add("x"), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    assert await batched.add("y") == "y"


async def test_a_caller_that_went_away_does_not_stop_the_others() -> None:
    gate = asyncio.Event()

    async def handle(items: list[int]) -> list[int]:
        await gate.wait()
        return items

    batched: Batches[int, int] = Batches(handle, "test")
    gone, stays = asyncio.create_task(batched.add(1)), asyncio.create_task(batched.add(2))
    await asyncio.sleep(0)
    gone.cancel()
    gate.set()
    assert await stays == 2
    with pytest.raises(asyncio.CancelledError):
        await gone
