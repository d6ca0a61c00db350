"""`/ws` over a real uvicorn server with a real WebSocket client: hello, live, since-replay, slow client."""

import asyncio
import base64
import gc
import json
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.core import keys
from app.core.wire import encode_event
from app.settings import Settings
from app.store.stores import open_stores
from app.worker.resilient import ResilientWorker
from tests.support.servers import WS_PROTOCOL, make_settings, serve, served
from tests.support.waits import receive, receive_until, submit, wait_for_status, wait_until


def final(task_id: str):
    return lambda f: f["type"] == "task" and f["task"]["id"] == task_id and f["task"]["status"] == "SUCCESS"


async def test_hello_then_live_frames_in_seq_order_to_success(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker
) -> None:
    async with connect(f"ws://{web}/ws") as ws:
        hello = await receive(ws)
        assert hello["type"] == "hello" and isinstance(hello["seq"], int)
        task = await submit(client, "batch_processing", data=list(range(10)), delay_per_item=0.05)
        frames = await receive_until(ws, final(task["id"]))
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and seqs[0] > hello["seq"]
    statuses = [f["task"]["status"] for f in frames]
    assert statuses[0] == "PENDING" and frames[0]["change"] == "created"
    assert "RUNNING" in statuses and statuses[-1] == "SUCCESS"
    assert any(f["change"] == "progress" and 0 < f["task"]["progress"] < 100 for f in frames)


async def test_resume_with_since_gets_every_change_with_no_gap_and_no_duplicate(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker
) -> None:
    async with connect(f"ws://{web}/ws") as ws:
        await receive(ws)
        first = await submit(client, "text_processing")
        seen = await receive_until(ws, final(first["id"]))
    last_seq = seen[-1]["seq"]
    # While disconnected: new tasks run to the end, and one stays pending.
    missed = [await submit(client, "text_processing") for _ in range(5)]
    for task in missed:
        await wait_for_status(client, task["id"], {"SUCCESS"})
    async with connect(f"ws://{web}/ws?since={last_seq}") as ws:
        hello = await receive(ws)
        live_task = await submit(client, "batch_processing", data=[1, 2], delay_per_item=0.05)
        frames = await receive_until(ws, final(live_task["id"]))
    replayed = [f for f in frames if f["change"] == "replay"]
    assert {f["task"]["id"] for f in replayed} == {t["id"] for t in missed}
    assert all(f["task"]["status"] == "SUCCESS" and last_seq < f["seq"] <= hello["seq"] for f in replayed)
    live = [f for f in frames if f["change"] != "replay"]
    assert live and all(f["seq"] > hello["seq"] for f in live)
    pairs = [(f["task"]["id"], f["seq"]) for f in frames]
    assert len(pairs) == len(set(pairs))
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs)


async def test_a_default_client_follows_and_resumes_past_a_task_of_maximum_size(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker
) -> None:
    """A 1,000,000-character text made a 1 MB frame, and with its result (before the top word was shown cut)
    a 2 MB one, which a default client (1 MiB max_size) refuses, breaking its `since=` resume for good.
    Lists and frames carry large fields cut short and named in `truncated`; GET /api/tasks/{id} has the
    whole task."""
    text = "a" * 1_000_000  # one word: the largest text_processing result there is
    async with connect(f"ws://{web}/ws") as ws:  # websockets' default max_size: 1 MiB
        hello = await receive(ws)
        task = await submit(client, "text_processing", text=text)
        live = await receive_until(ws, final(task["id"]), timeout=60)
    async with connect(f"ws://{web}/ws?since={hello['seq']}") as ws:
        replayed = await receive_until(ws, final(task["id"]))
    for frame in [*live, *replayed]:
        assert len(json.dumps(frame, ensure_ascii=False).encode()) < 256 * 1024
    last = replayed[-1]["task"]
    assert last["truncated"] == ["parameters"] and last["parameters"]["text"].endswith(" …")
    page = await client.get("/api/tasks")
    assert len(page.content) < 256 * 1024 and page.json()["tasks"][0]["truncated"] == ["parameters"]
    whole = (await client.get(f"/api/tasks/{task['id']}")).json()
    assert whole["parameters"]["text"] == text and "truncated" not in whole
    assert whole["result_data"] == last["result_data"] and whole["result_data"]["char_count"] == len(text)


