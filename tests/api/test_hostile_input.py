"""No input is a 500: hostile JSON bodies (a fuzz corpus in tests/api/corpus/ and hypothesis' own) replayed
against every route that reads one, lone surrogates, long upload file names, oversized request heads; and
X-Forwarded-For believed only from FORWARDED_ALLOW_IPS (else a client could reset its own submit rate)."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from app.core.validation import MAX_JSON_DEPTH
from app.settings import Settings
from app.store.uploads import MAX_NAME
from app.web.httpheads import MAX_HEAD_BYTES
from tests.support.servers import make_settings, serve, served

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.json"))
JSON = {"content-type": "application/json"}


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    # every route gets every body: the submit rate would answer most with 429, unread
    return make_settings(redis_url, db_url, tmp_path / "data", SUBMIT_RATE="100000", SUBMIT_BURST="100000")


@pytest.fixture
async def json_routes(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """(method, path) of every route that reads a JSON body, with real ids where a route needs one."""
    task = (await client.post("/api/tasks/submit", json={"task_type": "text_processing", "delay": 3600})).json()
    schedule = (await client.post("/api/schedules", json={"task_type": "text_processing", "interval": 3600})).json()
    return [("POST", "/api/tasks/submit"), ("POST", "/api/tasks/batch"), ("POST", "/api/tasks/bulk"),
            ("POST", f"/api/tasks/{task['id']}/rerun"), ("POST", "/api/schedules"),
            ("PATCH", f"/api/schedules/{schedule['id']}")]


def assert_refused_clearly(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.json()["detail"], what


async def test_every_body_of_the_corpus_gets_an_answer_below_500_on_every_json_route(
        client: httpx.AsyncClient, json_routes: list[tuple[str, str]]) -> None:
    assert len(CORPUS) >= 10
    for body in CORPUS:
        for method, path in json_routes:
            response = await client.request(method, path, content=body.read_bytes(), headers=JSON)
            assert_refused_clearly(response, f"{body.name} → {method} {path}")


async def test_deep_json_and_lone_surrogates_are_422s_naming_the_problem(client: httpx.AsyncClient) -> None:
    for path in ("/api/tasks/submit", "/api/tasks/batch", "/api/tasks/bulk", "/api/schedules"):
        deep = await client.post(path, content="[" * 100_000, headers=JSON)  # was a RecursionError: 500
        assert deep.status_code == 422 and f"nested deeper than {MAX_JSON_DEPTH}" in deep.json()["detail"], deep.text
    closed = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    nested = await client.post("/api/tasks/submit", headers=JSON,
                               content=f'{{"task_type": "text_processing", "parameters": {{"text": {closed}}}}}')
    assert nested.status_code == 422 and "nested deeper" in nested.json()["detail"]
    for body, field in ((r'{"task_type": "\ud800"}', "task_type"), (r'{"\ud800": 1}', "body"),
                        (r'{"tasks": [{"task_type": "text_processing", "parameters": {"text": "a\udfffb"}}]}',
                         "tasks")):
        response = await client.post("/api/tasks/batch" if "tasks" in body else "/api/tasks/submit",
                                     content=body, headers=JSON)  # the first two were 500s
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field and "lone surrogate" in response.json()["detail"]


async def test_an_upload_with_a_5000_character_name_is_kept_under_a_shortened_name(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/uploads", params={"filename": "a" * 5000 + ".csv"}, content=b"x,y\n1,2\n",
                                 headers={"content-type": "text/csv"})  # was ENAMETOOLONG: 500
    assert response.status_code == 201, response.text
    name = response.json()["filename"]
    assert len(name) <= MAX_NAME and name.endswith(".csv") and name.startswith("aaa")
    # a name whose bytes are no UTF-8 (a surrogate's) is decoded to U+FFFD and then to `_`: never a surrogate
    odd = await client.post("/api/uploads?filename=%ED%A0%80.csv", content=b"x\n1\n",
                            headers={"content-type": "text/csv"})
    assert odd.status_code == 201 and odd.json()["filename"] == "csv"


async def _answer_to_a_head_of(address: str, header_bytes: int) -> bytes:
    """Send a request whose one header is `header_bytes` long, 16 KiB at a time, then end its head and
    read the answer. (The server answers an oversized head once it passes the bound and closes: past
    that, sending more would only reset the connection and lose the answer, so send just past it.)"""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /api/queue HTTP/1.1\r\nHost: {address}\r\nX-Big: ".encode())
    for start in range(0, header_bytes, 16384):
        writer.write(b"a" * min(16384, header_bytes - start))
        await writer.drain()
    writer.write(b"\r\nConnection: close\r\n\r\n")
    try:
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


async def _bytes_taken_before_the_connection_breaks(address: str, header_bytes: int) -> int:
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /api/queue HTTP/1.1\r\nX-Big: ")
    sent = 0
    try:
        while sent < header_bytes:
            writer.write(b"a" * 65536)
            await writer.drain()
            sent += 65536
            await asyncio.sleep(0.001)  # lets the server's answer and close arrive
    except ConnectionError:
        pass
    finally:
        writer.close()
    return sent


async def test_an_oversized_request_head_is_a_431_and_a_large_one_is_served(web: str) -> None:
    refused = await _answer_to_a_head_of(web, MAX_HEAD_BYTES + 1)
    assert refused.startswith(b"HTTP/1.1 431 "), refused[:200]
    assert f"exceed {MAX_HEAD_BYTES} bytes".encode() in refused
    # 10 MB of header were read and buffered whole (and answered 200); now the connection breaks early
    assert await _bytes_taken_before_the_connection_breaks(web, 10 * 1024 * 1024) < 10 * 1024 * 1024
    served_ = await _answer_to_a_head_of(web, 16 * 1024)  # a big cookie is fine
    assert served_.startswith(b"HTTP/1.1 200 "), served_[:200]


@pytest.mark.parametrize("header", [0, MAX_HEAD_BYTES])
async def test_a_request_pipelined_after_a_body_larger_than_the_head_bound_is_bounded_by_its_own_head(
        web: str, header: int) -> None:
    """The end of an upload's body and the start of the next request's head come in one read: only the
    head's bytes count towards the bound (the whole read did: a 431 for a 60-byte head), and a head
    over the bound is still refused."""
    host, port = web.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    body = b"x,y\n" + b"1,2\n" * (MAX_HEAD_BYTES * 3 // 8)  # 96 KiB: one read, as it goes in one send
    then = f"GET /api/queue HTTP/1.1\r\nHost: {web}\r\nX-Big: {'a' * header}\r\nConnection: close\r\n\r\n".encode()
    try:
        writer.write(b"POST /api/uploads?filename=big.csv HTTP/1.1\r\nHost: %s\r\ncontent-type: text/csv\r\n"
                     b"content-length: %d\r\n\r\n" % (web.encode(), len(body)))
        # the body and the next head begun in one send, so in one read; the head's end (if not refused by then)
        for part in (body + then[:-20], then[-20:])[:1 if header else 2]:
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(part)
        answers = await asyncio.wait_for(reader.read(), 10)  # up to the close: the second asked for it, or a 431
    finally:
        writer.close()
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", answers)
    assert (statuses[-1:] == [b"431"]) if header else (statuses == [b"201", b"200"]), answers[-300:]


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"])
async def test_x_forwarded_for_moves_the_submit_rate_only_for_a_trusted_proxy(
        redis_url: str, db_url: str, tmp_path: Path, trusted: str) -> None:
    settings = make_settings(redis_url, db_url, tmp_path / "data", SUBMIT_RATE="0.01", SUBMIT_BURST="2",
                             FORWARDED_ALLOW_IPS=trusted)
    async with served(settings) as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
        codes = [(await http.post("/api/tasks/submit", json={"task_type": "text_processing"},
                                  headers={"x-forwarded-for": f"203.0.113.{n}"})).status_code for n in range(4)]
    # untrusted: one client (127.0.0.1) whatever it claims, limited after its burst; trusted: four clients
    assert codes == ([201, 201, 429, 429] if not trusted else [201] * 4), codes


# Hypothesis' own hostile bodies: JSON of any shape, with lone surrogates in keys and strings, deep nesting.
SURROGATE_TEXT = st.text(st.characters(codec=None, categories=["Cs", "Ll", "Nd"]), max_size=5)
VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | SURROGATE_TEXT,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SURROGATE_TEXT, inner, max_size=3),
                      max_leaves=20)
FIELDS = st.sampled_from(["task_type", "parameters", "tasks", "action", "ids", "filter", "interval", "cron", "x"])


@pytest.mark.filterwarnings("ignore:Do not use the `random` module")
async def test_hypothesis_bodies_get_an_answer_below_500(
        web: str, json_routes: list[tuple[str, str]]) -> None:
    @hypothesis_settings(max_examples=150, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(body=st.dictionaries(FIELDS, VALUES, max_size=4), depth=st.sampled_from([0, 0, 0, 70, 2000]),
           route=st.sampled_from(json_routes))
    def check(body: dict[str, object], depth: int, route: tuple[str, str]) -> None:
        text = "[" * depth + json.dumps(body) + "]" * depth  # ensure_ascii: a surrogate goes as `\udXXX`
        response = http.request(route[0], route[1], content=text, headers=JSON)
        assert_refused_clearly(response, f"{text[:200]} → {route}")

    with httpx.Client(base_url=f"http://{web}", timeout=30) as http:
        await asyncio.to_thread(check)


@pytest.fixture
async def web(settings: Settings) -> AsyncIterator[str]:
    server, task, address = await serve(settings)
    yield address
    server.should_exit = True
    await task
