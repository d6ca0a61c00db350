"""A filtered list follows the tasks live, in Debian's chromium: whatever the filter (status, type,
priority, id prefix, text, date range), a task that comes to match appears in its place and one that
stops matching leaves, with the page's total, without a reload and without the list being fetched
again (only the socket's events move it)."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Request

from app.settings import Settings
from app.worker.resilient import ResilientWorker
from tests.support.browser import CHROMIUM, SKIP_REASON, open_dashboard, row
from tests.support.servers import make_settings
from tests.support.waits import wait_for_status

StartWorker = Callable[..., Awaitable[ResilientWorker]]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)

SLOW = {"text": "one two three", "repeat": 8, "pause": 0.25}  # word_count: RUNNING for about 2 s


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    return make_settings(redis_url, db_url, tmp_path / "data", TASK_MODULES="tests.support.user_tasks")


async def submitted(client: httpx.AsyncClient, task_type: str, priority: str = "default", **parameters: Any) -> str:
    answer = await client.post("/api/tasks/submit", json={"task_type": task_type, "priority": priority,
                                                          "parameters": parameters})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


class ListFetches:
    """The list's GETs the page makes after it loaded: following the filters must need none."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        page.on("request", self._seen)

    def _seen(self, request: Request) -> None:
        # (an open task's re-runs, `?source_task_id=`, are the detail panel's lookup, not the list's)
        if ("/api/tasks/?" in request.url and "source_task_id=" not in request.url) or request.url.endswith("/api/tasks/"):
            self.urls.append(request.url)


async def watch(page: Page, address: str, query: str) -> ListFetches:
    await open_dashboard(page, address, query)
    await page.wait_for_selector("#empty", state="visible")  # the filtered list, loaded and empty
    await record_departures(page)
    return ListFetches(page)


async def record_departures(page: Page) -> None:
    """Rows leaving the list are noted, however briefly a task stays away (a retry fails again soon)."""
    await page.evaluate("""() => {
      window.departed = [];
      new MutationObserver((changes) => {
        for (const change of changes) for (const node of change.removedNodes) {
          if (node.dataset?.taskId) window.departed.push(node.dataset.taskId);
        }
      }).observe(document.getElementById('task-rows'), { childList: true });
    }""")


async def departed(page: Page) -> list[str]:
    return await page.evaluate("() => window.departed")  # type: ignore[no-any-return]


async def shown_total(page: Page, text: str) -> None:
    await page.locator("#page-info").filter(has_text=text).wait_for()


async def test_a_task_enters_a_status_view_when_it_starts_and_leaves_when_it_ends(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page) -> None:
    fetches = await watch(page, web, "?status=RUNNING")
    task = await submitted(client, "word_count", **SLOW)
    await page.wait_for_selector(row(task, "RUNNING"))
    await shown_total(page, "1–1 of 1")
    assert await page.is_hidden("#empty")
    await page.wait_for_selector(row(task), state="detached")  # SUCCESS: no longer RUNNING
    await page.wait_for_selector("#empty", state="visible")
    await shown_total(page, "No tasks")
    assert fetches.urls == []


async def test_failed_tasks_retried_leave_the_failed_view_and_come_back_when_they_fail_again(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page) -> None:
    failed = [await submitted(client, "explode", message=f"boom {n}") for n in range(3)]
    for task in failed:
        await wait_for_status(client, task, {"FAILED"})
    fetches_before = await open_and_count(page, web, "?status=FAILED", 3)
    await record_departures(page)
    # the queue paused while they wait, so each is seen gone before it fails again (a fast worker could
    # otherwise bring the retry and the new failure to the page in one paint: the row would never leave)
    assert (await client.post("/api/queue/pause")).status_code == 200
    await page.click("#bulk-open")
    await page.click('#bulk-bar [data-bulk="retry"]')
    await page.click("#bulk-dialog [data-confirm]")
    await page.locator("#bulk-bar .bulk-outcome").filter(has_text="3 retried").wait_for()
    # each leaves when it goes back to PENDING…
    await page.wait_for_function("ids => ids.every(id => window.departed.includes(id))", arg=failed)
    assert (await client.post("/api/queue/resume")).status_code == 200
    for task in failed:  # …and comes back when it fails again
        await wait_for_status(client, task, {"FAILED"}, timeout=20)
        await page.wait_for_selector(row(task, "FAILED"))
    assert set(await departed(page)) == set(failed)
    assert (await client.get(f"/api/tasks/{failed[0]}")).json()["attempts"] == 2
    await shown_total(page, "1–3 of 3")
    # the bulk action reloads the list once after it is applied; nothing else fetched it
    assert len(fetches_before.urls) <= 1


async def open_and_count(page: Page, address: str, query: str, rows: int) -> ListFetches:
    await open_dashboard(page, address, query)
    await page.wait_for_function("n => document.querySelectorAll('tr[data-task-id]').length === n", arg=rows)
    return ListFetches(page)