async def test_replay_and_live_meet_without_gap_under_concurrent_changes(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker
) -> None:
    """Reconnect repeatedly while tasks change: the union of what one client sees equals the database."""
    tasks = [await submit(client, "batch_processing", data=list(range(6)), delay_per_item=0.05) for _ in range(6)]
    latest: dict[str, int] = {}
    statuses: dict[str, str] = {}
    since = 0
    for _ in range(6):
        async with connect(f"ws://{web}/ws?since={since}") as ws:
            await receive(ws)
            end = asyncio.get_running_loop().time() + 0.4
            while asyncio.get_running_loop().time() < end:
                try:
                    frame = await receive(ws, 0.1)
                except TimeoutError:
                    continue
                task = frame["task"]
                assert frame["seq"] > latest.get(task["id"], 0), "duplicate or out-of-order frame"
                latest[task["id"]] = frame["seq"]
                statuses[task["id"]] = task["status"]
                since = max(since, frame["seq"])
    for task in tasks:
        await wait_for_status(client, task["id"], {"SUCCESS"})
    async with connect(f"ws://{web}/ws?since={since}") as ws:
        hello = await receive(ws)
        while since < hello["seq"]:
            frame = await receive(ws, 2)
            latest[frame["task"]["id"]] = frame["seq"]
            statuses[frame["task"]["id"]] = frame["task"]["status"]
            since = frame["seq"]
    for task in tasks:
        stored = (await client.get(f"/api/tasks/{task['id']}")).json()
        assert statuses[task["id"]] == stored["status"] == "SUCCESS"
        assert latest[task["id"]] == stored["seq"]


async def test_invalid_since_is_refused_with_1008(web: str) -> None:
    async with connect(f"ws://{web}/ws?since=abc") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_ping_gets_pong_and_junk_gets_an_error(web: str) -> None:
    async with connect(f"ws://{web}/ws") as ws:
        await receive(ws)
        await ws.send('{"type": "ping"}')
        assert (await receive(ws))["type"] == "pong"
        await ws.send("nonsense")
        assert (await receive(ws))["type"] == "error"


WRONG_MESSAGES = {
    "logs without task_id (it crashed the handler)": ('{"type": "logs"}', '"task_id"'),
    "not JSON": ("nonsense", "not JSON"),
    "not an object": ("[1, 2]", '"type"'),
    "no type": ('{"task_id": "x"}', '"type"'),
    "unknown type": ('{"type": "subscribe"}', "unknown message type 'subscribe'"),
    "logs with a number for task_id": ('{"type": "logs", "task_id": 5}', '"task_id"'),
    "logs with a too long task_id": (json.dumps({"type": "logs", "task_id": "x" * 100}), '"task_id"'),
    "logs with a negative after": ('{"type": "logs", "task_id": "x", "after": -1}', '"after"'),
    "logs with a text after": ('{"type": "logs", "task_id": "x", "after": "3"}', '"after"'),
    "workers with a text follow": ('{"type": "workers", "follow": "yes"}', '"follow"'),
    "over 1 KiB": (json.dumps({"type": "ping", "pad": "x" * 2000}), "over 1024 characters"),
    "logs with a lone surrogate for task_id (it crashed the handler)":
        (r'{"type": "logs", "task_id": "\ud800"}', '"task_id" contains a lone surrogate'),
    "a lone surrogate in a key": (r'{"type": "ping", "\udfff": 1}', "message has a key with a lone surrogate"),
}


