"""A team's own task module (TASK_MODULES=tests.support.user_tasks) served and run like the built-in
types: described, validated, run with live progress and logs, cancelled, retried, failed with its
traceback kept; in a thread or a child process; refused at start when it cannot be used; and web and
workers serving different sets."""

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import psutil
import pytest
from websockets.asyncio.client import connect

from app.core import keys
from app.main import create_app
from app.settings import Settings
from app.tasks import TaskDefinitionError, load_task_types
from app.worker.main import UNSERVED_DEFER, build_worker_settings
from app.worker.resilient import ResilientWorker
from tests.support.processes import process_env, workers
from tests.support.servers import make_settings, served
from tests.support.waits import receive, submit, wait_for_progress, wait_for_status, wait_until

StartWorker = Callable[..., Awaitable[ResilientWorker]]
USER_MODULE = "tests.support.user_tasks"


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    return make_settings(redis_url, db_url, tmp_path / "data", TASK_MODULES=USER_MODULE)


async def test_a_user_modules_types_are_described_for_the_form_and_the_api(client: httpx.AsyncClient) -> None:
    types = {t["name"]: t for t in (await client.get("/api/task-types")).json()["task_types"]}
    assert {"word_count", "area", "slow_sum", "burn", "explode", "text_processing"} <= set(types)
    counted = types["word_count"]
    assert counted["description"] == "Counts the words of a text" and counted["module"] == USER_MODULE
    assert (counted["timeout"], counted["max_attempts"], counted["executor"]) == (60.0, 2, "async")
    text, repeat = counted["parameters"]["text"], counted["parameters"]["repeat"]
    assert (text["title"], text["required"], text["multiline"]) == ("Text to count", True, True)
    assert (repeat["title"], repeat["default"], repeat["minimum"], repeat["maximum"]) == ("Repeat", 1, 1, 100)
    assert types["slow_sum"]["executor"] == "thread" and types["burn"]["executor"] == "process"
    assert set(types["area"]["parameters"]) == {"width", "height", "unit"}
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert schemas["WordCountParameters"]["required"] == ["text"]
    assert "WordCountSubmit" in schemas["Submit"]["discriminator"]["mapping"]["word_count"]


async def test_a_bad_parameter_is_a_422_naming_it(client: httpx.AsyncClient) -> None:
    for parameters, field, message in (
        ({}, "text", "required"),
        ({"text": "a b", "repeat": 0}, "repeat", "must be an integer between 1 and 100, got 0"),
        ({"text": "a b", "colour": "red"}, "colour", "unknown parameter; known: text, repeat, pause"),
    ):
        answer = await client.post("/api/tasks/submit", json={"task_type": "word_count", "parameters": parameters})
        assert answer.status_code == 422 and answer.json() == {"detail": f"{field}: {message}", "field": field}
    answer = await client.post("/api/tasks/submit", json={"task_type": "area", "parameters": {"width": 0}})
    assert answer.status_code == 422 and answer.json()["field"] == "width"


