"""Secure by default: headers, no cross-site control, tokens, limits, no exposure without a token."""

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.core import keys
from app.main import create_app
from launcher.redis_server import free_port
from tests.support.servers import make_settings, serve
from tests.support.waits import receive, submit

ROOT = Path(__file__).resolve().parents[2]
EVIL = "https://evil.example"


async def test_every_response_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    for path in ("/", "/index.html", "/api/tasks/", "/api/nowhere"):
        response = await client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"task_type=text_processing", "application/x-www-form-urlencoded"),
        (b'--x\r\nContent-Disposition: form-data; name="task_type"\r\n\r\ntext_processing\r\n--x--\r\n',
         "multipart/form-data; boundary=x"),
        (b'{"task_type": "text_processing"}', "text/plain"),  # the body a cross-site form can send
    ],
)
async def test_form_posts_change_nothing(client: httpx.AsyncClient, content: bytes, content_type: str) -> None:
    task = await submit(client, "text_processing")
    headers = {"content-type": content_type}
    assert (await client.post("/api/tasks/submit", content=content, headers=headers)).status_code == 415
    assert (await client.post(f"/api/tasks/{task['id']}/retry", content=content, headers=headers)).status_code == 415
    with_origin = {**headers, "origin": EVIL}
    assert (await client.post("/api/tasks/submit", content=content, headers=with_origin)).status_code == 403
    listing = (await client.get("/api/tasks/")).json()
    assert listing["total"] == 1 and listing["tasks"][0]["status"] == "PENDING"


async def test_only_our_own_origin_may_change_things(client: httpx.AsyncClient, web: str) -> None:
    body = {"task_type": "text_processing"}
    task = await submit(client, "text_processing")
    refused = await client.post("/api/tasks/submit", json=body, headers={"origin": EVIL})
    assert refused.status_code == 403 and "Origin" in refused.json()["detail"]
    assert (await client.delete(f"/api/tasks/{task['id']}", headers={"origin": EVIL})).status_code == 403
    assert (await client.delete(f"/api/tasks/{task['id']}", headers={"sec-fetch-site": "cross-site"})).status_code == 403
    assert (await client.get(f"/api/tasks/{task['id']}")).json()["status"] == "PENDING"
    own = await client.post("/api/tasks/submit", json=body, headers={"origin": f"http://{web}"})
    assert own.status_code == 201  # the dashboard itself
    assert (await client.post("/api/tasks/submit", json=body)).status_code == 201  # curl, scripts


