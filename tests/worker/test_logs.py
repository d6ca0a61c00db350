"""Structured logs: a real web process (started as the Procfile starts it) and real worker processes
with LOG_FORMAT=json write nothing but JSON lines, and every line about a task names it and its attempt."""

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.logs import JsonFormatter, TextFormatter, about_task, detached, name_task, set_attempt
from app.settings import load_settings
from launcher.redis_server import free_port
from tests.support.processes import ROOT, process_env, workers
from tests.support.waits import submit, wait_for_status

FINAL = {"SUCCESS", "FAILED", "CANCELLED"}
JSON_ENV = {"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}
# aiosqlite logs each statement from the one thread that runs the connection for every task (and
# statements group many tasks' changes): its lines name no task.
SHARED = {"aiosqlite"}


def procfile_web() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.partition(":")[2].strip()
    raise AssertionError("the Procfile has no web process")


@asynccontextmanager
async def web_process(env: dict[str, str], log: Path) -> AsyncIterator[str]:
    """The Procfile's web command in its own process; stopped (SIGTERM, as honcho does) on the way out."""
    port = free_port()
    path = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    with log.open("wb") as out:
        proc = subprocess.Popen(["sh", "-c", procfile_web()], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**env, "HOST": "127.0.0.1", "PORT": str(port), "PATH": path},
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for _ in range(300):
                try:
                    await client.get("/api/health")  # any answer: it is up (503 until a worker beats)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, log.read_text()
                    await asyncio.sleep(0.05)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's output, each of which must be one JSON object."""
    lines = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        try:
            line = json.loads(text)
        except ValueError:
            raise AssertionError(f"{path.name} line {number} is not JSON: {text!r}") from None
        assert isinstance(line, dict), text
        assert {"ts", "level", "logger", "message", "role", "pid", "host"} <= line.keys(), line
        assert line["ts"].endswith("Z"), line
        lines.append(line)
    return lines


def about(lines: list[dict[str, Any]], task_id: str) -> list[dict[str, Any]]:
    """The lines whose message mentions this task (but those of the shared SQLite thread)."""
    return [line for line in lines if task_id in line["message"] and line["logger"] not in SHARED]


def check_named(lines: list[dict[str, Any]], task_ids: list[str]) -> None:
    """A line that mentions one of the tasks names exactly that task."""
    for task_id in task_ids:
        for line in about(lines, task_id):
            assert line.get("task_id") == task_id, line
    for line in lines:
        if "task_id" in line:
            assert not any(other in line["message"] for other in task_ids if other != line["task_id"]), line


async def test_worker_and_web_write_json_lines_naming_task_and_attempt(
    redis_url: str, db_url: str, tmp_path: Path
) -> None:
    # E-mail to a closed port: a transient failure, retried once, then FAILED after attempt 2.
    env = process_env(redis_url, db_url, tmp_path, **JSON_ENV, SMTP_URL=f"smtp://127.0.0.1:{free_port()}")
    with workers(env, tmp_path) as pool:
        worker = pool.start()
        async with web_process(env, tmp_path / "web.log") as base:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                retried = (await client.post("/api/tasks/submit", json={
                    "task_type": "email_simulation", "parameters": {"recipient_count": 1, "delay_per_email": 0},
                    "max_attempts": 2})).json()
                broken = await submit(client, "batch_processing", data=[1e300], fail_fast=True, delay_per_item=0)
                done = await submit(client, "text_processing", text="one two three")
                slow = await submit(client, "batch_processing", data=list(range(100)), delay_per_item=0.1)
                await wait_for_status(client, slow["id"], {"RUNNING"})
                cancel = await client.delete(f"/api/tasks/{slow['id']}")
                assert cancel.status_code == 200, cancel.text
                await wait_for_status(client, slow["id"], {"CANCELLED"})
                ends = {task_id: await wait_for_status(client, task_id, FINAL)
                        for task_id in (retried["id"], broken["id"], done["id"])}
        assert pool.terminate(worker) == 0
    assert ends[retried["id"]]["status"] == "FAILED" and ends[retried["id"]]["attempts"] == 2
    assert ends[broken["id"]]["status"] == "FAILED" and ends[done["id"]]["status"] == "SUCCESS"
    ids = [retried["id"], broken["id"], done["id"], slow["id"]]

    worker_lines = json_lines(tmp_path / "worker-0.log")
    assert {line["role"] for line in worker_lines} == {"worker"}
    assert {line["pid"] for line in worker_lines} == {worker.pid}
    check_named(worker_lines, ids)
    for task_id in ids:
        # arq's own start and end lines, with the job id <task_id>:<dispatch>
        assert any("→" in line["message"] for line in about(worker_lines, task_id)), task_id
        ended = [line for line in about(worker_lines, task_id) if "←" in line["message"]]
        assert ended and all(line["attempt"] == int(line["message"].split(task_id + ":")[1].split(":")[0])
                             for line in ended), ended
    # the retried task: dispatch 1 was attempt 1, dispatch 2 attempt 2, and every line knows which
    attempts = [line.get("attempt") for line in worker_lines if line.get("task_id") == retried["id"]]
    assert 1 in attempts and 2 in attempts and attempts.index(2) > max(i for i, a in enumerate(attempts) if a == 1)
    failed = [line for line in worker_lines if line["message"].startswith(f"task {broken['id']} failed")]
    assert failed and failed[0]["attempt"] == 1 and failed[0]["logger"] == "app.worker.runner", worker_lines

    web_lines = json_lines(tmp_path / "web.log")
    assert {line["role"] for line in web_lines} == {"web"}
    assert any(line["logger"] == "uvicorn.error" and "Uvicorn running" in line["message"] for line in web_lines)
    access = [line for line in web_lines if line["logger"] == "uvicorn.access"]
    assert access and all({"method", "path", "status", "client"} <= line.keys() for line in access)
    cancel_line = next(line for line in access if line["method"] == "DELETE")
    assert cancel_line["path"] == f"/api/tasks/{slow['id']}" and cancel_line["status"] == 200
    assert cancel_line["task_id"] == slow["id"]
    submitted = [line for line in access if line["path"] == "/api/tasks/submit"]
    assert [line.get("task_id") for line in submitted] == ids  # the new task's id, once known
    check_named(web_lines, ids)


async def test_recovered_attempt_lines_name_the_task_and_lost_attempt(
    redis_url: str, db_url: str, tmp_path: Path
) -> None:
    """The watchdog's lines about a task whose worker died carry its id and the lost attempt's number."""
    env = process_env(redis_url, db_url, tmp_path, **JSON_ENV)
    with workers(env, tmp_path) as pool:
        doomed = pool.start()
        async with web_process(env, tmp_path / "web.log") as base:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                task = await submit(client, "batch_processing", data=list(range(20)), delay_per_item=0.1)
                await wait_for_status(client, task["id"], {"RUNNING"})
                pool.kill(doomed)
                pool.start()
                end = await wait_for_status(client, task["id"], {"SUCCESS"}, timeout=30)
    assert end["attempts"] == 2
    json_lines(tmp_path / "web.log")
    lines = json_lines(tmp_path / "worker-1.log")
    check_named(lines, [task["id"]])
    recovered = [line for line in lines if line["logger"] == "app.worker.watchdog"]
    assert recovered and all(line["task_id"] == task["id"] and line["attempt"] == 1 for line in recovered), lines
    assert "stopped responding" in recovered[0]["message"]
    run = [line for line in about(lines, task["id"]) if "→" in line["message"] or "←" in line["message"]]
    assert [line.get("attempt") for line in run] == [None, 2], run  # arq's start (not claimed yet) and end


def record(message: str, *args: Any, exc: bool = False, **extra: Any) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            exc_info = sys.exc_info()
    made = logging.LogRecord("app.worker.runner", logging.WARNING, __file__, 1, message, args, exc_info)
    made.__dict__.update(extra)
    return made


def test_text_lines_show_time_level_logger_task_and_attempt() -> None:
    text = TextFormatter()
    plain = text.format(record("waiting %d s", 3))
    date, time_, level, logger, message = plain.split(" ", 4)
    assert len(date) == 10 and time_.endswith("Z") and (level, logger, message) == ("WARNING", "app.worker.runner:", "waiting 3 s")
    with about_task("3f2c") as scope:
        assert text.format(record("claimed")).endswith("app.worker.runner: [task 3f2c] claimed")
        set_attempt(2)
        assert scope.attempt == 2
        assert text.format(record("claimed")).endswith("app.worker.runner: [task 3f2c #2] claimed")
        with about_task("3f2c"):  # the same task: the scope open for it, attempt kept
            assert "[task 3f2c #2]" in text.format(record("deeper"))
    assert "[task" not in text.format(record("after"))
    failed = text.format(record("failed", exc=True)).splitlines()
    assert failed[0].endswith("app.worker.runner: failed") and failed[-1] == "RuntimeError: boom"


def test_json_lines_carry_context_exception_and_extra_fields() -> None:
    as_json = JsonFormatter("worker")
    line = json.loads(as_json.format(record("plain")))
    assert line["role"] == "worker" and line["level"] == "WARNING" and line["pid"] == os.getpid()
    assert "task_id" not in line and "attempt" not in line and "exc_info" not in line
    with about_task("abc", 3):
        line = json.loads(as_json.format(record("went %s", "wrong", exc=True, delivery="d1", tries=2)))
    assert line["message"] == "went wrong" and (line["task_id"], line["attempt"]) == ("abc", 3)
    assert line["exc_info"].startswith("Traceback") and line["exc_info"].endswith("RuntimeError: boom")
    assert (line["delivery"], line["tries"]) == ("d1", 2)
    assert "\n" not in as_json.format(record("two\nlines", exc=True))


async def test_background_tasks_started_inside_a_task_scope_name_no_task() -> None:
    """A group writer started by whichever task's change came first must not log as that task."""
    seen: list[str | None] = []
    as_json = JsonFormatter("web")

    async def writer() -> None:
        seen.append(json.loads(as_json.format(record("group written"))).get("task_id"))

    async def request() -> None:
        name_task("t1")
        await detached(writer(), name="writer")
        await asyncio.create_task(writer())  # an ordinary task inherits the request's task
    await asyncio.create_task(request())
    assert seen == [None, "t1"]
    assert "task_id" not in json.loads(as_json.format(record("outside")))  # the request's name stayed in it


def test_an_unknown_log_format_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LOG_FORMAT must be 'text'.*or 'json'.*got 'xml'"):
        load_settings({"LOG_FORMAT": "xml"})
    assert load_settings({}).log_format == "text"
    run = subprocess.run([sys.executable, "worker.py"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "LOG_FORMAT": "xml", "DATA_DIR": str(tmp_path)})
    assert run.returncode != 0 and "LOG_FORMAT must be" in run.stderr
    launch = subprocess.run([sys.executable, "-m", "launcher"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env={**os.environ, "LOG_FORMAT": "xml", "DATA_DIR": str(tmp_path)})
    assert launch.returncode == 1 and launch.stderr.startswith("launcher: LOG_FORMAT must be 'text'"), launch.stderr