async def test_a_text_search_follows_what_a_task_writes_its_error(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page) -> None:
    fetches = await watch(page, web, "?text=ValueError")  # only in the error, never in the parameters
    task = await submitted(client, "explode", message="kaboom")
    await page.wait_for_selector(row(task, "FAILED"))
    error = page.locator(f"{row(task)} .stage")
    assert await error.text_content() == "ValueError: kaboom"  # the error's first line, in the row
    first = (await client.get(f"/api/tasks/{task}")).json()["seq"]
    # the queue paused while it waits: its retry fails again only once the page has had the time to show
    # it gone (without the pause, a loaded machine could deliver the retry and the new failure in one paint)
    assert (await client.post("/api/queue/pause")).status_code == 200
    assert (await client.post(f"/api/tasks/{task}/retry")).status_code == 200
    await page.wait_for_function("id => window.departed.includes(id)", arg=task)  # it left: its error was cleared
    assert await page.locator(row(task)).count() == 0
    assert (await client.post("/api/queue/resume")).status_code == 200
    again = await wait_for_status(client, task, {"FAILED"})
    assert again["seq"] > first and again["attempts"] == 2
    await page.wait_for_selector(row(task, "FAILED"))  # and came back with the new one
    assert await departed(page) == [task]
    assert fetches.urls == []


@pytest.mark.parametrize("field", ["task_type", "priority", "q", "from"])
async def test_type_priority_id_and_date_filters_take_only_their_tasks_as_they_start_and_end(
        web: str, client: httpx.AsyncClient, start_worker: StartWorker, page: Page, field: str) -> None:
    """A running view narrowed by a field a task never changes: the matching task enters when it
    starts and leaves when it ends; one that differs only in that field never shows."""
    today = datetime.now(UTC).date()
    # both wait for a worker, which starts once the page watches
    matching = await submitted(client, "word_count", priority="high", **SLOW)
    other_kind = {"task_type": ("slow_sum", {"upto": 100, "pause": 0.2}), "priority": ("word_count", SLOW)}
    task_type, parameters = other_kind.get(field, ("word_count", SLOW))
    other = await submitted(client, task_type, **parameters)
    value = {"task_type": "word_count", "priority": "high", "q": matching[:6], "from": today.isoformat()}[field]
    query = f"?status=RUNNING&{field}={value}"
    if field == "q" and other.startswith(matching[:6]):  # not distinct by a 6-digit prefix: 1 in 16 million
        pytest.skip("the two ids share a prefix")
    if field == "from":  # the other view: tasks from tomorrow on, which these are not
        other_page = await page.context.new_page()
        await watch(other_page, web, f"?status=RUNNING&from={(today + timedelta(days=1)).isoformat()}")
    fetches = await watch(page, web, query)
    await start_worker(max_jobs=2)
    await page.wait_for_selector(row(matching, "RUNNING"))
    if field == "from":  # both are from today: both run at once (two jobs), both in this view
        await page.wait_for_selector(row(other, "RUNNING"))
        await shown_total(page, "1–2 of 2")
        await page.wait_for_selector(row(other), state="detached")
    else:
        await shown_total(page, "1–1 of 1")
    await page.wait_for_selector(row(matching), state="detached")
    await shown_total(page, "No tasks")
    await wait_for_status(client, other, {"SUCCESS"}, timeout=30)
    if field == "from":
        assert await other_page.locator("tr[data-task-id]").count() == 0
    else:
        assert await page.locator(row(other)).count() == 0
    assert fetches.urls == []


async def test_the_scheduled_view_holds_tasks_waiting_for_their_start_until_they_run(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page) -> None:
    fetches = await watch(page, web, "?status=SCHEDULED")
    assert await page.get_attribute('[data-count="SCHEDULED"]', "aria-pressed") == "true"
    later = (await client.post("/api/tasks/submit", json={"task_type": "text_processing", "delay": 3600})).json()
    soon = (await client.post("/api/tasks/submit", json={"task_type": "text_processing", "delay": 2})).json()
    now = await submitted(client, "word_count", text="at once")
    await page.wait_for_selector(row(later["id"], "PENDING"))
    await page.wait_for_selector(row(soon["id"], "PENDING"))
    await page.locator('[data-count="SCHEDULED"] .count').filter(has_text="2").wait_for()
    assert await page.locator(row(now)).count() == 0
    await page.wait_for_selector(row(soon["id"]), state="detached")  # its start came: it runs, and leaves
    await page.click(f'tr[data-task-id="{later["id"]}"] .task-link')
    run_now = page.locator('#detail [data-action="runNow"]')
    assert await run_now.is_visible()  # only a task waiting for a later start offers it
    await run_now.click()
    await page.locator("#detail .outcome").filter(has_text="Run now: the server answered").wait_for()
    await page.wait_for_selector(row(later["id"]), state="detached")
    await page.wait_for_selector('#detail [data-action="runNow"]', state="hidden")
    await page.wait_for_selector("#empty", state="visible")
    assert fetches.urls == []
