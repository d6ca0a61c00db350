"""Progress of the built-in types: steady through the work (rows read, items done, steps taken, the pace
as it elapses), never backwards, and where the work stopped when it fails; run directly and by a real
worker, watched through the API and the WebSocket."""

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from app.core.status import FINAL
from app.tasks.builtin import csvstats
from app.tasks.builtin.data_processing import READING, generate_chunks
from app.worker.resilient import ResilientWorker
from tests.support.task_runs import run, write_upload
from tests.support.waits import receive, submit, wait_for_status

CSV_MB = 3  # "a few MB": the uploaded file of the end-to-end runs


def generated_csv(megabytes: float) -> bytes:
    rows = int(megabytes * 1_000_000 / 36)  # the generated rows average some 36 bytes
    return "".join(generate_chunks(rows, 42, 10_000)).encode()


def in_between(progress: list[float], low: float = 0.0, high: float = 100.0) -> set[float]:
    return {value for value in progress if low < value < high}


def test_file_lines_count_the_bytes_as_the_parser_takes_the_lines(tmp_path: Path) -> None:
    """Not a block ahead: a file smaller than a block (1 MiB) does not count as read at its first line."""
    lines = [f"{number},{'é' * (number % 7)},text\n" for number in range(20_000)]  # multi-byte characters too
    data = "".join(lines).encode()
    assert len(data) < csvstats.BLOCK
    path = tmp_path / "lines.csv"
    path.write_bytes(data)
    reading = csvstats.FileLines(path)
    consumed = 0
    for line, expected in zip(reading, lines, strict=True):
        assert line == expected
        consumed += len(expected.encode())
        assert reading.fraction == pytest.approx(consumed / len(data), abs=0.01)  # prorated within a block
    assert reading.fraction == 1.0


@pytest.mark.asyncio
@pytest.mark.parametrize("megabytes", [0.02, 0.4])  # fewer rows than a chunk, and a few hundred chunks
async def test_an_uploaded_csv_moves_steadily_with_its_pace(megabytes: float, tmp_path: Path) -> None:
    upload = write_upload(tmp_path / "uploads", "sales.csv", generated_csv(megabytes), "text/csv")
    pace = 1.5
    _, report = await run("data_processing", tmp_path, files=(upload,), upload=[upload.id], processing_time=pace)
    progress = [pct for pct, _ in report.calls]
    assert progress == sorted(progress) and progress[-1] == 100
    reading = [(at, pct) for at, (pct, stage) in zip(report.times, report.calls) if stage.startswith("reading")]
    assert len(in_between([pct for _, pct in reading], 0, READING)) >= 10, reading
    start = reading[0][0]
    for at, pct in reading:  # shown as the pace elapses: never ahead of the time spent
        assert pct <= READING * (at - start) / pace + 3, (at - start, pct)
    halfway = [pct for at, pct in reading if at - start >= pace / 2]
    assert halfway and 0.3 * READING <= halfway[0] <= 0.7 * READING, halfway


@pytest.mark.asyncio
def wide_csv(rows: int, columns: int = 40) -> bytes:
    """Rows of many fields: a chunk of the most rows a chunk takes is parsed over several ticks
    (pacing.TICK) even on a fast machine; the generated file's 36-byte rows were read in two."""
    header = ",".join(f"c{n}" for n in range(columns))
    return (header + "\n" + "".join(",".join(str((i + n) % 97) for n in range(columns)) + "\n"
                                     for i in range(rows))).encode()


async def test_a_large_chunk_reports_while_it_is_read(tmp_path: Path) -> None:
    upload = write_upload(tmp_path / "uploads", "big.csv", wide_csv(100_000), "text/csv")
    _, report = await run("data_processing", tmp_path, files=(upload,), upload=[upload.id], processing_time=0,
                          chunk_size=100_000)
    first_chunk = [pct for pct, stage in report.calls if stage == "reading chunk 1"]
    assert len(in_between(first_chunk, 0, READING)) >= 2, first_chunk


# parameters under which each type has several steps to report
STEPPED = {
    "data_processing": {"rows": 3000, "chunk_size": 100, "processing_time": 0},
    "email_simulation": {"recipient_count": 5, "delay_per_email": 0},
    "image_processing": {"image_count": 2, "target_size": [64, 48]},
    "text_processing": {},
    "ai_summarization": {},
    "batch_processing": {"delay_per_item": 0},
}


@pytest.mark.asyncio
@pytest.mark.parametrize("name", sorted(STEPPED))
async def test_every_type_reports_its_way_through_its_work(name: str, tmp_path: Path) -> None:
    _, report = await run(name, tmp_path, **STEPPED[name])
    progress = [pct for pct, _ in report.calls]
    assert progress == sorted(progress) and progress[0] < 5 and progress[-1] == 100
    assert len(in_between(progress)) >= 3, report.calls


