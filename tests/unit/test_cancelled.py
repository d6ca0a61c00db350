"""Stopping background loops: a loop that swallows a cancel (as redis-py can, below it) still ends."""

import asyncio

import pytest

from app.core.errors import cancelled


@pytest.mark.asyncio
async def test_a_task_that_swallows_cancels_is_cancelled_until_it_ends() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 2:
                    raise  # the second cancel is heeded

    async def failing() -> None:
        raise ValueError("boom")

    loop, failed = asyncio.create_task(stubborn()), asyncio.create_task(failing())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancelled([loop, failed]), 30)  # one cancel, as gather's callers gave, waits for ever
    assert loop.cancelled() and swallowed == 2
    assert isinstance(failed.exception(), ValueError)
