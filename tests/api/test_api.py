"""The REST contract through a real uvicorn server, a real arq worker, real Redis and SQLite."""

import asyncio
from pathlib import Path

import httpx
import pytest

from app.web.tasks import MAX_BATCH
from tests.support.servers import make_settings, serve
from tests.support.waits import submit, wait_for_status

pytestmark = pytest.mark.usefixtures("worker")


async def test_each_task_type_runs_to_success_with_a_checked_result(client: httpx.AsyncClient) -> None:
    text = "The cat sat. The cat ran far away! Did the dog follow the cat?"
    cases = {
        "data_processing": ({"rows": 500, "processing_time": 0}, lambda r: r["rows"] == 500),
        "email_simulation": ({"recipient_count": 4, "delay_per_email": 0},
                             lambda r: r["sent"] + r["failed"] == 4 and r["sent"] == 4),
        "image_processing": ({"image_count": 2, "operation": "resize", "target_size": [64, 48]},
                             lambda r: all((i["width"], i["height"]) == (64, 48) for i in r["images"])),
        "text_processing": ({"text": text}, lambda r: r["word_count"] == 14 and r["sentence_count"] == 3),
        "ai_summarization": ({"document": text, "max_sentences": 1},
                             lambda r: len(r["sentences"]) == 1 and r["sentences"][0] in text),
        "batch_processing": ({"data": ["a", "bb", 3], "delay_per_item": 0},
                             lambda r: r["total"] == 3 and r["succeeded"] == 3),
    }
    submitted = {kind: await submit(client, kind, **params) for kind, (params, _) in cases.items()}
    for kind, task in submitted.items():
        assert task["status"] == "PENDING" and task["attempts"] == 0
        done = await wait_for_status(client, task["id"], {"SUCCESS", "FAILED"})
        assert done["status"] == "SUCCESS", (kind, done["error_message"])
        assert cases[kind][1](done["result_data"]), (kind, done["result_data"])
        assert done["progress"] == 100 and done["attempts"] == 1
        assert done["started_at"] and done["completed_at"] and done["created_at"] <= done["started_at"]
        assert [e["status"] for e in done["timeline"]] == ["PENDING", "RUNNING", "SUCCESS"]


async def test_defaults_are_filled_in_and_listed_newest_first(client: httpx.AsyncClient) -> None:
    first = await submit(client, "text_processing")
    second = await submit(client, "batch_processing", delay_per_item=0)
    assert "text" in first["parameters"] and second["parameters"]["data"]
    listing = (await client.get("/api/tasks/")).json()
    assert [t["id"] for t in listing["tasks"][:2]] == [second["id"], first["id"]]
    assert listing["total"] == 2
    unslashed = await client.get("/api/tasks")  # the same list without the trailing slash
    assert unslashed.status_code == 200 and [t["id"] for t in unslashed.json()["tasks"]] == [second["id"], first["id"]]
    await wait_for_status(client, second["id"], {"SUCCESS"})
    only = (await client.get("/api/tasks/", params={"task_type": "batch_processing", "status": "SUCCESS"})).json()
    assert [t["id"] for t in only["tasks"]] == [second["id"]] and only["counts"]["SUCCESS"] >= 1
    found = (await client.get("/api/tasks/", params={"q": first["id"][:6].upper()})).json()
    assert [t["id"] for t in found["tasks"]] == [first["id"]]
    stats = (await client.get("/api/stats")).json()
    assert sum(stats["counts"].values()) == 2 and stats["seq"] >= second["seq"]


