"""The web process's memory under WebSocket clients that ask for a long log again and again and never read:
a real `python web.py`, raw sockets, its RSS read from /proc."""

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from app.store.stores import open_stores
from launcher.redis_server import free_port
from tests.support.processes import ROOT, process_env, stopped
from tests.support.waits import submit

CLIENTS = 4
REQUESTS = 60  # `logs` requests per client, each for the whole 2 MB log
MiB = 1024 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture
async def web_process(redis_url: str, db_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    """`python web.py` as the Procfile runs it; yields its address and pid."""
    port = free_port()
    env = process_env(redis_url, db_url, tmp_path / "data", HOST="127.0.0.1", PORT=str(port))
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "web.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(600):
                try:
                    await http.get("/api/health")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, log.read_text()
                    await asyncio.sleep(0.05)
        yield f"127.0.0.1:{port}", proc.pid
    finally:
        assert stopped(proc, log) in (0, -15), log.read_text()[-3000:]  # uvicorn re-raises the SIGTERM it handled


def frame(text: str) -> bytes:
    """A masked client text frame (the mask is zero: the payload is sent as it is)."""
    payload = text.encode()
    assert len(payload) < 126
    return bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload


async def stalled_client(address: str, message: str, times: int) -> asyncio.StreamWriter:
    """A WebSocket client that sends `message` `times` times and never reads what comes back."""
    host, port = address.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET /ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
    writer.write(frame(message) * times)  # the socket's buffers hold them; the server reads them as it will
    return writer


async def test_clients_that_never_read_a_long_log_they_keep_asking_for_keep_the_process_bounded(
    web_process: tuple[str, int], db_url: str
) -> None:
    address, pid = web_process
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http:
        task = await submit(http, "text_processing")
        async with open_stores(db_url) as stores:  # 1000 lines of 2000 characters: the most a task keeps by default
            for start in range(0, 1000, 250):
                await stores.logs.append(task["id"], 1, [(datetime.now(UTC), "x" * 2000) for _ in range(250)])
        before = rss(pid)
        clients = [await stalled_client(address, json.dumps({"type": "logs", "task_id": task["id"]}), REQUESTS)
                   for _ in range(CLIENTS)]
        peak = before
        for _ in range(100):  # 10 s: the old server had built every answer by then
            await asyncio.sleep(0.1)
            peak = max(peak, rss(pid))
        assert (await http.get("/api/health")).status_code in (200, 503)  # still serving
        for writer in clients:
            writer.transport.abort()
    assert peak - before < 100 * MiB, (f"web process RSS {before / MiB:.0f} MiB before, {peak / MiB:.0f} MiB with "
                                       f"{CLIENTS} stalled clients asking {REQUESTS} times each for a 2 MB log")