async def test_a_user_task_runs_to_success_with_progress_and_log_lines_seen_live(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    async with connect(f"ws://{web}/ws") as ws:
        assert (await receive(ws))["type"] == "hello"
        task = await submit(client, "word_count", text="one two three", repeat=3, pause=0.3)
        await ws.send(json.dumps({"type": "logs", "task_id": task["id"]}))
        progress, lines, final = set(), [], None
        while final is None:
            frame = await receive(ws)
            if frame["type"] == "logs":
                lines += [line["line"] for line in frame["lines"]]
            elif frame["type"] == "task" and frame["task"]["id"] == task["id"]:
                if frame["task"]["status"] == "RUNNING":
                    progress.add(frame["task"]["progress"])
                if frame["task"]["status"] in ("SUCCESS", "FAILED"):
                    final = frame["task"]
        while len(lines) < 3:  # the last lines are flushed with the end
            frame = await receive(ws)
            lines += [line["line"] for line in frame["lines"]] if frame["type"] == "logs" else []
    assert final["status"] == "SUCCESS" and final["result_data"] == {"words": 9}
    assert max(progress) > 0, progress
    assert lines[:3] == ["counted 3 words so far", "counted 6 words so far", "counted 9 words so far"]


async def test_a_model_parameter_and_a_plain_function_in_a_thread_run_too(
        client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    area = await client.post("/api/tasks/submit", json={"task_type": "area", "parameters": {"width": 6, "unit": "m"}})
    summed = await submit(client, "slow_sum", upto=100)
    assert (await wait_for_status(client, area.json()["id"], {"SUCCESS"}))["result_data"] == {"area": 24, "unit": "m²"}
    done = await wait_for_status(client, summed["id"], {"SUCCESS"})
    assert done["result_data"] == {"sum": sum(range(100))} and done["progress"] == 100


async def test_a_user_task_is_cancelled_and_retried(client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    for task_type, parameters in (("word_count", {"text": "x", "repeat": 100, "pause": 0.2}),
                                  ("slow_sum", {"upto": 1000, "pause": 0.5})):
        task = await submit(client, task_type, **parameters)
        await wait_for_progress(client, task["id"])
        cancelled = (await client.delete(f"/api/tasks/{task['id']}")).json()
        assert cancelled["status"] == "CANCELLED", cancelled
        retried = await client.post(f"/api/tasks/{task['id']}/retry")
        assert retried.status_code == 200 and retried.json()["status"] == "PENDING"
        again = await wait_for_progress(client, task["id"])
        assert again["attempts"] == 2
        assert (await client.delete(f"/api/tasks/{task['id']}")).json()["status"] == "CANCELLED"


async def test_a_task_that_raises_ends_failed_with_its_traceback(
        client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    failed = await wait_for_status(client, (await submit(client, "explode", message="boom"))["id"], {"FAILED"})
    assert failed["error_message"] == "ValueError: boom" and failed["attempts"] == 1
    trace = failed["error_traceback"]
    assert trace.startswith("Traceback (most recent call last)") and trace.rstrip().endswith("ValueError: boom")
    assert "in fail_deeply" in trace and "user_tasks.py" in trace
    # a transient error is tried again (max_attempts=2 for this type), then fails with the last traceback
    flaky = await wait_for_status(client, (await submit(client, "explode", transient=True))["id"], {"FAILED"},
                                  timeout=20)
    assert flaky["attempts"] == 2 and flaky["error_message"] == "failed after 2 attempts: TransientError: boom"
    assert "TransientError: boom" in flaky["error_traceback"]
    assert [e["status"] for e in flaky["timeline"]] == ["PENDING", "RUNNING", "RETRYING", "RUNNING", "FAILED"]
    retried = (await client.post(f"/api/tasks/{failed['id']}/retry")).json()
    assert retried["error_traceback"] is None and retried["error_message"] is None
    # a success after a failed attempt leaves no error on the task; its timeline keeps the attempt's
    recovered = await wait_for_status(client, (await submit(client, "explode", transient=True, recover_after=1))["id"],
                                      {"SUCCESS", "FAILED"}, timeout=20)
    assert recovered["status"] == "SUCCESS" and recovered["result_data"] == {"failed_before": 1}
    assert recovered["error_message"] is None and recovered["error_traceback"] is None
    assert "attempt 1 failed: TransientError: boom" in [e.get("message") for e in recovered["timeline"]]


async def test_a_process_task_is_stopped_at_once_by_a_cancel_or_its_time_limit_and_the_worker_stays_live(
        client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    burning = await submit(client, "burn", seconds=30)
    await wait_for_status(client, burning["id"], {"RUNNING"})
    beats = []  # the worker's loop is free: its heartbeats go on while the child process burns a core
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        beats.append((await client.get("/api/health")).json()["workers"]["live"])
        await asyncio.sleep(0.1)
    assert set(beats) == {1}
    asked = time.monotonic()
    answer = (await client.delete(f"/api/tasks/{burning['id']}")).json()
    assert answer["status"] == "CANCELLED" and time.monotonic() - asked < 2.0, answer
    limited = await client.post("/api/tasks/submit", json={"task_type": "burn", "parameters": {"seconds": 30},
                                                           "timeout": 1})
    started = time.monotonic()
    ended = await wait_for_status(client, limited.json()["id"], {"FAILED"}, timeout=10)
    assert ended["error_message"] == "timed out after 1 s" and time.monotonic() - started < 4.0
    quick = await wait_for_status(client, (await submit(client, "burn", seconds=0.2))["id"], {"SUCCESS"})
    assert quick["result_data"]["spins"] > 0


async def test_a_process_task_stuck_in_one_c_call_holding_the_gil_is_stopped_at_once_while_others_run(
        client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    # in a thread this call would hold the worker's loop for minutes: no heartbeat, cancel or time limit
    grinding = await submit(client, "grind", size=150_000)
    await wait_for_progress(client, grinding["id"])
    counted = await wait_for_status(client, (await submit(client, "word_count", text="a b c"))["id"], {"SUCCESS"})
    assert counted["result_data"] == {"words": 3}
    health = await client.get("/api/health")
    assert health.status_code == 200 and health.json()["workers"]["live"] == 1
    asked = time.monotonic()
    answer = (await client.delete(f"/api/tasks/{grinding['id']}")).json()
    assert answer["status"] == "CANCELLED" and time.monotonic() - asked < 2.0, answer
    limited = await client.post("/api/tasks/submit", json={"task_type": "grind", "parameters": {"size": 150_000},
                                                           "timeout": 1})
    started = time.monotonic()
    ended = await wait_for_status(client, limited.json()["id"], {"FAILED"}, timeout=10)
    assert ended["error_message"] == "timed out after 1 s" and time.monotonic() - started < 4.0
    quick = await wait_for_status(client, (await submit(client, "grind", size=10))["id"], {"SUCCESS"})
    assert quick["result_data"] == {"matched": 12}


async def test_a_process_task_may_start_processes_and_fails_with_its_own_traceback(
        client: httpx.AsyncClient, worker: ResilientWorker, caplog: pytest.LogCaptureFixture) -> None:
    pooled = await wait_for_status(client, (await submit(client, "burn", seconds=0, helpers=2))["id"], {"SUCCESS"},
                                   timeout=30)
    assert pooled["result_data"]["squares"] == [0, 1, 4, 9, 16]
    failed = await wait_for_status(client, (await submit(client, "burn", seconds=0, fail_with="no fuel"))["id"],
                                   {"FAILED"})
    assert failed["error_message"] == "ValueError: no fuel"
    assert "in burn" in failed["error_traceback"] and failed["error_traceback"].rstrip().endswith("ValueError: no fuel")
    logged = next(message for message in (r.getMessage() for r in caplog.records)
                  if failed["id"] in message and "failed" in message)
    assert "in burn" in logged and "user_tasks.py" in logged  # the child's traceback, not the parent's


async def test_a_killed_workers_process_tasks_die_with_it(client: httpx.AsyncClient, settings: Settings,
                                                          tmp_path: Path) -> None:
    env = process_env(str(settings.redis_url), str(settings.database_url), settings.data_dir,
                      TASK_MODULES=USER_MODULE)
    with workers(env, tmp_path) as pool:
        worker = pool.start()
        burning = await submit(client, "burn", seconds=60)
        await wait_for_progress(client, burning["id"], timeout=20)  # burning, with nothing more to send for 60 s
        below = psutil.Process(worker.pid).children(recursive=True)  # the forkserver, the task's process …
        assert any(p.ppid() != worker.pid for p in below)
        pool.kill(worker)
        _, alive = psutil.wait_procs(below, timeout=5)
        assert not alive, [(p.pid, p.cmdline()) for p in alive]  # nothing burns on behind the dead worker's back


def _module(tmp_path: Path, name: str, source: str) -> str:
    (tmp_path / f"{name}.py").write_text(source)
    return name


@pytest.mark.parametrize(("source", "says"), [
    (None, "cannot import 'no_such_module_here'"),
    ("import no_such_dependency\n", "cannot import '{module}': ModuleNotFoundError"),
    ("x = 1\n", "'{module}' defines no task type"),
    ("from app.tasks import task\n@task\nasync def text_processing(report) -> dict:\n    return {}\n",
     "'text_processing' is defined twice: in app.tasks.builtin.text_processing and in {module}"),
    ("from app.tasks import task\nclass Thing: ...\n@task\nasync def odd(report, x: Thing) -> dict:\n    return {}\n",
     "{module}.odd: parameter 'x' has an unsupported annotation"),
])
def test_web_and_worker_refuse_to_start_with_a_module_they_cannot_use(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str, db_url: str, source: str | None,
        says: str) -> None:
    module = f"user_module_{abs(hash(says)) % 10**8}"
    monkeypatch.syspath_prepend(str(tmp_path))
    if source is None:
        module = "no_such_module_here"
    else:
        _module(tmp_path, module, source)
    bad = make_settings(redis_url, db_url, tmp_path / "data", TASK_MODULES=module)
    for start in (create_app, build_worker_settings):
        with pytest.raises(TaskDefinitionError) as caught:
            start(bad)  # type: ignore[operator]
        assert says.format(module=module) in str(caught.value)
        sys.modules.pop(module, None)


def test_without_builtin_tasks_only_the_modules_types_are_served() -> None:
    assert list(load_task_types([USER_MODULE], builtin=False)) == [
        "word_count", "area", "slow_sum", "burn", "limits_in_thread", "limits_in_process", "grind", "explode"]


async def test_a_type_no_live_worker_serves_is_accepted_and_waits_for_one_that_does(
        client: httpx.AsyncClient, start_worker: StartWorker, settings: Settings) -> None:
    builtin_only = make_settings(str(settings.redis_url), str(settings.database_url), settings.data_dir)
    first = await start_worker(ctx={**build_worker_settings(builtin_only).ctx, "settings": builtin_only})
    response = await client.post("/api/tasks/submit", json={"task_type": "word_count", "priority": "high",
                                                            "parameters": {"text": "wait for me"}})
    waiting = response.json()
    plain = await submit(client, "text_processing")
    await wait_for_status(client, plain["id"], {"SUCCESS"})  # the worker runs what it serves meanwhile
    # left for later in its own priority's delayed set, not pushed to the back of the queue
    high = keys.delayed_key(settings.queue_name, "high")
    await wait_until(lambda: first.pool.zscore(high, keys.job_id(waiting["id"], 1)), "the job deferred as high")
    due = await first.pool.zscore(high, keys.job_id(waiting["id"], 1))
    assert 0 < due - time.time() * 1000 <= UNSERVED_DEFER * 1000 + 100  # due again in 5 s, not at once
    workers = (await client.get("/api/workers")).json()["workers"]
    served = {w["id"]: set(w["task_types"]) for w in workers}
    assert served[first.ctx["runner"].worker_id] == set(load_task_types())
    still = (await client.get(f"/api/tasks/{waiting['id']}")).json()
    assert still["status"] == "PENDING" and still["attempts"] == 0
    await start_worker()  # this one loads TASK_MODULES
    done = await wait_for_status(client, waiting["id"], {"SUCCESS"}, timeout=20)
    assert done["result_data"] == {"words": 3} and done["attempts"] == 1


async def test_tasks_of_a_type_no_longer_loaded_are_listed_but_not_run_again(
        client: httpx.AsyncClient, worker: ResilientWorker, settings: Settings) -> None:
    failed = await wait_for_status(client, (await submit(client, "explode"))["id"], {"FAILED"})
    builtin_only = make_settings(str(settings.redis_url), str(settings.database_url), settings.data_dir)
    async with served(builtin_only) as address, httpx.AsyncClient(base_url=f"http://{address}") as other:
        listed = (await other.get("/api/tasks/", params={"task_type": "explode"})).json()
        assert [t["id"] for t in listed["tasks"]] == [failed["id"]] and listed["total"] == 1
        for action in ("retry", "rerun"):
            refused = await other.post(f"/api/tasks/{failed['id']}/{action}", json={})
            assert refused.status_code == 422 and refused.json()["field"] == "task_type", refused.text
            assert "unknown task type \"explode\"" in refused.json()["detail"]
    assert (await client.get(f"/api/tasks/{failed['id']}")).json()["status"] == "FAILED"  # untouched


async def test_the_failure_is_logged_with_its_traceback(client: httpx.AsyncClient, worker: ResilientWorker,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    task = await submit(client, "explode", message="logged")
    await wait_for_status(client, task["id"], {"FAILED"})
    await wait_until(lambda: any(r.exc_info for r in caplog.records if task["id"] in r.getMessage()),
                     "the failure's log line")
    record = next(r for r in caplog.records if task["id"] in r.getMessage() and r.exc_info)
    assert record.name == "app.worker.runner" and "ValueError: logged" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ValueError
