"""ClientQueue: progress coalesces per task, status changes are kept, overflow (in items or bytes) closes the client."""

import pytest

from app.core.wire import Event, websocket_frame
from app.web.live.client_queue import ClientQueue, Closed


def ev(seq: int, task: str, change: str, frame: str = "") -> Event:
    """An event as the hub makes it: its frame (`task@seq` unless given) also made into a WebSocket frame."""
    frame = frame or f"{task}@{seq}"
    return Event(seq, change, task, "RUNNING", frame, websocket_frame(frame))


async def drain(queue: ClientQueue) -> list[str]:
    return [item.frame if isinstance(item, Event) else item for item in await queue.take()]


async def test_progress_coalesces_and_order_of_release_is_kept() -> None:
    queue = ClientQueue(100, 1 << 20)
    queue.put(ev(1, "a", "progress"))
    queue.put(ev(2, "b", "status"))
    queue.put(ev(3, "a", "progress"))
    queue.put(ev(4, "a", "progress"))
    assert await drain(queue) == ["b@2", "a@4"]


async def test_a_status_change_supersedes_pending_progress_but_is_itself_kept() -> None:
    queue = ClientQueue(100, 1 << 20)
    queue.put(ev(1, "a", "progress"))
    queue.put(ev(2, "a", "status"))
    queue.put(ev(3, "a", "status"))
    assert await drain(queue) == ["a@2", "a@3"]


async def test_overflow_closes_with_1013_and_drops_nothing_silently() -> None:
    queue = ClientQueue(3, 1 << 20)
    for seq in range(1, 5):
        queue.put(ev(seq, f"t{seq}", "status"))
    with pytest.raises(Closed) as closed:
        await queue.take()
    assert closed.value.code == 1013


async def test_many_progress_updates_of_one_task_never_overflow() -> None:
    queue = ClientQueue(3, 1 << 20)
    for seq in range(1, 1000):
        queue.put(ev(seq, "a", "progress"))
    assert await drain(queue) == ["a@999"]


async def test_take_hands_over_everything_waiting_in_release_order_with_own_frames() -> None:
    queue = ClientQueue(100, 1 << 20)
    queue.put_frame("pong")
    queue.put(ev(1, "a", "status"))
    queue.put(ev(2, "b", "progress"))
    queue.put_frame("logs")
    queue.put(ev(3, "b", "progress"))
    assert await drain(queue) == ["pong", "a@1", "logs", "b@3"]
    assert len(queue) == 0


async def test_a_closed_queue_takes_nothing_more() -> None:
    queue = ClientQueue(3, 1 << 20)
    queue.close(1012, "server restarting")
    queue.put(ev(1, "a", "status"))
    queue.put_frame("pong")
    assert len(queue) == 0
    with pytest.raises(Closed) as closed:
        await queue.take()
    assert closed.value.code == 1012


async def test_heartbeats_keep_only_each_workers_latest_and_never_overflow() -> None:
    queue = ClientQueue(4, 1 << 20)
    queue.put_frame("pong")
    for beat in range(100):
        queue.put_frame(f"w1@{beat}", supersedes="w1")
        queue.put_frame(f"w2@{beat}", supersedes="w2")
    queue.put(ev(1, "w1", "progress"))  # a task id equal to a worker id is another key
    queue.put_frame("w1@stopped", supersedes="w1")
    assert await drain(queue) == ["pong", "w2@99", "w1@1", "w1@stopped"]


async def test_frames_over_the_byte_bound_close_with_1013() -> None:
    queue = ClientQueue(100, 1000)
    for _ in range(3):
        queue.put_frame("x" * 400)  # a log page a client asked for and does not read
    with pytest.raises(Closed) as closed:
        await queue.take()
    assert closed.value.code == 1013


async def test_events_count_toward_the_byte_bound_and_superseded_ones_no_longer_do() -> None:
    queue = ClientQueue(100, 1000)
    for seq in range(1, 50):
        queue.put(ev(seq, "a", "progress", "x" * 300))
    queue.put(ev(50, "b", "status", "y" * 300))
    assert [item.seq for item in await queue.take()] == [49, 50]  # type: ignore[union-attr]
    for seq in range(51, 55):
        queue.put(ev(seq, f"t{seq}", "status", "z" * 300))
    with pytest.raises(Closed):
        await queue.take()


async def test_the_byte_bound_counts_utf8_bytes_not_characters() -> None:
    frames, events = ClientQueue(100, 1000), ClientQueue(100, 1000)
    frames.put_frame("é" * 300)  # 300 characters, 600 bytes
    frames.put_frame("é" * 300)
    events.put(ev(1, "a", "status", "日" * 200))  # 200 characters, 600 bytes
    events.put(ev(2, "b", "status", "日" * 200))
    for queue in (frames, events):
        with pytest.raises(Closed) as closed:
            await queue.take()
        assert closed.value.code == 1013


async def test_one_frame_over_the_byte_bound_still_goes_to_a_client_that_is_not_behind() -> None:
    queue = ClientQueue(100, 1000)
    queue.put_frame("x" * 5000)
    assert await drain(queue) == ["x" * 5000]
    queue.put(ev(1, "a", "status"))
    queue.put(ev(2, "b", "progress", "x" * 5000))  # behind now: one item already waits
    with pytest.raises(Closed):
        await queue.take()


async def test_beats_superseded_free_their_bytes() -> None:
    queue = ClientQueue(100, 1000)
    for beat in range(100):
        queue.put_frame(f"{beat:03}" + "w" * 300, supersedes="w1")
        queue.put_frame(f"{beat:03}" + "v" * 300, supersedes="w2")
    assert [frame[:3] for frame in await drain(queue)] == ["099", "099"]
