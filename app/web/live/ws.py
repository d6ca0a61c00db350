"""`/ws`: hello, then (with `?since=S`) a replay of what changed after S, then live events.

The client's queue is registered before the database is read, and the replay reads only up to the
seq the queue starts after, so replay and live meet with no gap; a live event the replay already
covered (same task, seq not newer) is dropped, so nothing arrives twice.
"""

import asyncio
import json

from starlette.websockets import WebSocket, WebSocketDisconnect

from app.core.errors import InvalidParameters
from app.core.validation import check_json
from app.core.wire import Event, dumps, hello_frame, logs_frame, task_frame
from app.settings import Settings
from app.store.logs import LogStore
from app.store.tasks import TaskStore
from app.web.live import frames, messages
from app.web.live.client_queue import ClientQueue, Closed
from app.web.live.hub import EventHub
from app.web.ratelimit import RateLimiter
from app.web.security import token_access

# How a client going away surfaces, mid-send or mid-receive (starlette's, uvicorn's ClientDisconnected, a
# send after the close); anything else a sender or receiver raises is a bug.
GONE = (WebSocketDisconnect, OSError, RuntimeError)
AUTH_WAIT = 5.0  # seconds a client has to authenticate
LOG_PAGE_LINES = 500  # most stored log lines in one `logs` frame
LOG_PAGE_CHARS = 256 * 1024  # and most characters of their text (one line more than this still goes alone)
LOGS_RATE, LOGS_BURST = 10.0, 20  # `logs` requests per second per connection, and how many may come at once


def _since(websocket: WebSocket) -> int | None:
    raw = websocket.query_params.get("since")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValueError(f"since must be a non-negative integer, got {raw[:40]!r}")
    return int(raw)


async def _replay(websocket: WebSocket, store: TaskStore, after: int, upto: int, limit: int) -> dict[str, int]:
    tasks = await store.changed_between(after, upto, limit + 1)
    if len(tasks) > limit:
        # Too much to replay: the client reloads its view through REST and continues live.
        await websocket.send_text(dumps({"type": "reset", "seq": upto}))
        return {}
    for task in tasks:
        await websocket.send_text(task_frame(task, "replay"))
    return {task["id"]: task["seq"] for task in tasks}


async def _send_live(websocket: WebSocket, queue: ClientQueue, covered: dict[str, int]) -> None:
    """Without the frames writer: whatever queued up since the last send goes out as one ASGI message each."""
    while True:
        for item in await queue.take():
            if not isinstance(item, Event) or item.seq > covered.get(item.task_id, -1):
                await websocket.send_text(item.frame if isinstance(item, Event) else item)


