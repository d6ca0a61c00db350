"""Built-in types at their parameter bounds, with the worst inputs found for each, run by a real worker
process: each finishes within seconds or is cut cleanly by its time limit, and meanwhile the worker
stays live (its heartbeats keep /api/health at 200) and answers a cancel. Timing-dependent sizes are
generous: the machines running the tests are shared."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.support.processes import process_env, workers
from tests.support.waits import submit, wait_for_status

MAX_TEXT = 1_000_000
# a stall of the worker's loop shows: heartbeats every 0.3 s, gone after 3 s without one
WORKER_ENV = {"HEARTBEAT_INTERVAL": "0.3", "HEARTBEAT_TTL": "3"}


@pytest.fixture
async def worker_process(settings: Settings, tmp_path: Path) -> AsyncIterator[None]:
    """One `python worker.py` on the test's Redis and database, live before the test starts."""
    env = process_env(str(settings.redis_url), str(settings.database_url), settings.data_dir, **WORKER_ENV)
    with workers(env, tmp_path) as pool:
        pool.start()
        yield


async def live_until_final(client: httpx.AsyncClient, task_id: str, within: float) -> tuple[dict[str, Any], float]:
    """The task once final and the seconds it took, asserting that the worker stays live meanwhile."""
    started = time.monotonic()
    while True:
        health = await client.get("/api/health")
        assert health.status_code == 200 and health.json()["workers"]["live"] == 1, (
            f"the worker went silent after {time.monotonic() - started:.1f} s: {health.text}")
        task = (await client.get(f"/api/tasks/{task_id}")).json()
        if task["status"] in ("SUCCESS", "FAILED", "CANCELLED"):
            return task, time.monotonic() - started
        assert time.monotonic() - started < within, f"still {task['status']} after {within} s"
        await asyncio.sleep(0.1)


async def wait_live(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 30
    while (await client.get("/api/health")).status_code != 200:
        assert time.monotonic() < deadline, "the worker never came up"
        await asyncio.sleep(0.1)


async def test_the_filed_input_is_analysed_at_once_and_the_worker_stays_live(
        client: httpx.AsyncClient, worker_process: None) -> None:
    # filed: this froze the only worker for 54 s (a regex backtracking through the run of "!"), its
    # health 503, a cancel unanswered, then FAILED "timed out after 2 s"
    await wait_live(client)
    answer = await client.post("/api/tasks/submit", json={
        "task_type": "text_processing", "parameters": {"text": "a" + "!" * 60_000 + "x"}, "timeout": 2})
    task, _ = await live_until_final(client, answer.json()["id"], within=10)
    assert task["status"] == "SUCCESS", task["error_message"]
    assert (task["result_data"]["word_count"], task["result_data"]["sentence_count"]) == (2, 1)


TEXTS = {
    "punctuation run": "a" + "!" * (MAX_TEXT - 2) + "x",
    "terminator at every other character": "!x" * (MAX_TEXT // 2),
    "one-word sentences": "a. " * (MAX_TEXT // 3),
    "one dotted word": "a." * (MAX_TEXT // 2),
    "one word": "a" * MAX_TEXT,
    "newlines": "\n" * (MAX_TEXT // 2) + "a" + " " * (MAX_TEXT // 2 - 1),
}


@pytest.mark.parametrize("name", sorted(TEXTS))
async def test_text_and_summary_at_a_million_characters_finish_within_seconds(
        client: httpx.AsyncClient, worker_process: None, name: str) -> None:
    text = TEXTS[name]
    await wait_live(client)
    analysed = await submit(client, "text_processing", text=text)
    summarised = await submit(client, "ai_summarization", document=text, max_sentences=50, ratio=1.0)
    for task_id in (analysed["id"], summarised["id"]):
        task, _ = await live_until_final(client, task_id, within=30)
        assert task["status"] == "SUCCESS", task["error_message"]
    result = (await client.get(f"/api/tasks/{analysed['id']}")).json()["result_data"]
    assert result["char_count"] == len(text)
    summary = (await client.get(f"/api/tasks/{summarised['id']}")).json()["result_data"]
    assert summary["original_length"] == len(text) and summary["sentence_count"] >= 1


# the other types' largest runs take minutes by design (pacing, a million rows, 10,000 e-mails): what
# matters is that their time limit and a cancel stop them at once, with the worker live meanwhile
LONG_RUNS = {
    "data_processing": {"rows": 1_000_000, "chunk_size": 100_000, "processing_time": 0},
    "email_simulation": {"recipient_count": 10_000, "delay_per_email": 0, "subject": "é" * 200},
    "batch_processing": {"data": ["a" * 190] * 10_000, "delay_per_item": 0.01},  # a request holds 2 MiB
}


@pytest.mark.parametrize("name", sorted(LONG_RUNS))
async def test_the_longest_runs_are_cut_by_their_time_limit_or_a_cancel_at_once(
        client: httpx.AsyncClient, worker_process: None, name: str) -> None:
    await wait_live(client)
    limited = await client.post("/api/tasks/submit", json={"task_type": name, "parameters": LONG_RUNS[name],
                                                           "timeout": 2})
    task, took = await live_until_final(client, limited.json()["id"], within=15)
    assert task["status"] == "FAILED" and task["error_message"] == "timed out after 2 s", task
    cancelled = await submit(client, name, **LONG_RUNS[name])
    await wait_for_status(client, cancelled["id"], {"RUNNING"})
    await asyncio.sleep(1)
    asked = time.monotonic()
    answer = (await client.delete(f"/api/tasks/{cancelled['id']}")).json()
    assert answer["status"] == "CANCELLED" and time.monotonic() - asked < 3, answer
    quick = await submit(client, "text_processing", text="The worker is free again.")
    assert (await live_until_final(client, quick["id"], within=10))[0]["status"] == "SUCCESS"