async def test_each_wrong_message_gets_an_error_naming_the_problem_and_the_connection_goes_on(
    frames_web: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with connect(f"ws://{frames_web}/ws") as ws:
        await receive(ws)
        for name, (text, named) in WRONG_MESSAGES.items():
            await ws.send(text)
            answer = await receive(ws)
            assert answer["type"] == "error" and named in answer["detail"], (name, answer)
        await ws.send('{"type": "ping"}')
        assert (await receive(ws))["type"] == "pong"
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_a_binary_message_is_closed_with_1003_and_a_huge_one_with_1009(
    frames_web: str, caplog: pytest.LogCaptureFixture
) -> None:
    for message, code in [(b"\x00\x01", 1003), ("x" * 100_000, 1009)]:
        async with connect(f"ws://{frames_web}/ws", compression=None) as ws:
            await receive(ws)
            await ws.send(message)
            with pytest.raises(ConnectionClosed) as closed:
                await receive(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    async with httpx.AsyncClient(base_url=f"http://{frames_web}", timeout=10) as http:
        async def handlers_ended() -> bool:
            return (await http.get("/api/health")).json()["events"]["clients"] == 0

        await wait_until(handlers_ended, "the handlers ended")
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


async def task_with_a_long_log(client: httpx.AsyncClient, settings: Settings, lines: int, width: int) -> str:
    """A task whose stored log holds `lines` lines of `width` characters (written as its worker writes them)."""
    task = await submit(client, "text_processing")
    async with open_stores(str(settings.database_url)) as stores:
        for start in range(0, lines, 500):
            count = min(500, lines - start)
            await stores.logs.append(task["id"], 1, [(datetime.now(UTC), f"{start + i:05} " + "x" * (width - 6))
                                                     for i in range(count)])
    return task["id"]  # type: ignore[no-any-return]


async def test_a_long_log_comes_in_bounded_pages_each_asked_for_by_the_client(
    client: httpx.AsyncClient, settings: Settings, web: str
) -> None:
    task_id = await task_with_a_long_log(client, settings, 1000, 2000)  # 2 MB, the most a task keeps by default
    async with connect(f"ws://{web}/ws", max_size=None) as ws:
        await receive(ws)
        await ws.send(json.dumps({"type": "logs", "task_id": task_id}))
        pages: list[dict[str, Any]] = []
        while True:
            raw = await asyncio.wait_for(ws.recv(), 10)
            assert len(raw) < 300_000, "a page is bounded"
            pages.append(json.loads(raw))
            if "next" not in pages[-1]:
                break
            with pytest.raises(TimeoutError):  # the next page waits until the client asks for it
                await asyncio.wait_for(ws.recv(), 0.2)
            await ws.send(json.dumps({"type": "logs", "task_id": task_id, "after": pages[-1]["next"]}))
    numbers = [line["n"] for page in pages for line in page["lines"]]
    stored = [line["n"] for line in (await client.get(f"/api/tasks/{task_id}/logs?limit=5000")).json()["lines"]]
    assert numbers == stored and len(stored) == 1000 and len(pages) > 4
    assert all(page["next"] == page["lines"][-1]["n"] for page in pages[:-1])


async def test_logs_requests_past_the_rate_wait_and_are_all_answered(
    client: httpx.AsyncClient, settings: Settings, web: str
) -> None:
    task_id = await task_with_a_long_log(client, settings, 3, 20)
    async with connect(f"ws://{web}/ws") as ws:
        await receive(ws)
        for _ in range(40):
            await ws.send(json.dumps({"type": "logs", "task_id": task_id}))
        loop = asyncio.get_running_loop()
        started, answered_in_a_second = loop.time(), 0
        for _ in range(40):
            assert (await receive(ws))["type"] == "logs"
            answered_in_a_second += loop.time() - started < 1.0
    assert answered_in_a_second <= 32  # a burst of 20, then 10 a second


async def test_with_tokens_a_wrong_first_message_is_closed_with_1008(
    redis_url: str, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with served(make_settings(redis_url, db_url, tmp_path, API_TOKEN="secret")) as address:
        for first in [b"\x00\x01", "nonsense", "[1]", '{"type": "auth", "token": 5}', '{"type": "auth"}',
                      r'{"type": "auth", "token": "\ud800"}']:  # a lone surrogate crashed the token's comparison
            async with connect(f"ws://{address}/ws") as ws:
                await ws.send(first)
                with pytest.raises(ConnectionClosed) as closed:
                    await receive(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008, first
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


def small_buffer_socket(address: str) -> socket.socket:
    """A client socket whose receive window stays small (no autotuning up to tens of MB), so a
    client that does not read pushes back on the server within a few frames, as over a real network."""
    host, port = address.rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect((host, int(port)))
    return sock


async def test_a_client_that_does_not_read_is_bounded_and_closed_1013_then_resumes(
    redis_url: str, db_url: str, tmp_path: Path
) -> None:
    settings: Settings = make_settings(redis_url, db_url, tmp_path, WS_QUEUE_SIZE="5")
    server, serving, address = await serve(settings)
    try:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            async with connect(f"ws://{address}/ws", sock=small_buffer_socket(address), max_size=None,
                               max_queue=1) as ws:
                hello = await receive(ws)
                # ~120 KB per frame (under the size where a task is cut short: core/wire.py brief), 12 MB in
                # all; random, so permessage-deflate cannot shrink it
                created = [await submit(http, "text_processing", text=base64.b64encode(os.urandom(90_000)).decode())
                           for _ in range(100)]
                got, code = [], None
                try:
                    while True:
                        got.append(await receive(ws, 5))
                except ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd else None
            assert code == 1013 and len(got) < len(created)
            last = max([hello["seq"]] + [f["seq"] for f in got])
            async with connect(f"ws://{address}/ws?since={last}", max_size=None) as ws:
                await receive(ws)
                rest = [await receive(ws) for _ in range(len(created) - len(got))]
            ids = {f["task"]["id"] for f in got} | {f["task"]["id"] for f in rest}
            assert ids == {t["id"] for t in created}
    finally:
        server.should_exit = True
        await serving


@pytest.fixture(params=[WS_PROTOCOL, "websockets-sansio"])
async def frames_web(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The app behind `app.wsprotocol.FramesProtocol` (live events written as ready-made frames), and
    behind uvicorn's own protocol, where /ws falls back to one ASGI send per message."""
    server, serving, address = await serve(settings, ws=request.param)
    yield address
    server.should_exit = True
    await serving


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_ready_made_frames_reach_clients_with_and_without_permessage_deflate(
    frames_web: str, worker: ResilientWorker, compression: str | None
) -> None:
    """Live frames go out uncompressed and pre-built; control answers (pong) still go through the
    protocol, compressed when negotiated: a client sees both, valid and in order."""
    async with httpx.AsyncClient(base_url=f"http://{frames_web}", timeout=10) as http, \
            connect(f"ws://{frames_web}/ws", compression=compression) as ws:
        assert (ws.response.headers.get("Sec-WebSocket-Extensions") is not None) == (compression is not None)
        hello = await receive(ws)
        task = await submit(http, "batch_processing", data=list(range(10)), delay_per_item=0.05)
        await ws.send('{"type": "ping"}')
        frames = await receive_until(ws, final(task["id"]))
    assert any(f["type"] == "pong" for f in frames)
    tasks = [f for f in frames if f["type"] == "task"]
    seqs = [f["seq"] for f in tasks]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and seqs[0] > hello["seq"]
    assert tasks[0]["change"] == "created" and tasks[-1]["task"]["status"] == "SUCCESS"


async def test_resume_through_ready_made_frames_has_no_gap(frames_web: str, worker: ResilientWorker) -> None:
    async with httpx.AsyncClient(base_url=f"http://{frames_web}", timeout=10) as http:
        async with connect(f"ws://{frames_web}/ws") as ws:
            await receive(ws)
            first = await submit(http, "text_processing")
            last_seq = (await receive_until(ws, final(first["id"])))[-1]["seq"]
        missed = await submit(http, "text_processing")
        await wait_for_status(http, missed["id"], {"SUCCESS"})
        async with connect(f"ws://{frames_web}/ws?since={last_seq}") as ws:
            await receive(ws)
            live = await submit(http, "text_processing")
            frames = await receive_until(ws, final(live["id"]))
    assert [f["task"]["id"] for f in frames if f["change"] == "replay"] == [missed["id"]]
    assert frames[-1]["task"]["id"] == live["id"] and all(f["seq"] > last_seq for f in frames)



async def test_a_client_gone_while_its_sender_waits_on_the_socket_ends_quietly(
    frames_web: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A page closed while events back up on its socket: the lost connection wakes the sender (waiting
    for the socket to drain) and the receiver at once, both end, and the handler says nothing about it."""
    async with httpx.AsyncClient(base_url=f"http://{frames_web}", timeout=10) as http:
        async with connect(f"ws://{frames_web}/ws", sock=small_buffer_socket(frames_web), max_size=None,
                           max_queue=1) as ws:
            await receive(ws)
            # ~400 KB per frame, 12 MB in all: more than the sockets hold, so the server's writes back up
            for _ in range(30):
                await submit(http, "text_processing", text=base64.b64encode(os.urandom(300_000)).decode())
            # one more event: the ready-made frames sender waits for the socket before writing it
            last = await submit(http, "text_processing")

            async def sent() -> bool:
                return (await http.get("/api/health")).json()["events"]["seq"] >= last["seq"]

            await wait_until(sent, "the last event reached the client's queue")
            ws.transport.abort()  # gone, as a closed page or a dropped network: no closing handshake

        async def handler_ended() -> bool:
            return (await http.get("/api/health")).json()["events"]["clients"] == 0

        await wait_until(handler_ended, "the client's handler ended")
    left = [task for task in asyncio.all_tasks() if task.get_coro().__name__ in {"_send_live", "_receive"}]
    assert left == []  # the server runs in this loop: its sender and receiver ended with the handler
    gc.collect()  # a task whose exception nobody retrieved says so when it is collected
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == []


async def publish(redis_url: str, changes: list[tuple[str, str, int]]) -> list[int]:
    """Changes (task id, change, size of a padding field) published in one pipeline, as a burst, with seqs
    from the product's counter; returns the seqs."""
    redis = Redis.from_url(redis_url)
    try:
        first = await redis.incrby(keys.SEQ, len(changes)) - len(changes) + 1
        pipe = redis.pipeline(transaction=False)
        for seq, (task_id, change, padding) in enumerate(changes, first):
            task = {"id": task_id, "status": "RUNNING", "seq": seq, "stage": "x" * padding}
            pipe.publish(keys.EVENTS, encode_event(task, change))  # type: ignore[arg-type]
        await pipe.execute()
    finally:
        await redis.aclose()
    return list(range(first, first + len(changes)))


async def test_a_burst_reaches_many_clients_in_seq_order_with_every_status_change(web: str, redis_url: str) -> None:
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(connect(f"ws://{web}/ws")) for _ in range(30)]
        for ws in clients:
            await receive(ws)
        changes = [(f"t{n % 10}", "status" if n % 5 == 0 or n >= 190 else "progress", 0) for n in range(200)]
        seqs = await publish(redis_url, changes)
        last = {task_id: seq for seq, (task_id, _, _) in zip(seqs, changes)}
        status_seqs = {seq for seq, (_, change, _) in zip(seqs, changes) if change == "status"}
        for ws in clients:
            frames = await receive_until(ws, lambda f: f["seq"] == seqs[-1])
            got = [f["seq"] for f in frames]
            assert got == sorted(got) and len(set(got)) == len(got)
            assert status_seqs <= set(got)  # progress may coalesce, status changes never
            assert {f["task"]["id"]: f["seq"] for f in frames} == last


async def test_a_client_that_does_not_read_holds_up_no_other(redis_url: str, db_url: str, tmp_path: Path) -> None:
    """While one client's socket is full, the others get every change as it comes; the stalled one, once
    it reads, gets all of them too (within its queue's bound, here raised above the 16 MB it falls behind,
    nothing is lost)."""
    settings = make_settings(redis_url, db_url, tmp_path, WS_QUEUE_BYTES=str(64 * 1024 * 1024))
    async with served(settings) as address, AsyncExitStack() as stack:
        stalled = await stack.enter_async_context(
            connect(f"ws://{address}/ws", sock=small_buffer_socket(address), max_size=None, max_queue=1))
        readers = [await stack.enter_async_context(connect(f"ws://{address}/ws", max_size=None)) for _ in range(3)]
        for ws in [stalled, *readers]:
            await receive(ws)
        sent = []
        for n in range(40):  # ~400 KB each, 16 MB in all: far more than the stalled client's socket holds
            sent += await publish(redis_url, [(f"t{n}", "status", 400_000)])
            for ws in readers:
                assert (await receive(ws))["seq"] == sent[-1]
        got = [(await receive(stalled))["seq"] for _ in sent]
    assert got == sent


async def test_a_client_that_does_not_read_is_closed_1013_once_a_few_megabytes_wait(web: str, redis_url: str) -> None:
    """Far fewer changes than WS_QUEUE_SIZE, but big ones: the bytes waiting (WS_QUEUE_BYTES, 4 MiB by
    default) close the client, which resumes with `since` (as in the test above)."""
    async with connect(f"ws://{web}/ws", sock=small_buffer_socket(web), max_size=None, max_queue=1) as ws:
        await receive(ws)
        sent = []
        for n in range(40):  # ~400 KB each, 16 MB in all
            sent += await publish(redis_url, [(f"t{n}", "status", 400_000)])
        got, code = [], None
        try:
            while True:
                got.append((await receive(ws))["seq"])
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
    assert code == 1013 and got == sent[:len(got)] and len(got) < len(sent)