async def test_the_next_cursor_walks_the_same_pages_as_offset(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        await submit(client, "text_processing")
    by_offset = [t["id"] for offset in (0, 2, 4) for t in
                 (await client.get("/api/tasks/", params={"limit": 2, "offset": offset})).json()["tasks"]]
    by_cursor, after, pages = [], "", 0
    while after is not None:
        listing = (await client.get("/api/tasks/", params={"limit": 2, "after": after})).json()
        by_cursor += [t["id"] for t in listing["tasks"]]
        after, pages = listing["next"], pages + 1
        assert listing["total"] == 5
    assert by_cursor == by_offset and len(by_cursor) == 5 and pages == 3
    for bad in ("x", "12", "12.", "-1.ab", "1.a/b", "1" * 18 + ".ab"):
        response = await client.get("/api/tasks/", params={"after": bad})
        assert response.status_code == 422 and response.json()["field"] == "after"


@pytest.mark.parametrize(
    ("body", "headers", "status", "names"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "malformed JSON"),
        (b'{"task_type": "text_processing"}', {"content-type": "text/plain"}, 415, "application/json"),
        (b'[1, 2]', {"content-type": "application/json"}, 422, "body"),
        (b'{"task_type": "nope"}', {"content-type": "application/json"}, 422, "known: data_processing"),
        (b'{"parameters": {}}', {"content-type": "application/json"}, 422, "task_type"),
        (b'{"task_type": "data_processing", "extra": 1}', {"content-type": "application/json"}, 422, "extra"),
        (b'{"task_type": "data_processing", "parameters": {"rowz": 5}}', {"content-type": "application/json"},
         422, "rowz"),
        (b'{"task_type": "data_processing", "parameters": {"rows": "many"}}',
         {"content-type": "application/json"}, 422, "rows"),
        (b'{"task_type": "data_processing", "parameters": {"rows": true}}',
         {"content-type": "application/json"}, 422, "rows"),
        (b'{"task_type": "data_processing", "parameters": {"rows": -1}}',
         {"content-type": "application/json"}, 422, "rows"),
        (b'{"task_type": "image_processing", "parameters": {"operation": "explode"}}',
         {"content-type": "application/json"}, 422, "operation"),
        (b'{"task_type": "data_processing", "parameters": [1]}', {"content-type": "application/json"},
         422, "parameters"),
    ],
)
async def test_bad_submissions_get_a_4xx_naming_the_problem(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str], status: int, names: str
) -> None:
    response = await client.post("/api/tasks/submit", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert names in response.json()["detail"]
    if status == 422:
        assert response.json()["field"] in response.json()["detail"]
    assert (await client.get("/api/tasks/")).json()["total"] == 0


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/tasks/0123456789abcdef0123456789abcdef", 404),
        ("DELETE", "/api/tasks/unknown", 404),
        ("POST", "/api/tasks/unknown/retry", 404),
        ("GET", "/api/tasks/?status=DONE", 422),
        ("GET", "/api/tasks/?limit=0", 422),
        ("GET", "/api/tasks/?limit=abc", 422),
        ("GET", "/api/tasks/?offset=-1", 422),
        ("GET", "/api/tasks/?task_type=not%20a%20name", 422),
        ("GET", "/api/tasks/?q=not-hex!", 422),
        ("GET", "/api/nowhere", 404),
        ("PUT", "/api/tasks/submit", 405),
    ],
)
async def test_bad_requests_get_json_4xx(client: httpx.AsyncClient, method: str, path: str, status: int) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)


async def test_task_types_describe_their_parameters(client: httpx.AsyncClient) -> None:
    types = {t["name"]: t for t in (await client.get("/api/task-types")).json()["task_types"]}
    assert set(types) == {"data_processing", "email_simulation", "image_processing", "text_processing",
                          "ai_summarization", "batch_processing"}
    rows = types["data_processing"]["parameters"]["rows"]
    assert rows["type"] == "integer" and rows["minimum"] >= 1 and "default" in rows
    assert "resize" in types["image_processing"]["parameters"]["operation"]["choices"]


async def test_failed_task_keeps_its_error_and_retry_runs_it_again(client: httpx.AsyncClient) -> None:
    task = await submit(client, "batch_processing", data=["ok", True], fail_fast=True, delay_per_item=0)
    failed = await wait_for_status(client, task["id"], {"FAILED", "SUCCESS"})
    assert failed["status"] == "FAILED" and "1" in failed["error_message"]
    conflict = await client.post(f"/api/tasks/{task['id']}/retry")
    retried = conflict.json()
    assert conflict.status_code == 200 and retried["status"] == "PENDING" and retried["attempts"] == 1
    assert retried["error_message"] is None and retried["dispatch"] == 2
    again = await wait_for_status(client, task["id"], {"FAILED", "SUCCESS"})
    assert again["status"] == "FAILED" and again["attempts"] == 2
    statuses = [e["status"] for e in again["timeline"]]
    assert statuses == ["PENDING", "RUNNING", "FAILED", "PENDING", "RUNNING", "FAILED"]


async def test_retry_of_a_task_that_is_not_failed_or_cancelled_is_409(client: httpx.AsyncClient) -> None:
    task = await submit(client, "text_processing")
    await wait_for_status(client, task["id"], {"SUCCESS"})
    response = await client.post(f"/api/tasks/{task['id']}/retry")
    assert response.status_code == 409 and "SUCCESS" in response.json()["detail"]