async def _receive(websocket: WebSocket, queue: ClientQueue, hub: EventHub, logs: LogStore) -> None:
    """Answers each client message; one that is wrong gets an `error` frame saying why, a binary one a
    close (1003): the connection and the process never fail on what a client sends."""
    pace: RateLimiter | None = None  # made on the first `logs`: most of ten thousand idle clients never ask
    while True:
        received = await websocket.receive()
        if received["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(received.get("code", 1000), received.get("reason"))
        if received.get("text") is None:
            queue.close(1003, "binary messages are not understood: send JSON text")
            continue  # the close ends the connection; its disconnect ends this loop
        try:
            message = messages.parse(received["text"])
        except ValueError as exc:
            queue.put_frame(dumps({"type": "error", "detail": str(exc)}))
            continue
        if message["type"] == "ping":
            queue.put_frame(dumps({"type": "pong", "seq": hub.head}))
        elif message["type"] == "logs":
            # Past the rate, the next message waits (and the client's further ones wait in its socket).
            pace = pace or RateLimiter(LOGS_RATE, LOGS_BURST)
            while (wait := pace.take("logs")) > 0:
                await asyncio.sleep(wait)
            await _watch_logs(queue, logs, message["task_id"], message["after"])
        else:
            hub.follow_workers(queue, message["follow"])


async def _watch_logs(queue: ClientQueue, logs: LogStore, task_id: str | None, after: int) -> None:
    """Follow one task's log: live lines from now on, and one page of the stored lines after `after`;
    a page that is not the last says `next`, the `after` to ask for the following one. The client
    merges pages and live lines by line number `n`, so lines arriving meanwhile are neither lost nor
    doubled, and a client that does not read gets no more pages than it asks for."""
    queue.watching = task_id
    if task_id is None:
        return
    lines = await logs.read(task_id, after=after, limit=LOG_PAGE_LINES + 1)
    page, size = [], 0
    for line in lines[:LOG_PAGE_LINES]:
        size += len(line["line"])
        if page and size > LOG_PAGE_CHARS:
            break
        page.append(line)
    queue.put_frame(logs_frame(task_id, page, next=page[-1]["n"] if len(page) < len(lines) else None))


async def _authenticated(websocket: WebSocket, settings: Settings) -> bool:
    """With tokens configured, the first message must be `{"type": "auth", "token": …}`: the secret
    travels inside the connection, never in a URL that ends up in logs."""
    if settings.api_token is None:
        return True
    try:
        received = await asyncio.wait_for(websocket.receive(), AUTH_WAIT)
    except TimeoutError:
        return False
    if received["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(received.get("code", 1000))
    try:
        message = json.loads(received.get("text") or "null")  # a binary message is no token either
        check_json(message, root="message")  # a lone surrogate in the token: no UTF-8 to compare
    except (ValueError, InvalidParameters):
        message = None
    token = message.get("token") if isinstance(message, dict) and message.get("type") == "auth" else None
    return isinstance(token, str) and token_access(settings, token) is not None


async def endpoint(websocket: WebSocket) -> None:
    state = websocket.state
    await websocket.accept()
    try:
        authenticated = await _authenticated(websocket, state.settings)
    except WebSocketDisconnect:
        return  # gone before authenticating: nothing to close
    if not authenticated:
        await websocket.close(1008, "authentication required: send {\"type\": \"auth\", \"token\": ...} first")
        return
    try:
        since = _since(websocket)
    except ValueError as exc:
        await websocket.close(1008, str(exc))
        return
    hub: EventHub = state.hub
    with hub.subscribe() as (queue, head):
        await websocket.send_text(hello_frame(head))
        covered = {}
        floor = hub.replay_floor(since) if since is not None else head
        if floor < head:
            covered = await _replay(websocket, state.stores.tasks, floor, head, state.settings.ws_replay_limit)
        writer = frames.writer(websocket)
        if writer is None:
            await _send_and_receive(websocket, queue, covered, hub, state.stores.logs)
            return
        # The hub's flusher writes this client's queue from the loop's callback: no sender task (memory
        # per idle client), and the receiver runs in the handler's own task; it ends with the disconnect,
        # whether the client left or the flusher closed it (too slow, server restarting).
        with hub.flusher.writing(queue, writer, covered):
            try:
                await _receive(websocket, queue, hub, state.stores.logs)
            except GONE:
                pass


async def _send_and_receive(websocket: WebSocket, queue: ClientQueue, covered: dict[str, int], hub: EventHub,
                            logs: LogStore) -> None:
    """Served by another WebSocket protocol: a sender task beside the receiver, until either ends."""
    sender = asyncio.create_task(_send_live(websocket, queue, covered))
    receiver = asyncio.create_task(_receive(websocket, queue, hub, logs))
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sender.cancel()
        receiver.cancel()
        # Neither outlives the handler (even a cancelled one), and both outcomes are read: a lost
        # connection often ends the two at once (it wakes the sender waiting for the socket and the
        # receiver together), and an exception nobody reads is logged as "never retrieved".
        outcomes = await asyncio.gather(sender, receiver, return_exceptions=True)
    errors = [outcome for outcome in outcomes if isinstance(outcome, Exception)]  # not the cancelled one
    if bug := next((error for error in errors if not isinstance(error, (Closed, *GONE))), None):
        raise bug
    closed = next((error for error in errors if isinstance(error, Closed)), None)
    if closed is not None and not any(isinstance(error, GONE) for error in errors):
        await websocket.close(closed.code, closed.reason)