@pytest.mark.asyncio
@pytest.mark.parametrize(("name", "raw"), [
    ("batch_processing", {"data": ["a", "b"], "delay_per_item": 0.6}),
    ("email_simulation", {"recipient_count": 2, "delay_per_email": 0.6}),
])
async def test_a_paced_type_moves_while_it_waits(name: str, raw: dict[str, Any], tmp_path: Path) -> None:
    _, report = await run(name, tmp_path, **raw)
    progress = [pct for pct, _ in report.calls]
    assert progress == sorted(progress) and len(in_between(progress)) >= 6, report.calls


# --- through a real worker ---------------------------------------------------------------------

async def uploaded(client: httpx.AsyncClient, data: bytes, filename: str) -> str:
    response = await client.post("/api/uploads", params={"filename": filename}, content=data,
                                 headers={"content-type": "text/csv"})
    assert response.status_code == 201, response.text
    return response.json()["id"]  # type: ignore[no-any-return]


async def sampled(client: httpx.AsyncClient, task_id: str, timeout: float = 60.0) -> list[tuple[float, dict[str, Any]]]:
    """The task as the API gives it, every 50 ms until it ends (as a dashboard polling it would see it)."""
    samples = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = (await client.get(f"/api/tasks/{task_id}")).json()
        samples.append((time.monotonic(), task))
        if task["status"] in FINAL:
            return samples
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} still {samples[-1][1]['status']} after {timeout} s")


async def test_a_paced_upload_of_a_few_megabytes_shows_progress_moving_steadily(
    client: httpx.AsyncClient, worker: ResilientWorker
) -> None:
    data = generated_csv(CSV_MB)
    task = await submit(client, "data_processing", upload=[await uploaded(client, data, "sales.csv")],
                        processing_time=4)
    samples = await sampled(client, task["id"])
    assert samples[-1][1]["status"] == "SUCCESS" and samples[-1][1]["result_data"]["bytes"] == len(data)
    running = [(at, t["progress"]) for at, t in samples if t["status"] == "RUNNING"]
    progress = [pct for _, pct in running]
    assert progress == sorted(progress)
    # not 0 for the whole pace, then 100: many values, none far from the next, over the time of the pace
    moving = [(at, pct) for at, pct in running if 0 < pct < READING]
    assert len({pct for _, pct in moving}) >= 10 and moving[-1][0] - moving[0][0] >= 2.5, running
    steps = sorted({0.0, READING, *(pct for _, pct in moving)})
    assert max(b - a for a, b in zip(steps, steps[1:])) <= 30, running


async def test_a_failed_csv_keeps_the_progress_where_its_reading_stopped(
    client: httpx.AsyncClient, worker: ResilientWorker
) -> None:
    good = generated_csv(0.4)  # smaller than a block: it used to count as read at its first row
    middle = good.index(b"\n", len(good) // 2) + 1
    bad = good[:middle] + b"1,2,3\n" + good[middle:]
    line = good[:middle].count(b"\n") + 1
    task = await submit(client, "data_processing", upload=[await uploaded(client, bad, "broken.csv")],
                        processing_time=0)
    done = await wait_for_status(client, task["id"], FINAL)
    assert done["status"] == "FAILED" and f"line {line}: expected 6 fields, got 3" in done["error_message"]
    assert done["progress"] == pytest.approx(READING * middle / len(bad), abs=2), done["progress"]


# each run lasting a second or more, so that a real worker reports along the way
REAL = {
    "data_processing": {"rows": 5000, "processing_time": 1.5},
    "email_simulation": {"recipient_count": 10, "delay_per_email": 0.15},
    "image_processing": {"image_count": 12, "operation": "blur"},
    "text_processing": {"text": "Work goes on. " * 70_000},
    "ai_summarization": {"document": " ".join(f"Sentence {n} is about topic{n % 40} and more." for n in range(22_000))},
    "batch_processing": {"data": list(range(15)), "delay_per_item": 0.1},
}


@pytest.mark.parametrize("name", sorted(REAL))
async def test_every_type_run_by_a_worker_moves_forward_on_the_websocket(
    name: str, web: str, client: httpx.AsyncClient, worker: ResilientWorker
) -> None:
    async with connect(f"ws://{web}/ws") as ws:
        await receive(ws)
        task = await submit(client, name, **REAL[name])
        seen: list[tuple[str, float]] = []
        while not seen or seen[-1][0] not in FINAL:
            frame = await receive(ws, 60)
            if frame["type"] == "task" and frame["task"]["id"] == task["id"]:
                seen.append((frame["task"]["status"], frame["task"]["progress"]))
    assert seen[-1] == ("SUCCESS", 100)
    running = [pct for status, pct in seen if status == "RUNNING"]
    assert running == sorted(running) and len(in_between(running)) >= 2, seen