async def test_a_batch_is_stored_in_request_order_and_each_task_runs(client: httpx.AsyncClient) -> None:
    items = [{"task_type": "text_processing", "parameters": {"text": f"item {i}."}} for i in range(5)]
    items.append({"task_type": "batch_processing", "parameters": {"data": [1, 2], "delay_per_item": 0},
                  "max_attempts": 2, "timeout": 30})
    response = await client.post("/api/tasks/batch", json={"tasks": items})
    assert response.status_code == 201, response.text
    tasks = response.json()["tasks"]
    assert [t["parameters"].get("text") for t in tasks[:5]] == [f"item {i}." for i in range(5)]
    assert tasks[5]["max_attempts"] == 2 and tasks[5]["timeout"] == 30
    seqs = [t["seq"] for t in tasks]
    assert seqs == list(range(seqs[0], seqs[0] + 6)) and all(t["status"] == "PENDING" for t in tasks)
    for task in tasks:
        done = await wait_for_status(client, task["id"], {"SUCCESS", "FAILED"})
        assert done["status"] == "SUCCESS" and done["attempts"] == 1, done["error_message"]
    assert (await client.get("/api/tasks/")).json()["total"] == 6


async def test_concurrent_single_submits_each_get_their_own_task(client: httpx.AsyncClient) -> None:
    submitted = await asyncio.gather(*(submit(client, "text_processing", text=f"n{i}") for i in range(40)))
    assert len({t["id"] for t in submitted}) == 40 and len({t["seq"] for t in submitted}) == 40
    assert sorted(t["parameters"]["text"] for t in submitted) == sorted(f"n{i}" for i in range(40))
    for task in submitted:
        assert (await wait_for_status(client, task["id"], {"SUCCESS"}))["status"] == "SUCCESS"


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        ({"tasks": [{"task_type": "text_processing"}, {"task_type": "data_processing", "parameters": {"rows": -1}}]},
         {}, "tasks[1].parameters.rows"),
        ({"tasks": [{"task_type": "text_processing", "parameters": {"nope": 1}}]}, {}, "tasks[0].parameters.nope"),
        ({"tasks": [{"task_type": "text_processing", "parameters": [1]}]}, {}, "tasks[0].parameters"),
        ({"tasks": [{"task_type": "text_processing"}, {"task_type": "nope"}]}, {}, "tasks[1].task_type"),
        ({"tasks": [{"parameters": {}}]}, {}, "tasks[0].task_type"),
        ({"tasks": [{"task_type": "text_processing", "max_attempts": 0}]}, {}, "tasks[0].max_attempts"),
        ({"tasks": [{"task_type": "text_processing", "extra": 1}]}, {}, "tasks[0].extra"),
        ({"tasks": ["text_processing"]}, {}, "tasks[0]"),
        ({"tasks": []}, {}, "tasks"),
        ({"tasks": [{"task_type": "text_processing"}] * (MAX_BATCH + 1)}, {}, "tasks"),
        ({"task": []}, {}, "task"),
        ({"tasks": [{"task_type": "text_processing"}]}, {"Idempotency-Key": "k1"}, "Idempotency-Key"),
    ],
)
async def test_an_invalid_batch_is_refused_whole_naming_the_item_and_field(
    client: httpx.AsyncClient, body: dict[str, object], headers: dict[str, str], field: str
) -> None:
    response = await client.post("/api/tasks/batch", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field and field in response.json()["detail"]
    assert (await client.get("/api/tasks/")).json()["total"] == 0


async def test_a_batch_respects_the_queue_cap_and_counts_each_task_against_the_rate(
    redis_url: str, db_url: str, tmp_path: Path
) -> None:
    # Its own queue, which the module's worker does not drain: the jobs stay waiting.
    settings = make_settings(redis_url, db_url, tmp_path / "capped", QUEUE_NAME="tq:capped", MAX_QUEUED="4",
                             SUBMIT_RATE="0.01", SUBMIT_BURST="8")
    server, serving, address = await serve(settings)
    one = {"task_type": "text_processing"}
    try:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http:
            assert (await http.post("/api/tasks/batch", json={"tasks": [one] * 3})).status_code == 201
            full = await http.post("/api/tasks/batch", json={"tasks": [one] * 2})
            assert full.status_code == 503 and "full" in full.json()["detail"] and full.headers["Retry-After"]
            assert (await http.get("/api/tasks/")).json()["total"] == 3
            assert (await http.post("/api/tasks/submit", json=one)).status_code == 201  # the 4th fits
            assert (await http.post("/api/tasks/submit", json=one)).status_code == 503
            # 3 + 2 + 1 + 1 of a burst of 8 were taken (refused ones count too): one task left, not two
            limited = await http.post("/api/tasks/batch", json={"tasks": [one] * 2})
            assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
            assert (await http.get("/api/tasks/")).json()["total"] == 4
    finally:
        server.should_exit = True
        await serving
