"""Uploads in, artifacts and logs out, queue positions: through the real API, worker and storage."""

import io
import json
from pathlib import Path

import httpx
import pytest
from PIL import Image
from websockets.asyncio.client import connect

from app.settings import Settings
from app.worker.resilient import ResilientWorker
from tests.support.images import zero_png
from tests.support.servers import make_settings
from tests.support.waits import receive, submit, wait_for_status


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    return make_settings(redis_url, db_url, tmp_path / "data", UPLOAD_MAX_BYTES="200000", LOG_LINES_MAX="50",
                         RESULT_MAX_BYTES="100000")


async def upload(client: httpx.AsyncClient, content: bytes, content_type: str, filename: str) -> httpx.Response:
    return await client.post("/api/uploads", params={"filename": filename}, content=content,
                             headers={"content-type": content_type})


def png(size: tuple[int, int] = (120, 80), color: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


CSV = b"name,amount,city\nann,1.5,Oslo\nbob,,Rome\n\"c, d\",4.5,Oslo\neve,3,\n"


async def test_upload_is_stored_described_and_fetched_by_id(client: httpx.AsyncClient) -> None:
    response = await upload(client, CSV, "text/csv", "../../sales data.csv")
    assert response.status_code == 201
    meta = response.json()
    assert meta["kind"] == "csv" and meta["size"] == len(CSV) and meta["filename"] == "sales_data.csv"
    assert (await client.get(f"/api/uploads/{meta['id']}")).json() == meta
    assert (await client.get("/api/uploads/" + "0" * 32)).status_code == 404
    assert (await client.get("/api/uploads/..%2F..%2Fetc")).status_code == 404


@pytest.mark.parametrize(
    ("content", "content_type", "status", "says"),
    [
        (b"x" * 200_001, "text/csv", 413, "exceeds"),
        (b"a,b\n1,2\n", "application/zip", 415, "cannot upload"),
        (b"\x00\x01\x02binary", "text/csv", 415, "UTF-8"),
        (b"just some text", "image/png", 415, "not an image"),
        (b"\x00\x01\x02binary", "application/octet-stream", 415, "neither an image"),
        (b"", "text/csv", 422, "empty"),
    ],
)
async def test_bad_uploads_are_refused_with_a_clear_4xx(
    client: httpx.AsyncClient, content: bytes, content_type: str, status: int, says: str
) -> None:
    response = await upload(client, content, content_type, "f")
    assert response.status_code == status and says in response.json()["detail"]


async def test_untyped_bytes_are_typed_by_their_content(client: httpx.AsyncClient) -> None:
    image = (await upload(client, png(), "application/octet-stream", "photo")).json()
    text = (await upload(client, CSV, "application/octet-stream", "sales")).json()
    assert (image["kind"], image["content_type"]) == ("image", "image/png")
    assert (text["kind"], text["content_type"]) == ("csv", "text/csv")
    bmp = Image.new("RGB", (3, 2))
    buffer = io.BytesIO()
    bmp.save(buffer, "BMP")
    for content, kind in ((buffer.getvalue(), "image"), (b"BMW,units\nX5,3\n", "csv")):  # both start "BM"
        assert (await upload(client, content, "application/octet-stream", "bm")).json()["kind"] == kind


async def test_an_oversized_upload_without_a_length_is_cut_off_at_the_cap(client: httpx.AsyncClient) -> None:
    async def chunks():
        for _ in range(100):
            yield b"y" * 10_000

    response = await client.post("/api/uploads", content=chunks(), headers={"content-type": "text/csv"})
    assert response.status_code == 413


async def test_submit_checks_that_uploads_exist_and_are_of_the_right_kind(client: httpx.AsyncClient) -> None:
    csv_id = (await upload(client, CSV, "text/csv", "a.csv")).json()["id"]
    wrong = await client.post("/api/tasks/submit", json={"task_type": "image_processing",
                                                         "parameters": {"uploads": [csv_id]}})
    assert wrong.status_code == 422 and wrong.json()["field"] == "uploads" and "csv" in wrong.json()["detail"]
    unknown = await client.post("/api/tasks/submit", json={"task_type": "data_processing",
                                                           "parameters": {"upload": ["f" * 32]}})
    assert unknown.status_code == 422 and "unknown upload" in unknown.json()["detail"]


async def test_submit_refuses_an_image_declaring_more_pixels_than_allowed(client: httpx.AsyncClient) -> None:
    """A 13,000 × 13,000 PNG of a few hundred bytes (under Pillow's own bomb threshold) decoded to gigabytes
    in the worker; its header is enough to refuse it, naming it and its size."""
    bomb = zero_png(13_000, 13_000, rows=10)
    bomb_id = (await upload(client, bomb, "image/png", "huge.png")).json()["id"]
    refused = await client.post("/api/tasks/submit", json={"task_type": "image_processing",
                                                           "parameters": {"uploads": [bomb_id]}})
    assert refused.status_code == 422 and refused.json() == {
        "field": "uploads", "detail": "uploads: upload 'huge.png' is an image of 13000 × 13000 = 169,000,000 pixels, "
                                      "more than IMAGE_MAX_PIXELS (50,000,000) allows"}
    within = (await upload(client, zero_png(7000, 7000, rows=10), "image/png", "big.png")).json()["id"]
    accepted = await client.post("/api/tasks/submit", json={"task_type": "image_processing",
                                                            "parameters": {"uploads": [within]}})
    assert accepted.status_code == 201, accepted.text


async def test_uploaded_csv_is_analysed(client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    csv_id = (await upload(client, CSV, "text/csv", "a.csv")).json()["id"]
    task = await submit(client, "data_processing", upload=[csv_id], processing_time=0)
    done = await wait_for_status(client, task["id"], {"SUCCESS", "FAILED"})
    assert done["status"] == "SUCCESS", done["error_message"]
    result = done["result_data"]
    assert result["rows"] == 4 and result["source"] == "upload"
    amount = result["columns"]["amount"]
    assert amount["count"] == 3 and amount["missing"] == 1 and amount["mean"] == pytest.approx(3.0)


async def test_a_wide_csv_gets_statistics_of_its_first_columns_and_a_large_result_becomes_a_file(
        client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    """15,000 columns (a 130 kB upload) made a 2.9 MB result, refused; now the first CSV_MAX_COLUMNS (1000)
    are analysed, the rest counted, and the result, over RESULT_MAX_BYTES, is kept as result.json with
    a summary in the task."""
    wide = (",".join(f"c{i}" for i in range(15_000)) + "\n" + ",".join("7" for _ in range(15_000)) + "\n").encode()
    csv_id = (await upload(client, wide, "text/csv", "wide.csv")).json()["id"]
    task = await submit(client, "data_processing", upload=[csv_id], processing_time=0)
    done = await wait_for_status(client, task["id"], {"SUCCESS", "FAILED"}, timeout=60)
    assert done["status"] == "SUCCESS", done["error_message"]
    summary = done["result_data"]
    assert (summary["rows"], summary["column_count"], summary["columns_not_analysed"]) == (1, 15_000, 14_000)
    assert summary["result_file"] == "result.json" and summary["result_bytes"] > 100_000
    assert {"columns", "column_names"} <= set(summary["result_omitted"])
    assert [item["name"] for item in summary["artifacts"]] == ["result.json"]
    whole = (await client.get(f"/api/tasks/{task['id']}/artifacts/result.json")).json()
    assert len(whole["columns"]) == 1000 and whole["columns"]["c999"]["mean"] == 7
    assert len(whole["column_names"]) == 1000 and whole["columns_not_analysed"] == 14_000


async def test_malformed_csv_upload_fails_naming_the_line(client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    bad = b"a,b,c\n1,2,3\n4,5\n"
    csv_id = (await upload(client, bad, "text/csv", "bad.csv")).json()["id"]
    task = await submit(client, "data_processing", upload=[csv_id], processing_time=0)
    done = await wait_for_status(client, task["id"], {"SUCCESS", "FAILED"})
    assert done["status"] == "FAILED" and "line 3" in done["error_message"]


async def test_uploaded_images_become_downloadable_artifacts(client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    ids = [(await upload(client, png(), "image/png", f"p{i}.png")).json()["id"] for i in range(2)]
    task = await submit(client, "image_processing", uploads=ids, operation="resize", target_size=[40, 30])
    done = await wait_for_status(client, task["id"], {"SUCCESS", "FAILED"})
    assert done["status"] == "SUCCESS", done["error_message"]
    listed = done["result_data"]["artifacts"]
    assert len(listed) == 2
    for item in listed:
        response = await client.get(f"/api/tasks/{task['id']}/artifacts/{item['name']}")
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        assert int(response.headers["content-length"]) == item["size"]
        assert Image.open(io.BytesIO(response.content)).size == (40, 30)
    # (a bare ".." would be resolved by the client itself; encoded, it reaches the server as is)
    for evil in ("..%2F..%2Ftasks.db", "%2e%2e", "%2e%2e%2f%2e%2e%2ftasks.db", ".hidden", "..%5C..%5Ctasks.db",
                 "nope.png"):
        assert (await client.get(f"/api/tasks/{task['id']}/artifacts/{evil}")).status_code == 404, evil
    assert (await client.get(f"/api/tasks/{'0' * 32}/artifacts/{listed[0]['name']}")).status_code == 404


async def test_a_non_image_upload_fails_the_task_with_a_clear_message(
    client: httpx.AsyncClient, worker: ResilientWorker
) -> None:
    fake = b"\x89PNG\r\n\x1a\n" + b"not really an image" * 20
    image_id = (await upload(client, fake, "image/png", "fake.png")).json()["id"]
    task = await submit(client, "image_processing", uploads=[image_id])
    done = await wait_for_status(client, task["id"], {"SUCCESS", "FAILED"})
    assert done["status"] == "FAILED" and "fake.png" in done["error_message"]


async def test_logs_are_kept_capped_and_streamed_live(web: str, client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    task = await submit(client, "email_simulation", recipient_count=80, delay_per_email=0.02)
    async with connect(f"ws://{web}/ws") as ws:
        await receive(ws)
        await ws.send(json.dumps({"type": "logs", "task_id": task["id"]}))
        lines: dict[int, str] = {}
        while not any("truncated" in line for line in lines.values()):
            frame = await receive(ws)
            if frame["type"] == "logs":
                assert frame["task_id"] == task["id"]
                lines.update({entry["n"]: entry["line"] for entry in frame["lines"]})
    await wait_for_status(client, task["id"], {"SUCCESS"})
    stored = (await client.get(f"/api/tasks/{task['id']}/logs")).json()["lines"]
    assert len(stored) == 51 and "truncated" in stored[-1]["line"]  # the cap (50) plus its notice
    assert {entry["n"]: entry["line"] for entry in stored} == lines
    after = (await client.get(f"/api/tasks/{task['id']}/logs", params={"after": stored[9]["n"]})).json()["lines"]
    assert after == stored[10:]


async def test_queued_tasks_show_their_position(client: httpx.AsyncClient) -> None:
    tasks = [await submit(client, "text_processing") for _ in range(3)]
    positions = [(await client.get(f"/api/tasks/{t['id']}")).json()["queue_position"] for t in tasks]
    assert positions == [1, 2, 3]
    await client.delete(f"/api/tasks/{tasks[0]['id']}")
    listing = (await client.get("/api/tasks/", params={"status": "PENDING"})).json()["tasks"]
    assert {t["id"]: t["queue_position"] for t in listing} == {tasks[1]["id"]: 1, tasks[2]["id"]: 2}
    assert "queue_position" not in (await client.get(f"/api/tasks/{tasks[0]['id']}")).json()


async def test_queue_positions_do_not_count_running_tasks(client: httpx.AsyncClient, start_worker) -> None:
    await start_worker(max_jobs=2)
    running = [await submit(client, "batch_processing", data=list(range(50)), delay_per_item=0.05) for _ in range(2)]
    for task in running:
        await wait_for_status(client, task["id"], {"RUNNING"})
    queued = [await submit(client, "text_processing") for _ in range(2)]
    positions = [(await client.get(f"/api/tasks/{t['id']}")).json()["queue_position"] for t in queued]
    assert positions == [1, 2]
    for task in running:
        await client.delete(f"/api/tasks/{task['id']}")
