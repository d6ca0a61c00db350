"""The flusher: one write per client per flush, a paused client skipped without holding up the others,
a pause after a long flush, closes and replay dedup as the sender task did them."""

import asyncio
import logging
from collections.abc import Callable
from contextlib import ExitStack

import pytest

from app.core.wire import Event, websocket_frame
from app.web.live.client_queue import ClientQueue
from app.web.live.flush import Flusher


class Writer:
    """What the flusher sees of a FramesProtocol."""

    def __init__(self) -> None:
        self.paused = False
        self.writes: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.on_writable: Callable[[], None] | None = None

    def write_frames(self, data: bytes) -> None:
        self.writes.append(data)

    def close_frames(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def resume(self) -> None:
        self.paused = False
        assert self.on_writable is not None
        self.on_writable()


def ev(seq: int, task: str, change: str = "status") -> Event:
    frame = f"{task}@{seq}"
    return Event(seq, change, task, "RUNNING", frame, websocket_frame(frame))


def frames(*items: str) -> bytes:
    return b"".join(websocket_frame(item) for item in items)


async def next_turn() -> None:
    await asyncio.sleep(0)


def instant() -> Flusher:
    """A flusher whose flushes cost nothing on its clock: each one starts on the loop's next turn."""
    return Flusher(cost_clock=lambda: 0.0)


async def test_a_burst_reaches_every_client_as_one_write_in_release_order() -> None:
    flusher = instant()
    clients = [(ClientQueue(100, 1 << 20), Writer()) for _ in range(50)]
    with ExitStack() as stack:
        for queue, writer in clients:
            stack.enter_context(flusher.writing(queue, writer, {}))
        await next_turn()  # the flush of whatever queued before (nothing)
        burst = [ev(1, "a"), ev(2, "b", "progress"), ev(3, "c"), ev(4, "b", "progress"), ev(5, "a")]
        for event in burst:
            for queue, _ in clients:
                queue.put(event)
        assert all(writer.writes == [] for _, writer in clients)  # nothing written inside the burst
        await next_turn()
    assert all(writer.writes == [frames("a@1", "c@3", "b@4", "a@5")] for _, writer in clients)


async def test_a_paused_client_is_skipped_coalesces_and_is_written_when_its_socket_drains() -> None:
    flusher = instant()
    (slow_queue, slow), (fast_queue, fast) = (ClientQueue(100, 1 << 20), Writer()), (ClientQueue(100, 1 << 20), Writer())
    slow.paused = True
    with flusher.writing(slow_queue, slow, {}), flusher.writing(fast_queue, fast, {}):
        for seq in range(1, 4):
            for queue in (slow_queue, fast_queue):
                queue.put(ev(seq, "a", "progress"))
            await next_turn()
        assert fast.writes == [frames("a@1"), frames("a@2"), frames("a@3")] and slow.writes == []
        slow.resume()
        await next_turn()
        assert slow.writes == [frames("a@3")]


async def test_an_overflowing_client_is_closed_1013_once_its_socket_drains() -> None:
    flusher = instant()
    queue, writer = ClientQueue(3, 1 << 20), Writer()
    writer.paused = True
    with flusher.writing(queue, writer, {}):
        for seq in range(1, 5):
            queue.put(ev(seq, f"t{seq}"))
        await next_turn()
        assert writer.closed is None  # the close goes after what the socket holds, as an ASGI send would
        writer.resume()
        await next_turn()
    assert writer.closed is not None and writer.closed[0] == 1013 and writer.writes == []


async def test_what_queued_before_the_writer_came_goes_first_and_replayed_changes_are_not_sent_again() -> None:
    flusher = instant()
    queue, writer = ClientQueue(100, 1 << 20), Writer()
    queue.put(ev(7, "a"))  # released during the replay, which already sent a@7
    queue.put(ev(8, "b"))
    queue.put_frame("pong")
    with flusher.writing(queue, writer, {"a": 7}):
        await next_turn()
        assert writer.writes == [frames("b@8", "pong")]
        queue.put(ev(9, "a"))
        await next_turn()
        assert writer.writes[-1] == frames("a@9")


async def test_a_client_whose_write_fails_does_not_keep_the_others_from_theirs(
    caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Writer):
        def write_frames(self, data: bytes) -> None:
            raise RuntimeError("broken")

    flusher = instant()
    clients = [(ClientQueue(100, 1 << 20), Writer()), (ClientQueue(100, 1 << 20), Broken()), (ClientQueue(100, 1 << 20), Writer())]
    with ExitStack() as stack, caplog.at_level(logging.ERROR):
        for queue, writer in clients:
            stack.enter_context(flusher.writing(queue, writer, {}))
        for queue, _ in clients:
            queue.put(ev(1, "a"))
        await next_turn()
    assert [writer.writes for _, writer in clients] == [[frames("a@1")], [], [frames("a@1")]]
    assert "writing to a WebSocket client failed" in caplog.text


async def test_a_detached_client_is_no_longer_written() -> None:
    flusher = instant()
    queue, writer = ClientQueue(100, 1 << 20), Writer()
    with flusher.writing(queue, writer, {}):
        await next_turn()
    queue.put(ev(1, "a"))
    await next_turn()
    assert writer.writes == [] and writer.on_writable is None


async def test_after_a_long_flush_the_next_waits_as_long_and_carries_what_came_meanwhile() -> None:
    now = [0.0]

    class Slow(Writer):
        def write_frames(self, data: bytes) -> None:
            super().write_frames(data)
            now[0] += 0.01  # this flush costs 10 ms

    flusher = Flusher(cost_clock=lambda: now[0])
    queue, writer = ClientQueue(100, 1 << 20), Slow()
    with flusher.writing(queue, writer, {}):
        queue.put(ev(1, "a"))
        await next_turn()
        assert writer.writes == [frames("a@1")]
        for seq, task in ((2, "b"), (3, "c")):
            queue.put(ev(seq, task))
            await next_turn()
        assert writer.writes == [frames("a@1")]  # the pause: as long as the flush cost
        await asyncio.sleep(0.02)  # its timer (10 ms) fires first
    assert writer.writes == [frames("a@1"), frames("b@2", "c@3")]
