"""Recurring tasks: tick arithmetic (pure), the schedules API over HTTP, exactly one task per tick with
three real worker processes, pause and resume, missed ticks, delete; and the schedules page in chromium."""

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Page

from app.core.errors import InvalidParameters
from app.schedules.rules import check_cron, following_tick, next_tick
from app.settings import Settings
from app.store.stores import open_stores
from app.worker.resilient import ResilientWorker
from tests.support.browser import CHROMIUM, SKIP_REASON, Console, http_status
from tests.support.processes import process_env, workers
from tests.support.waits import wait_for_status

UTC_NOON = datetime(2026, 6, 1, 12, 0, 7, tzinfo=UTC)


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """SQLite, and PostgreSQL when TEST_DATABASE_URL is set."""
    return any_db_url


# --- ticks: pure logic ---

def test_cron_next_tick_is_the_first_match_after() -> None:
    assert next_tick("*/15 * * * *", None, "UTC", UTC_NOON) == datetime(2026, 6, 1, 12, 15, tzinfo=UTC)
    assert next_tick("0 12 * * *", None, "UTC", datetime(2026, 6, 1, 12, 0, tzinfo=UTC)) == datetime(
        2026, 6, 2, 12, 0, tzinfo=UTC)  # strictly after
    assert next_tick("0 0 1 * *", None, "UTC", UTC_NOON) == datetime(2026, 7, 1, tzinfo=UTC)


def test_a_daily_cron_runs_once_on_the_night_the_clocks_go_back_and_an_hourly_one_in_both_passes() -> None:
    night = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # Paris goes from 03:00 CEST back to 02:00 CET on the 25th
    daily = [next_tick("30 2 * * *", None, "Europe/Paris", night)]
    daily.append(next_tick("30 2 * * *", None, "Europe/Paris", daily[-1]))
    assert daily == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 26, 1, 30, tzinfo=UTC)]
    hourly = [next_tick("30 * * * *", None, "Europe/Paris", datetime(2026, 10, 25, 0, 0, tzinfo=UTC))]
    hourly.append(next_tick("30 * * * *", None, "Europe/Paris", hourly[-1]))
    assert hourly == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)]


