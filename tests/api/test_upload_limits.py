"""Uploads cannot fill the disk: a total quota, a per-client rate, deletion, expiry of unused uploads and
removal with their tasks, through the real API, worker and storage (issue 19)."""

import asyncio
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.lifecycle.uploads import USE_GRACE
from app.settings import Settings
from app.store.upload_space import META_ALLOWANCE
from app.store.uploads import USED
from app.worker.resilient import ResilientWorker
from tests.support.servers import make_settings
from tests.support.waits import submit, wait_for_status

SIZE = 100_000
QUOTA = 1_000_000


@pytest.fixture
def db_url(any_db_url: str) -> str:  # which tasks name an upload is a query of the parameters' JSON: both backends
    return any_db_url


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    extra = getattr(request, "param", {})
    return make_settings(redis_url, db_url, tmp_path / "data", UPLOAD_MAX_BYTES=str(SIZE),
                         UPLOAD_QUOTA_BYTES=str(QUOTA), **extra)


def csv(size: int = SIZE) -> bytes:
    """A well-formed CSV of exactly `size` bytes."""
    body = b"name,amount\n" + b"ann,1\n" * ((size - 40) // 6)
    return body + b"bob," + b"2" * (size - len(body) - 5) + b"\n"


async def upload(client: httpx.AsyncClient, content: Any = None) -> httpx.Response:
    return await client.post("/api/uploads", params={"filename": "a.csv"},
                             content=csv() if content is None else content, headers={"content-type": "text/csv"})


def age_use(settings: Settings, upload_id: str) -> None:
    """Date the upload's last use by a submit back past USE_GRACE, as if that long had passed."""
    then = time.time() - USE_GRACE - 1
    os.utime(settings.data_dir / "uploads" / upload_id / USED, (then, then))


def stored(settings: Settings) -> tuple[int, list[str]]:
    """Bytes of every file under the uploads folder, and its upload folders."""
    root = settings.data_dir / "uploads"
    files = [path for path in root.rglob("*") if path.is_file() and path.name != ".lock"]
    return sum(path.stat().st_size for path in files), sorted(p.name for p in root.iterdir() if p.is_dir())


async def test_an_upload_over_the_quota_is_refused_naming_it_and_a_delete_frees_room(
        client: httpx.AsyncClient, settings: Settings) -> None:
    kept = [(await upload(client)).json()["id"] for _ in range(9)]
    refused = await upload(client)
    assert refused.status_code == 507
    detail = refused.json()["detail"]
    assert f"UPLOAD_QUOTA_BYTES is {QUOTA} bytes" in detail and f"{9 * (SIZE + META_ALLOWANCE)} are used" in detail
    assert f"needs {SIZE + META_ALLOWANCE}" in detail
    used, folders = stored(settings)
    assert used <= QUOTA and folders == sorted(kept)  # the refused one left nothing behind
    assert (await client.delete(f"/api/uploads/{kept[0]}")).status_code == 204
    assert (await upload(client)).status_code == 201


async def test_concurrent_uploads_together_never_overshoot_the_quota(
        client: httpx.AsyncClient, settings: Settings) -> None:
    async def chunked() -> Any:  # no Content-Length: the cap is reserved until the end
        for _ in range(10):
            yield csv(SIZE // 10)

    answers = await asyncio.gather(*(upload(client, chunked() if i % 4 == 0 else None) for i in range(24)))
    codes = sorted(answer.status_code for answer in answers)
    assert set(codes) == {201, 507} and codes.count(201) == 9, codes  # each upload.json takes a few bytes
    used, folders = stored(settings)
    assert used <= QUOTA and len(folders) == 9


@pytest.mark.parametrize("settings", [{"UPLOAD_RATE": str(SIZE), "UPLOAD_BURST": str(3 * SIZE)}], indirect=True)
async def test_a_client_over_its_upload_rate_is_told_to_wait(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await upload(client)).status_code == 201
    refused = await upload(client)
    assert refused.status_code == 429 and "UPLOAD_RATE" in refused.json()["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    await asyncio.sleep(int(refused.headers["retry-after"]))
    assert (await upload(client)).status_code == 201


async def test_an_upload_is_deleted_unless_an_unfinished_task_uses_it(
        client: httpx.AsyncClient, settings: Settings) -> None:
    free, used = [(await upload(client)).json()["id"] for _ in range(2)]
    assert (await client.delete(f"/api/uploads/{free}")).status_code == 204
    assert (await client.get(f"/api/uploads/{free}")).status_code == 404
    for unknown in (free, "0" * 32, "not-an-id"):
        gone = await client.delete(f"/api/uploads/{unknown}")
        assert gone.status_code == 404 and "not found" in gone.json()["detail"]
    task = await submit(client, "data_processing", upload=[used])  # no worker: it stays PENDING
    refused = await client.delete(f"/api/uploads/{used}")
    assert refused.status_code == 409 and task["id"] in refused.json()["detail"]
    assert (await client.delete(f"/api/tasks/{task['id']}")).json()["status"] == "CANCELLED"
    schedule = (await client.post("/api/schedules", json={"task_type": "data_processing", "interval": 3600,
                                                          "parameters": {"upload": [used]}, "paused": True})).json()
    refused = await client.delete(f"/api/uploads/{used}")
    assert refused.status_code == 409 and schedule["id"] in refused.json()["detail"]
    assert (await client.delete(f"/api/schedules/{schedule['id']}")).status_code == 204
    age_use(settings, used)  # the schedule's submit named it just now (see the test below)
    assert (await client.delete(f"/api/uploads/{used}")).status_code == 204


@pytest.mark.parametrize("settings", [{"UPLOAD_EXPIRY": "1", "RETENTION_INTERVAL": "0.2"}], indirect=True)
async def test_the_worker_expires_uploads_that_nothing_uses(
        client: httpx.AsyncClient, settings: Settings, worker: ResilientWorker) -> None:
    unused, named = [(await upload(client)).json()["id"] for _ in range(2)]
    await client.post("/api/tasks/submit", json={"task_type": "data_processing", "parameters": {"upload": [named]},
                                                 "delay": 3600})
    deadline = time.monotonic() + 20
    while (await client.get(f"/api/uploads/{unused}")).status_code != 404:
        assert time.monotonic() < deadline, "the unused upload never expired"
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)  # several more passes
    assert (await client.get(f"/api/uploads/{named}")).status_code == 200
    assert stored(settings)[1] == [named]


async def test_uploads_go_with_the_last_task_that_named_them(
        client: httpx.AsyncClient, settings: Settings, worker: ResilientWorker) -> None:
    alone, shared = [(await upload(client)).json()["id"] for _ in range(2)]
    done = [await submit(client, "data_processing", upload=[upload_id], processing_time=0)
            for upload_id in (alone, shared)]
    waiting = await client.post("/api/tasks/submit", json={"task_type": "data_processing",
                                                           "parameters": {"upload": [shared]}, "delay": 3600})
    submitted = time.monotonic()
    for task in done:
        assert (await wait_for_status(client, task["id"], {"SUCCESS", "FAILED"}))["status"] == "SUCCESS"
    await asyncio.sleep(max(0.0, USE_GRACE + 0.5 - (time.monotonic() - submitted)))  # no submit in flight names them
    removed = await client.post("/api/tasks/bulk", json={"action": "delete", "ids": [t["id"] for t in done]})
    assert removed.json()["applied"] == 2
    assert (await client.get(f"/api/uploads/{alone}")).status_code == 404
    assert (await client.get(f"/api/uploads/{shared}")).status_code == 200  # still named by the waiting task
    assert stored(settings)[1] == [shared]
    await client.delete(f"/api/tasks/{waiting.json()['id']}")
    assert (await client.post("/api/tasks/bulk", json={"action": "delete", "ids": [waiting.json()["id"]]})
            ).json()["applied"] == 1
    assert (await client.get(f"/api/uploads/{shared}")).status_code == 404


async def test_a_delete_racing_submits_that_name_the_upload_never_loses_an_accepted_task(
        client: httpx.AsyncClient, settings: Settings) -> None:
    """A submit that has checked the upload but not stored its task yet is not seen by the look for
    tasks that name it: the delete must not take the upload from under it."""
    for _ in range(10):
        upload_id = (await upload(client, csv(1000))).json()["id"]
        body = {"task_type": "data_processing", "parameters": {"upload": [upload_id]}}
        submitted, deleted = await asyncio.gather(client.post("/api/tasks/submit", json=body),
                                                  client.delete(f"/api/uploads/{upload_id}"))
        kept = (await client.get(f"/api/uploads/{upload_id}")).status_code == 200
        if submitted.status_code == 201:  # accepted: its upload stays, and the delete said why not
            assert kept and deleted.status_code == 409, (deleted.status_code, deleted.text)
        else:  # the delete came first: the submit was told, and nothing was accepted
            assert submitted.status_code == 422 and deleted.status_code == 204 and not kept
    # a submit that named the upload and was then refused (a bad option) leaves a mark like one in flight
    upload_id = (await upload(client)).json()["id"]
    refused = await client.post("/api/tasks/submit", json={"task_type": "data_processing", "priority": "urgent!",
                                                           "parameters": {"upload": [upload_id]}})
    assert refused.status_code == 422
    held = await client.delete(f"/api/uploads/{upload_id}")
    assert held.status_code == 409 and "submit" in held.json()["detail"]
    age_use(settings, upload_id)
    assert (await client.delete(f"/api/uploads/{upload_id}")).status_code == 204


@pytest.mark.parametrize("settings", [{"UPLOAD_EXPIRY": "0", "RETENTION_INTERVAL": "0.2"}], indirect=True)
async def test_with_expiry_off_the_worker_still_clears_uploads_abandoned_mid_write(
        client: httpx.AsyncClient, settings: Settings, worker: ResilientWorker) -> None:
    unused = (await upload(client)).json()["id"]
    abandoned = settings.data_dir / "uploads" / ("a" * 32)  # what a web process that died mid-upload leaves
    abandoned.mkdir()
    with (abandoned / "big.csv").open("wb") as reserved:
        reserved.truncate(QUOTA // 2)  # its reservation: counted against the quota while it stays
    then = time.time() - 2 * 3600
    for path in (abandoned / "big.csv", abandoned):
        os.utime(path, (then, then))
    deadline = time.monotonic() + 20
    while abandoned.exists():
        assert time.monotonic() < deadline, "the abandoned upload was never cleared"
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)  # several more passes: the unused upload stays, as UPLOAD_EXPIRY=0 says
    assert stored(settings)[1] == [unused]


async def test_a_bulk_delete_removes_the_tasks_uploads_past_a_folder_left_by_a_dead_remover(
        client: httpx.AsyncClient, settings: Settings) -> None:
    upload_id = (await upload(client)).json()["id"]
    task = await submit(client, "data_processing", upload=[upload_id])  # no worker: PENDING, then cancelled
    await client.delete(f"/api/tasks/{task['id']}")
    age_use(settings, upload_id)
    leftover = settings.data_dir / "uploads" / f".removing-{upload_id}"  # a remover died after its move aside
    leftover.mkdir()
    (leftover / "a.csv").write_bytes(b"x")
    removed = await client.post("/api/tasks/bulk", json={"action": "delete", "ids": [task["id"]]})
    assert removed.status_code == 200 and removed.json()["applied"] == 1, removed.text
    assert (await client.get(f"/api/uploads/{upload_id}")).status_code == 404


@pytest.mark.parametrize("settings", [{"SUBMIT_RATE": "1000", "SUBMIT_BURST": "1000"}], indirect=True)
async def test_deleting_tasks_reads_only_their_upload_parameters(client: httpx.AsyncClient) -> None:
    """Removal looks for the uploads a task names in its upload parameters alone: a bulk delete of
    tasks with 1 MB texts does not read those texts back into memory."""
    count, text = 40, "word " * 200_000
    ids = [(await client.post("/api/tasks/submit", json={"task_type": "text_processing", "delay": 3600,
                                                           "parameters": {"text": text}})).json()["id"]
           for _ in range(count)]
    assert (await client.post("/api/tasks/bulk", json={"action": "cancel", "ids": ids})).json()["applied"] == count
    tracemalloc.start()
    try:
        removed = await client.post("/api/tasks/bulk", json={"action": "delete", "ids": ids})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert removed.json()["applied"] == count
    assert peak < count * len(text) / 4, f"{peak / 1e6:.1f} MB at the peak for {count * len(text) / 1e6:.0f} MB texts"
