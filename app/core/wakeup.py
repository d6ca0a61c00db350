"""The loops that sleep until told (a wake-up) or until a time limit, whichever comes first."""

import asyncio


async def woken(event: asyncio.Event, seconds: float) -> bool:
    """Whether `event` was set within `seconds` (False when the time ran out).

    `asyncio.timeout`, not `wait_for`: Python 3.11's `wait_for` drops a cancellation that arrives as
    the event is set, and a loop waiting that way (a worker stopping while a job's end wakes it)
    would then never stop."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