def test_cron_is_read_in_the_schedules_time_zone() -> None:
    # 09:00 in Paris is 07:00 UTC in summer (CEST) and 08:00 UTC in winter (CET)
    assert next_tick("0 9 * * *", None, "Europe/Paris", UTC_NOON) == datetime(2026, 6, 2, 7, 0, tzinfo=UTC)
    winter = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert next_tick("0 9 * * *", None, "Europe/Paris", winter) == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    assert next_tick("0 9 * * *", None, "America/New_York", UTC_NOON) == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    # 02:30 does not exist in Paris on 29 March 2026 (clocks jump from 02:00 to 03:00): it runs at 03:00
    spring = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert next_tick("30 2 * * *", None, "Europe/Paris", spring) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_an_interval_counts_from_the_tick_and_missed_ticks_collapse_into_one() -> None:
    tick = UTC_NOON
    assert next_tick(None, 90, "UTC", tick) == tick + timedelta(seconds=90)
    assert following_tick(None, 1.0, "UTC", tick, tick + timedelta(seconds=0.2)) == tick + timedelta(seconds=1)
    # three ticks missed (a restart): the next is the first one still ahead, not the three missed
    assert following_tick(None, 1.0, "UTC", tick, tick + timedelta(seconds=3.5)) == tick + timedelta(seconds=4)
    assert following_tick(None, 1.0, "UTC", tick, tick + timedelta(seconds=1)) == tick + timedelta(seconds=2)
    assert following_tick("0 * * * *", None, "UTC", tick, tick + timedelta(hours=5)) == datetime(
        2026, 6, 1, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize("expression", ["* * * *", "* * * * * *", "61 * * * *", "bad cron here now ok",
                                        "0 0 30 2 *", "", 5])
def test_bad_cron_expressions_are_refused(expression: object) -> None:
    with pytest.raises(InvalidParameters) as refused:
        check_cron(expression)
    assert refused.value.field == "cron"


def test_a_cron_expression_is_normalised() -> None:
    assert check_cron(" */5  *  * * 1-5 ") == "*/5 * * * 1-5"


# --- the API ---

async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/schedules", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_crud_through_http(client: httpx.AsyncClient) -> None:
    before = datetime.now(UTC)
    made = await create(client, name="nightly csv", task_type="data_processing", parameters={"rows": 50},
                        cron="30 2 * * *", timezone="Europe/Paris", priority="low")
    assert re.fullmatch(r"[0-9a-f]{32}", made["id"])
    assert made["parameters"]["rows"] == 50 and made["parameters"]["seed"] == 42  # defaults filled in
    assert made["priority"] == "low" and made["interval"] is None and made["paused"] is False
    assert made["runs"] == 0 and made["last_run_at"] is None and made["last_task_id"] is None
    first = datetime.fromisoformat(made["next_run_at"])
    assert before < first <= before + timedelta(days=1, hours=1)
    assert first.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M") in ("02:30", "03:00")

    assert (await client.get(f"/api/schedules/{made['id']}")).json() == made
    other = await create(client, task_type="text_processing", interval=5)
    assert other["name"] == "text_processing" and other["timezone"] == "UTC" and other["cron"] is None
    listed = (await client.get("/api/schedules")).json()["schedules"]
    assert [s["id"] for s in listed] == [made["id"], other["id"]]

    # switch to an interval: the cron is sent as null; the next run moves to the new timing
    edited = (await client.patch(f"/api/schedules/{made['id']}", json={"cron": None, "interval": 60,
                                                                        "name": "every minute"})).json()
    assert edited["cron"] is None and edited["interval"] == 60 and edited["name"] == "every minute"
    assert edited["parameters"]["rows"] == 50 and edited["priority"] == "low"
    moved = datetime.fromisoformat(edited["next_run_at"]) - datetime.now(UTC)
    assert timedelta(seconds=50) < moved <= timedelta(seconds=60)

    paused = (await client.patch(f"/api/schedules/{made['id']}", json={"paused": True})).json()
    assert paused["paused"] is True and paused["next_run_at"] is None
    resumed = (await client.patch(f"/api/schedules/{made['id']}", json={"paused": False})).json()
    assert resumed["paused"] is False and datetime.fromisoformat(resumed["next_run_at"]) > datetime.now(UTC)

    # another type's parameters replace the old ones (defaults of the new type)
    retyped = (await client.patch(f"/api/schedules/{made['id']}", json={"task_type": "text_processing"})).json()
    assert retyped["task_type"] == "text_processing" and set(retyped["parameters"]) == {"text"}

    assert (await client.delete(f"/api/schedules/{made['id']}")).status_code == 204
    for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/run")):
        response = await client.request(method, f"/api/schedules/{made['id']}{path}",
                                        json={} if method == "PATCH" else None)
        assert response.status_code == 404 and "not found" in response.json()["detail"], (method, path)
    assert [s["id"] for s in (await client.get("/api/schedules")).json()["schedules"]] == [other["id"]]


@pytest.mark.parametrize(("body", "field"), [
    ({"task_type": "nope", "interval": 5}, "task_type"),
    ({"interval": 5}, "task_type"),
    ({"task_type": "data_processing", "parameters": {"rows": 0}, "interval": 5}, "rows"),
    ({"task_type": "data_processing", "parameters": {"colour": 1}, "interval": 5}, "colour"),
    ({"task_type": "data_processing", "parameters": [], "interval": 5}, "parameters"),
    ({"task_type": "data_processing", "cron": "61 * * * *"}, "cron"),
    ({"task_type": "data_processing", "cron": "* * * * * *"}, "cron"),
    ({"task_type": "data_processing", "cron": "* * * * *", "interval": 5}, "cron"),
    ({"task_type": "data_processing"}, "cron"),
    ({"task_type": "data_processing", "interval": 0.5}, "interval"),
    ({"task_type": "data_processing", "interval": "5"}, "interval"),
    ({"task_type": "data_processing", "cron": "0 9 * * *", "timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"task_type": "data_processing", "cron": "0 9 * * *", "timezone": "../../etc/passwd"}, "timezone"),
    ({"task_type": "data_processing", "interval": 5, "priority": "urgent"}, "priority"),
    ({"task_type": "data_processing", "interval": 5, "priority": {"high": 1}}, "priority"),
    ({"task_type": "data_processing", "cron": ["* * * * *"]}, "cron"),
    ({"task_type": "data_processing", "cron": "0 9 * * *", "timezone": {"name": "UTC"}}, "timezone"),
    ({"task_type": ["data_processing"], "interval": 5}, "task_type"),
    ({"task_type": "data_processing", "interval": 5, "paused": "yes"}, "paused"),
    ({"task_type": "data_processing", "interval": 5, "name": "two\nlines"}, "name"),
    ({"task_type": "data_processing", "interval": 5, "every": 3}, "every"),
])
async def test_bad_bodies_are_refused_naming_the_field(client: httpx.AsyncClient, body: dict, field: str) -> None:
    response = await client.post("/api/schedules", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert (await client.get("/api/schedules")).json()["schedules"] == []


async def test_an_edit_is_checked_like_a_create_and_changes_nothing_when_refused(client: httpx.AsyncClient) -> None:
    made = await create(client, task_type="text_processing", interval=30)
    for body, field in (({"cron": "0 9 * * *"}, "cron"), ({"interval": None}, "cron"),
                        ({"parameters": {"text": 5}}, "text"), ({"timezone": "Nowhere/Else"}, "timezone")):
        response = await client.patch(f"/api/schedules/{made['id']}", json=body)
        assert response.status_code == 422 and response.json()["field"] == field, response.text
    assert (await client.get(f"/api/schedules/{made['id']}")).json() == made
    response = await client.post("/api/schedules", content=b"task_type=text_processing",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415


async def test_run_now_makes_a_linked_task_and_delete_keeps_the_tasks(client: httpx.AsyncClient) -> None:
    made = await create(client, task_type="text_processing", parameters={"text": "hello there"}, cron="0 0 1 1 *")
    response = await client.post(f"/api/schedules/{made['id']}/run")
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["schedule_id"] == made["id"] and task["status"] == "PENDING"
    assert task["parameters"] == made["parameters"]
    after = (await client.get(f"/api/schedules/{made['id']}")).json()
    assert after["runs"] == 1 and after["last_task_id"] == task["id"] and after["last_run_at"]
    assert after["next_run_at"] == made["next_run_at"]  # a run on demand leaves the next tick alone

    assert (await client.delete(f"/api/schedules/{made['id']}")).status_code == 204
    kept = (await client.get(f"/api/tasks/{task['id']}")).json()
    assert kept["schedule_id"] == made["id"]
    listed = (await client.get("/api/tasks/", params={"schedule_id": made["id"]})).json()["tasks"]
    assert [t["id"] for t in listed] == [task["id"]]


# --- ticks with real workers ---

async def schedule_tasks(client: httpx.AsyncClient, schedule_id: str) -> list[dict[str, Any]]:
    """The schedule's tasks, oldest tick first."""
    tasks = (await client.get("/api/tasks/", params={"schedule_id": schedule_id, "limit": 500})).json()["tasks"]
    return sorted(tasks, key=lambda task: task["run_at"])


async def wait_for_runs(client: httpx.AsyncClient, schedule_id: str, count: int,
                        timeout: float = 30) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(tasks := await schedule_tasks(client, schedule_id)) < count:
        assert asyncio.get_running_loop().time() < deadline, f"{len(tasks)} runs of {count} after {timeout} s"
        await asyncio.sleep(0.1)
    return tasks


def ticks(tasks: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(task["run_at"]) for task in tasks]


async def witness_ticks(client: httpx.AsyncClient, count: int) -> None:
    """Until the workers' schedule loop has run `count` ticks of another schedule, made now (every
    second): the loop looked at every schedule meanwhile, for that long."""
    witness = await create(client, task_type="text_processing", parameters={"text": "witness"}, interval=1)
    await wait_for_runs(client, witness["id"], count)
    assert (await client.delete(f"/api/schedules/{witness['id']}")).status_code == 204


@pytest.mark.timeout(120)
async def test_three_worker_processes_make_exactly_one_task_per_tick(
    client: httpx.AsyncClient, redis_url: str, db_url: str, tmp_path: Path,
) -> None:
    env = process_env(redis_url, db_url, tmp_path / "data")
    with workers(env, tmp_path) as pool:
        for _ in range(3):
            pool.start()
        deadline = asyncio.get_running_loop().time() + 60
        while (await client.get("/api/health")).json()["workers"]["live"] < 3:
            assert asyncio.get_running_loop().time() < deadline, "three workers did not start"
            await asyncio.sleep(0.1)
        made = await create(client, task_type="text_processing", parameters={"text": "tick"}, interval=1)
        await wait_for_runs(client, made["id"], 7, timeout=60)  # ~7 s of ticks
        paused = (await client.patch(f"/api/schedules/{made['id']}", json={"paused": True})).json()
        await witness_ticks(client, 2)  # the workers keep running: a paused schedule makes nothing more
        tasks = await schedule_tasks(client, made["id"])
        assert all(proc.poll() is None for proc in pool.procs), "a worker died"
    seen = ticks(tasks)
    first = datetime.fromisoformat(made["next_run_at"])
    assert len(seen) == len(set(seen)), "a tick ran twice"
    # every tick from the first to the last, one second apart: none missing, none doubled
    assert seen == [first + timedelta(seconds=k) for k in range(len(seen))], seen
    assert len(tasks) == paused["runs"] >= 7
    assert all(task["schedule_id"] == made["id"] for task in tasks)
    final = (await client.get(f"/api/schedules/{made['id']}")).json()
    assert final["runs"] == len(tasks) and final["last_task_id"] == tasks[-1]["id"]
    late = sorted((datetime.fromisoformat(t["created_at"]) - tick).total_seconds() * 1000
                  for t, tick in zip(tasks, seen, strict=True))
    print(f"\n{len(tasks)} ticks, three workers: tick → task created p50 {late[len(late) // 2]:.0f} ms, "
          f"max {late[-1]:.0f} ms")


async def test_pause_stops_the_runs_and_resume_restarts_them(client: httpx.AsyncClient, worker) -> None:
    made = await create(client, task_type="text_processing", interval=1)
    await wait_for_runs(client, made["id"], 1)
    paused = (await client.patch(f"/api/schedules/{made['id']}", json={"paused": True})).json()
    await witness_ticks(client, 2)
    assert len(await schedule_tasks(client, made["id"])) == paused["runs"]
    resumed = (await client.patch(f"/api/schedules/{made['id']}", json={"paused": False})).json()
    restart = datetime.fromisoformat(resumed["next_run_at"])
    assert restart > datetime.fromisoformat(paused["updated_at"])
    tasks = await wait_for_runs(client, made["id"], paused["runs"] + 2)
    assert ticks(tasks)[paused["runs"]] == restart
    assert (await wait_for_status(client, tasks[-1]["id"], {"SUCCESS"}))["schedule_id"] == made["id"]


async def test_ticks_missed_while_no_worker_ran_run_once(
        client: httpx.AsyncClient, start_worker, settings: Settings) -> None:
    made = await create(client, task_type="text_processing", interval=1)
    # Its next tick moved four seconds back, as if no worker had run for that long (no waiting): three
    # or four ticks are due when the worker starts.
    first = datetime.fromisoformat(made["next_run_at"]) - timedelta(seconds=4.2)
    async with open_stores(str(settings.database_url)) as stores:
        await stores.schedules.update(made["id"], {"next_run_at": first})
    late = datetime.now(UTC)
    await start_worker()
    tasks = await wait_for_runs(client, made["id"], 2)
    seen = ticks(tasks)
    assert seen[0] == first  # the missed ticks ran once, as the first of them
    assert seen[1] > late and (seen[1] - first).total_seconds() == int((seen[1] - first).total_seconds())


# --- the schedules page ---

@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
async def test_the_schedules_page_creates_shows_runs_and_pauses(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page, console: Console,
) -> None:
    console.expect(http_status(422, "/api/schedules"))
    await page.goto(f"http://{web}/")
    await page.click("a[href='schedules.html']")
    await page.wait_for_selector("#schedule-form #task-type option", state="attached")

    await page.fill("#schedule-name", "ticker <b>bold</b>")
    await page.select_option("#task-type", "text_processing")
    await page.fill("#param-text", "from the page")
    await page.select_option("#schedule-timing", "cron")
    await page.fill("#schedule-cron", "61 * * * *")
    await page.click("#schedule-form button[type=submit]")
    await page.locator('[data-error-for="cron"]').filter(has_text="cron").wait_for()  # the server's 422

    await page.select_option("#schedule-timing", "interval")
    await page.fill("#schedule-interval", "1")
    await page.click("#schedule-form button[type=submit]")
    row = page.locator("tr[data-schedule-id]")
    await row.wait_for()
    schedule_id = await row.get_attribute("data-schedule-id")
    stored = (await client.get(f"/api/schedules/{schedule_id}")).json()
    assert stored["name"] == "ticker <b>bold</b>" and stored["interval"] == 1
    assert stored["parameters"]["text"] == "from the page"
    assert await row.locator(".schedule-name").text_content() == "ticker <b>bold</b>"  # text, not markup
    assert await row.locator(".next-run").text_content() not in ("", "—")

    last = row.locator(".last-run a[href^='/?task=']")
    await last.wait_for()  # a run appeared, linked to its task
    assert int(await row.locator(".runs").text_content() or "0") >= 1
    await row.locator("[data-action=runs]").click()
    await page.wait_for_selector("#schedule-runs tr[data-task-id]")

    await row.locator("[data-action=pause]").click()
    await page.wait_for_selector(f'tr[data-schedule-id="{schedule_id}"][data-paused="true"]')
    assert (await client.get(f"/api/schedules/{schedule_id}")).json()["paused"] is True
    assert await row.locator(".next-run").text_content() == "paused"

    await row.locator("[data-action=delete]").click()
    await page.click("#delete-dialog[open] button[value=delete]")  # the page asks in a dialog of its own
    await page.wait_for_selector("tr[data-schedule-id]", state="detached")
    assert (await client.get(f"/api/schedules/{schedule_id}")).status_code == 404
