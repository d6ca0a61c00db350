"""The small vocabulary of client errors, mapped to `{"detail": ...}` with a 4xx at the edge; and
what an outage of Redis or the database looks like from inside."""

import asyncio
import math
from collections.abc import Collection
from typing import Any

from redis.exceptions import RedisError

# A dependency went away (Redis, or the database's connection): retry later, nothing to fix in the
# request. `databases` passes driver errors through, and both drivers' connection errors are OSErrors.
OUTAGES = (RedisError, OSError)


def stop_if_cancelled() -> None:
    """Raise CancelledError if the running task was asked to stop. redis-py can swallow a cancellation
    that lands as one of its reads times out, answering with its own timeout error (an outage) or, on
    pub/sub, with no message: a loop that goes on after either calls this, or it would never stop
    (a process whose shutdown waits for it hangs: seen in a stress test, 1 cancel in ~30)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


RECANCEL_EVERY = 1.0  # seconds between cancels of a task that goes on after one


async def cancelled(tasks: Collection["asyncio.Task[Any]"]) -> None:
    """Cancel the tasks and wait until every one has ended, cancelling again each RECANCEL_EVERY seconds
    any that goes on: one cancel swallowed somewhere below a forever loop (see stop_if_cancelled) must not
    keep its process from stopping. Their exceptions count as read (the caller may still ask for them)."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_EVERY)
    for task in tasks:
        if not task.cancelled():
            task.exception()


def cancel_leaked() -> bool:
    """Whether the CancelledError being handled was not asked of the running task (its `cancelling()`
    is 0): a cancel requested and then withdrawn by a timeout's clean-up stays pending in Python 3.11 and
    is raised by the next await all the same. A forever loop that died of one would stop serving for
    good (seen: the web's event hub found its listener ended by a cancel nobody made, under load)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() == 0


class ClientError(Exception):
    status_code = 400
    retry_after: int | None = None  # seconds, sent as Retry-After

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ClientError):
    status_code = 404


class Conflict(ClientError):
    status_code = 409


class Unavailable(ClientError):
    """A dependency (Redis) is down, or the queue is full: not accepted, may be repeated."""

    status_code = 503
    retry_after = 5

    @classmethod
    def redis_down(cls, exc: BaseException) -> "Unavailable":
        return cls(f"queue unavailable (Redis: {exc.__class__.__name__}); retry later")

    @classmethod
    def queue_full(cls, queued: int | None = None) -> "Unavailable":
        shown = f" ({queued} tasks waiting)" if queued is not None else ""
        return cls(f"the queue is full{shown}; retry later")


class TooManyRequests(ClientError):
    status_code = 429

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = max(1, math.ceil(retry_after))


class InvalidParameters(ClientError):
    status_code = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class BadRequest(ClientError):
    status_code = 400


class UnsupportedMediaType(ClientError):
    status_code = 415


class PayloadTooLarge(ClientError):
    status_code = 413


class InsufficientStorage(ClientError):
    """The uploads' quota is spent: not stored, may be repeated once uploads are deleted or expire."""

    status_code = 507