async def test_a_foreign_origin_cannot_open_the_websocket(web: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://{web}/ws", origin=EVIL):
            pass
    assert refused.value.response.status_code == 403
    async with connect(f"ws://{web}/ws", origin=f"http://{web}") as ws:
        assert (await receive(ws))["type"] == "hello"


async def test_an_oversized_websocket_message_closes_the_socket(web: str) -> None:
    async with connect(f"ws://{web}/ws", max_size=None) as ws:
        await receive(ws)
        await ws.send("x" * 100_000)
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_tokens_are_enforced_and_the_read_token_cannot_change_anything(
    redis_url: str, db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(redis_url, db_url, tmp_path, API_TOKEN="write-secret", READ_TOKEN="read-secret")
    server, serving, address = await serve(settings)
    try:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            anonymous = await http.get("/api/tasks/")
            assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
            assert (await http.get("/api/tasks/", headers={"authorization": "Bearer nope"})).status_code == 401
            assert (await http.get("/api/health")).status_code in (200, 503)  # public, for load balancers
            read = {"authorization": "Bearer read-secret"}
            write = {"authorization": "Bearer write-secret"}
            assert (await http.get("/api/tasks/", headers=read)).status_code == 200
            body = {"task_type": "text_processing"}
            assert (await http.post("/api/tasks/submit", json=body, headers=read)).status_code == 403
            task = (await http.post("/api/tasks/submit", json=body, headers=write)).json()
            assert (await http.delete(f"/api/tasks/{task['id']}", headers=read)).status_code == 403
            assert (await http.delete(f"/api/tasks/{task['id']}", headers=write)).json()["status"] == "CANCELLED"
            assert (await http.get("/")).status_code == 200  # the page itself holds no data
        async with connect(f"ws://{address}/ws") as ws:  # no token: refused
            with pytest.raises(ConnectionClosed) as closed:
                await ws.send(json.dumps({"type": "ping"}))
                await receive(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        async with connect(f"ws://{address}/ws") as ws:  # the token travels inside the socket
            await ws.send(json.dumps({"type": "auth", "token": "read-secret"}))
            assert (await receive(ws))["type"] == "hello"
    finally:
        server.should_exit = True
        await serving


async def test_bodies_are_capped_and_submits_rate_limited(redis_url: str, db_url: str, tmp_path: Path) -> None:
    settings = make_settings(redis_url, db_url, tmp_path, SUBMIT_RATE="2", SUBMIT_BURST="5", MAX_QUEUED="1000")
    server, serving, address = await serve(settings)
    try:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            assert await _status_for_announced_body(address, 10 * 1024 * 1024) == 413  # before reading it

            async def chunks():  # no Content-Length: cut off while streaming, at the cap
                yield b'{"task_type": "text_processing", "parameters": {"text": "'
                for _ in range(160):
                    yield b"x" * 65536

            streamed = await http.post("/api/tasks/submit", content=chunks(), headers={"content-type": "application/json"})
            assert streamed.status_code == 413
            answers = [await http.post("/api/tasks/submit", json={"task_type": "text_processing"}) for _ in range(12)]
            codes = [a.status_code for a in answers]
            assert codes[:4] == [201] * 4 and 429 in codes  # a burst of 5, one spent on the streamed 413
            limited = next(a for a in answers if a.status_code == 429)
            assert int(limited.headers["retry-after"]) >= 1 and "too many" in limited.json()["detail"]
    finally:
        server.should_exit = True
        await serving


async def _status_for_announced_body(address: str, length: int) -> int:
    """Announce a body of `length` bytes, send none of it, and read the status line."""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST /api/tasks/submit HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {length}\r\n\r\n".encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


async def test_a_full_queue_refuses_submits_with_503(redis_url: str, db_url: str, tmp_path: Path) -> None:
    settings = make_settings(redis_url, db_url, tmp_path, MAX_QUEUED="3")
    server, serving, address = await serve(settings)
    try:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            codes = [(await http.post("/api/tasks/submit", json={"task_type": "text_processing"})).status_code
                     for _ in range(4)]
            assert codes == [201, 201, 201, 503]
            full = await http.post("/api/tasks/submit", json={"task_type": "text_processing"})
            assert "queue is full" in full.json()["detail"] and full.headers["retry-after"]
    finally:
        server.should_exit = True
        await serving


def test_serving_beyond_loopback_without_a_token_is_refused(redis_url: str, db_url: str, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="API_TOKEN"):
        create_app(make_settings(redis_url, db_url, tmp_path, HOST="0.0.0.0"))
    create_app(make_settings(redis_url, db_url, tmp_path, HOST="0.0.0.0", API_TOKEN="t" * 32))
    create_app(make_settings(redis_url, db_url, tmp_path, HOST="::1"))
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("API_TOKEN", "REDIS_URL")}
    result = subprocess.run([sys.executable, "-m", "launcher"], cwd=ROOT, capture_output=True, text=True,
                            env={**env, "HOST": "0.0.0.0", "DATA_DIR": str(tmp_path / "var"),
                                 "PORT": str(free_port())}, timeout=60)
    assert result.returncode == 1 and "API_TOKEN" in result.stderr
    assert not (tmp_path / "var" / "redis").exists()  # refused before starting anything


async def test_jobs_travel_as_json_never_pickle(client: httpx.AsyncClient, redis_url: str) -> None:
    task = await submit(client, "text_processing")
    redis = aioredis.Redis.from_url(redis_url)
    raw = await redis.get(keys.ARQ_JOB_PREFIX + keys.job_id(task["id"], 1))
    await redis.aclose()
    assert json.loads(raw)["a"] == [task["id"], 1, "text_processing"]  # the type: for a worker that may not serve it
    sources = "".join(path.read_text() for path in (ROOT / "app").rglob("*.py"))
    assert not re.search(r"^\s*(import|from) pickle\b|\bpickle\.", sources, re.MULTILINE)
