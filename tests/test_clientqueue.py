"""ClientQueue: progress coalesces per task, status changes are kept, overflow closes the client."""

import pytest

from app.clientqueue import ClientQueue, Closed
from app.wire import Event


def ev(seq: int, task: str, change: str) -> Event:
    return Event(seq, change, task, "RUNNING", f"{task}@{seq}")


async def drain(queue: ClientQueue) -> list[str]:
    out = []
    while len(queue):
        item = await queue.get()
        out.append(item.frame if isinstance(item, Event) else item)
    return out


async def test_progress_coalesces_and_order_of_release_is_kept() -> None:
    queue = ClientQueue(100)
    queue.put(ev(1, "a", "progress"))
    queue.put(ev(2, "b", "status"))
    queue.put(ev(3, "a", "progress"))
    queue.put(ev(4, "a", "progress"))
    assert await drain(queue) == ["b@2", "a@4"]


async def test_a_status_change_supersedes_pending_progress_but_is_itself_kept() -> None:
    queue = ClientQueue(100)
    queue.put(ev(1, "a", "progress"))
    queue.put(ev(2, "a", "status"))
    queue.put(ev(3, "a", "status"))
    assert await drain(queue) == ["a@2", "a@3"]


async def test_overflow_closes_with_1013_and_drops_nothing_silently() -> None:
    queue = ClientQueue(3)
    for seq in range(1, 5):
        queue.put(ev(seq, f"t{seq}", "status"))
    with pytest.raises(Closed) as closed:
        await queue.get()
    assert closed.value.code == 1013


async def test_many_progress_updates_of_one_task_never_overflow() -> None:
    queue = ClientQueue(3)
    for seq in range(1, 1000):
        queue.put(ev(seq, "a", "progress"))
    assert await drain(queue) == ["a@999"]
