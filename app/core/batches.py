"""Group commit: the calls that arrive while one batch is being handled form the next batch, handled in
one go (one transaction, one round trip) instead of one by one."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from app.core.logs import detached

T = TypeVar("T")
R = TypeVar("R")


class Batches(Generic[T, R]):
    """`add(item)` waits for the outcome of its item: `handle` gets a batch's items in order and returns
    each one's outcome, a value or an Exception for that item alone; an exception it raises is every
    item's."""

    def __init__(self, handle: Callable[[list[T]], Awaitable[Sequence[R | Exception]]], name: str) -> None:
        self.handle = handle
        self.name = name
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def add(self, item: T) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._runner is None or self._runner.done():
            # a batch is many callers' items: not run in the context of whichever caller came first
            self._runner = detached(self._run(), name=self.name)
        return await done

    async def _run(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                outcomes: Sequence[R | BaseException] = await self.handle([item for item, _ in batch])
            except BaseException as exc:
                _settle(batch, [exc] * len(batch))
                if not isinstance(exc, Exception):
                    raise
            else:
                _settle(batch, outcomes)


def _settle(batch: list[tuple[T, "asyncio.Future[R]"]], outcomes: Sequence[R | BaseException]) -> None:
    for (_, done), outcome in zip(batch, outcomes, strict=True):
        if done.done():  # its caller went away
            continue
        if isinstance(outcome, BaseException):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)
