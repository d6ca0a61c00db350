"""A lean WebSocket client process for the fan-out and memory benchmarks: many connections, a raw
asyncio protocol (no per-frame objects, no compression offered), so the clients are not what limits
the figures.

Run: `python -m bench.wsclient HOST PORT N [PATH]`. It prints `ready` once all N are open, then
answers commands on stdin, one JSON line each:
  `{"cmd": "step"}`           forget the counts and latencies so far
  `{"cmd": "wait", "seq": S, "timeout": T}`  wait until every connection saw a task frame with seq ≥ S;
                              prints `{"frames", "reached", "done_ns", "hist"}` (hist: latency in
                              0.1 ms buckets → count, from the `t<ns>` the publisher put in `stage`)
  `{"cmd": "quit"}`
Server pings are answered (uvicorn closes a connection whose pings go unanswered).
"""

import asyncio
import base64
import json
import os
import resource
import sys
import time
from collections import Counter

TASK_PREFIX = b'{"type":"task","seq":'
STAGE = b'"stage":"t'
PONG_MASK = b"\x00\x00\x00\x00"  # client frames must be masked; a zero mask leaves the payload as it is


class Stats:
    def __init__(self) -> None:
        self.frames = 0
        self.hist: Counter[int] = Counter()
        self.conns: list["Conn"] = []


class Conn(asyncio.Protocol):
    def __init__(self, stats: Stats, opened: asyncio.Future[None]) -> None:
        self.stats = stats
        self.opened = opened
        self.buffer = b""
        self.upgraded = False
        self.last_seq = 0
        self.transport: asyncio.Transport | None = None
        self.closed: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(buffer[:200].decode(errors="replace")))
                return
            self.upgraded = True
            self.opened.set_result(None)
            buffer = buffer[end + 4:]
        now = time.time_ns()
        pos, size = 0, len(buffer)
        stats = self.stats
        while size - pos >= 2:
            opcode, length = buffer[pos] & 0x0F, buffer[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - start < 2:
                    break
                length, start = int.from_bytes(buffer[start:start + 2], "big"), start + 2
            elif length == 127:
                if size - start < 8:
                    break
                length, start = int.from_bytes(buffer[start:start + 8], "big"), start + 8
            if size - start < length:
                break
            pos = start + length
            if opcode == 1 and buffer.startswith(TASK_PREFIX, start):
                stats.frames += 1
                comma = buffer.index(b",", start + 21)
                self.last_seq = int(buffer[start + 21:comma])
                mark = buffer.find(STAGE, comma, pos)
                if mark >= 0:
                    sent = int(buffer[mark + 10:buffer.index(b'"', mark + 10)])
                    stats.hist[(now - sent) // 100_000] += 1
            elif opcode == 9:  # ping: answer with a pong carrying the same payload
                payload = buffer[start:pos]
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + PONG_MASK + payload)
            elif opcode == 8:
                self.closed = int.from_bytes(buffer[start:start + 2], "big") if length >= 2 else 1005
        self.buffer = buffer[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed before the upgrade"))
        self.closed = self.closed or 1006


async def open_one(loop: asyncio.AbstractEventLoop, stats: Stats, host: str, port: int, path: str) -> Conn:
    opened: asyncio.Future[None] = loop.create_future()
    _, conn = await loop.create_connection(lambda: Conn(stats, opened), host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    conn.transport.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                         .encode())
    await asyncio.wait_for(opened, 30)
    return conn


async def open_all(stats: Stats, host: str, port: int, n: int, path: str) -> None:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(200)  # stay well inside the server's listen backlog

    async def one() -> Conn:
        async with gate:
            return await open_one(loop, stats, host, port, path)

    stats.conns = list(await asyncio.gather(*(one() for _ in range(n))))


async def wait_for(stats: Stats, seq: int, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    done_ns = 0
    while time.monotonic() < deadline:
        behind = [c for c in stats.conns if c.last_seq < seq and c.closed is None]
        if not behind:
            done_ns = time.time_ns()
            break
        await asyncio.sleep(0.002)
    reached = sum(c.last_seq >= seq for c in stats.conns)
    closed = Counter(c.closed for c in stats.conns if c.closed is not None)
    return {"frames": stats.frames, "reached": reached, "done_ns": done_ns, "hist": dict(stats.hist),
            "closed": {str(k): v for k, v in closed.items()}}


async def main(host: str, port: int, n: int, path: str) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stats = Stats()
    await open_all(stats, host, port, n, path)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "step":
            stats.frames = 0
            stats.hist.clear()
            print("{}", flush=True)
        elif command["cmd"] == "wait":
            print(json.dumps(await wait_for(stats, command["seq"], command["timeout"])), flush=True)
        elif command["cmd"] == "quit":
            break
    for conn in stats.conns:
        conn.transport.close()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "/ws"))
