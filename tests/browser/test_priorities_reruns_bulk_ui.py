"""Priorities, scheduled starts, bulk actions and re-runs in the dashboard, in Debian's chromium against
the real app and worker; every outcome is checked again through the REST API."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Page

from app.worker.resilient import ResilientWorker
from tests.support.browser import CHROMIUM, SKIP_REASON, open_dashboard, row
from tests.support.waits import submit, wait_for_status

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)

DIALOG = "#bulk-dialog[open]"
PARIS = ZoneInfo("Europe/Paris")  # the page's time zone
LATER = 3600  # seconds: a scheduled task that must still be waiting when the test ends


def panel(task_id: str) -> str:
    return f'#detail[data-task-id="{task_id}"]'


@pytest.fixture
def page_options() -> dict[str, Any]:
    """Paris time: a local start time has an offset to get right."""
    return {"timezone_id": "Europe/Paris"}


async def scheduled(client: httpx.AsyncClient, **options: Any) -> dict[str, Any]:
    """A text task that waits LATER seconds (or as `options` say) before it may start."""
    body = {"task_type": "text_processing", "parameters": {"text": "later"}, "delay": LATER, **options}
    response = await client.post("/api/tasks/submit", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def finished(client: httpx.AsyncClient, text: str) -> dict[str, Any]:
    task = await submit(client, "text_processing", text=text)
    return await wait_for_status(client, task["id"], {"SUCCESS"}, timeout=30)


async def get(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_bulk_retry_of_a_selection_asks_with_the_dry_run_count_then_applies_it(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    done = await finished(client, "already done")
    cancelled = [await scheduled(client) for _ in range(3)]
    for task in cancelled:
        assert (await client.delete(f"/api/tasks/{task['id']}")).json()["status"] == "CANCELLED"
    untouched = await scheduled(client)  # on the page, not selected
    sent: list[dict[str, Any]] = []
    page.on("request", lambda request: request.url.endswith("/api/tasks/bulk") and sent.append(request.post_data_json))
    await open_dashboard(page, web)
    assert not await page.is_visible("#bulk-bar") and await page.is_visible("#bulk-open")  # nothing ticked yet
    for task in [done, *cancelled]:
        await page.check(f"{row(task['id'])} .row-select")
    assert await page.is_visible("#bulk-bar") and not await page.is_visible("#bulk-open")
    await page.locator('[data-scope-label="selection"]').filter(has_text="Selected (4)").wait_for()

    await page.click('#bulk-bar [data-bulk="retry"]')
    await page.wait_for_selector(DIALOG)
    assert await page.text_content("#bulk-question") == "Retry 3 of 4 selected tasks?"
    await page.click("#bulk-dialog [data-keep]")
    await page.wait_for_selector(DIALOG, state="detached")
    ids = [task["id"] for task in [done, *cancelled]]
    assert sent == [{"action": "retry", "ids": ids, "dry_run": True}], "keeping them sends nothing more"
    for task in cancelled:
        assert (await get(client, task["id"]))["status"] == "CANCELLED", "keeping them changed nothing"

    await page.click('#bulk-bar [data-bulk="retry"]')
    await page.wait_for_selector(DIALOG)
    await page.click("#bulk-dialog [data-confirm]")
    await page.locator("#bulk-bar .bulk-outcome").filter(has_text="3 retried, 0 skipped").wait_for()
    assert [body["dry_run"] for body in sent] == [True, True, False]
    for task in cancelled:  # retried: queued at once (a retry drops the later start), then run
        now = await wait_for_status(client, task["id"], {"SUCCESS"}, timeout=30)
        assert [entry.get("message") for entry in now["timeline"]].count("manual retry") == 1
        await page.wait_for_selector(row(task["id"], "SUCCESS"))
    assert (await get(client, done["id"]))["seq"] == done["seq"], "the SUCCESS task was not eligible"
    assert (await get(client, untouched["id"]))["status"] == "PENDING"
    await page.locator('[data-scope-label="selection"]').filter(has_text="Selected (0)").wait_for()
    await page.click("#bulk-bar [data-bulk-close]")  # the outcome stays until the bar is closed
    await page.wait_for_selector("#bulk-bar", state="hidden")


async def test_bulk_delete_of_everything_matching_the_filter(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    gone = [await finished(client, f"old {n}") for n in range(3)]
    waiting = await scheduled(client)
    await open_dashboard(page, web, "?status=SUCCESS")
    await page.wait_for_function("n => document.querySelectorAll('tr[data-task-id]').length === n", arg=3)
    await page.click("#bulk-open")  # the whole filter, with nothing ticked
    assert await page.is_checked('#bulk-bar input[value="filter"]')
    await page.locator('[data-scope-label="filter"]').filter(has_text="All 3 matching the filter").wait_for()

    await page.click('#bulk-bar [data-bulk="delete"]')
    await page.wait_for_selector(DIALOG)
    assert await page.text_content("#bulk-question") == "Delete 3 of 3 tasks matching the filter?"
    await page.click("#bulk-dialog [data-confirm]")
    await page.locator("#bulk-bar .bulk-outcome").filter(has_text="3 deleted, 0 skipped").wait_for()
    await page.wait_for_selector("#empty", state="visible")
    for task in gone:
        assert (await client.get(f"/api/tasks/{task['id']}")).status_code == 404
    assert (await client.get("/api/tasks/", params={"status": "SUCCESS"})).json()["total"] == 0
    assert (await get(client, waiting["id"]))["status"] == "PENDING", "outside the filter"


async def test_tasks_deleted_elsewhere_leave_the_list_and_the_open_panel(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    doomed, kept = await finished(client, "doomed"), await finished(client, "kept")
    await open_dashboard(page, web)
    await page.click(f"{row(doomed['id'])} .task-link")
    await page.wait_for_selector(f'{panel(doomed["id"])}[data-status="SUCCESS"]')
    answer = await client.post("/api/tasks/bulk", json={"action": "delete", "ids": [doomed["id"]]})
    assert answer.json()["applied"] == 1, answer.text
    await page.wait_for_selector(row(doomed["id"]), state="detached")
    await page.wait_for_selector("#detail", state="hidden")
    assert "task=" not in page.url
    assert await page.locator(row(kept["id"])).count() == 1


async def test_run_again_with_changes_prefills_the_form_and_links_both_tasks(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    original = await finished(client, "the first text")
    await open_dashboard(page, web, f"?task={original['id']}")
    await page.wait_for_selector(f'{panel(original["id"])}[data-status="SUCCESS"]')
    await page.click(f'{panel(original["id"])} [data-action="edit"]')

    assert await page.input_value("#task-type") == "text_processing"
    assert await page.is_disabled("#task-type"), "a re-run keeps the task's type"
    assert await page.input_value("#param-text") == "the first text"
    assert await page.text_content("#rerun-banner [data-rerun-of]") == original["id"]
    await page.fill("#param-text", "the second text")
    await page.select_option("#opt-priority", "high")
    await page.click("#submit-form [data-submit]")

    link = page.locator(f'#detail .lineage-source [data-open="{original["id"]}"]')
    await link.wait_for()
    new_id = await page.get_attribute("#detail", "data-task-id")
    assert new_id and new_id != original["id"]
    rerun = await wait_for_status(client, new_id, {"SUCCESS"}, timeout=30)
    assert rerun["parameters"]["text"] == "the second text"
    assert rerun["source_task_id"] == original["id"] and rerun["priority"] == "high"
    assert (await get(client, original["id"]))["parameters"]["text"] == "the first text"
    assert await page.is_enabled("#task-type"), "the form is back to new tasks"

    await link.click()  # "re-run of" opens the original, which lists its re-run
    await page.wait_for_selector(f'{panel(original["id"])} .reruns [data-open="{new_id}"]')
    assert "Re-run 1 time" in (await page.text_content(f'{panel(original["id"])} .lineage-title') or "")


async def test_duplicate_makes_the_same_task_again_and_opens_it(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    original = await finished(client, "same again")
    await open_dashboard(page, web, f"?task={original['id']}")
    await page.wait_for_selector(f'{panel(original["id"])}[data-status="SUCCESS"]')
    await page.click(f'{panel(original["id"])} [data-action="duplicate"]')
    await page.wait_for_function("id => document.getElementById('detail').dataset.taskId !== id", arg=original["id"])
    copy_id = await page.get_attribute("#detail", "data-task-id")
    assert copy_id
    await page.wait_for_selector(f'#detail .lineage-source [data-open="{original["id"]}"]')
    await page.wait_for_selector(row(copy_id))  # on the list too
    copy = await wait_for_status(client, copy_id, {"SUCCESS"}, timeout=30)
    assert copy["parameters"] == original["parameters"] and copy["source_task_id"] == original["id"]
    listed = (await client.get("/api/tasks/", params={"source_task_id": original["id"]})).json()
    assert [task["id"] for task in listed["tasks"]] == [copy_id]


async def test_priority_and_start_time_chosen_in_the_form_reach_the_task(
    web: str, client: httpx.AsyncClient, page: Page,
) -> None:
    await open_dashboard(page, web)
    await page.select_option("#task-type", "text_processing")
    await page.select_option("#opt-priority", "low")
    await page.select_option("#opt-start", "at")
    today = datetime.now(PARIS)
    start = (today + timedelta(days=10)).replace(hour=10, minute=15, second=30, microsecond=0)
    await page.fill("#opt-run_at", start.strftime("%Y-%m-%dT%H:%M:%S"))  # Paris wall time
    await page.click("#submit-form [data-submit]")
    at_id = await (await page.wait_for_selector("#submit-result [data-open]")).text_content()
    assert at_id
    task = await get(client, at_id)
    assert task["priority"] == "low" and task["status"] == "PENDING"
    assert datetime.fromisoformat(task["run_at"]) == start.astimezone(UTC)
    await page.locator(f'{row(at_id)} .priority[data-priority="low"]').filter(has_text="low").wait_for()
    year = "" if start.year == today.year else f" {start.year}"
    assert (await page.text_content(f"{row(at_id)} .c-runtime") or "").startswith("scheduled for")
    assert await page.text_content(f"{row(at_id)} .c-runtime .wait") == f"{start:%b} {start.day}{year}, 10:15:30"

    await page.select_option("#opt-priority", "high")
    await page.select_option("#opt-start", "after")
    await page.fill("#opt-delay", str(LATER))
    before = datetime.now(UTC)
    await page.click("#submit-form [data-submit]")
    await page.locator("#submit-result [data-open]").filter(has_not_text=at_id).wait_for()
    after_id = await page.text_content("#submit-result [data-open]")
    assert after_id
    task = await get(client, after_id)
    assert task["priority"] == "high" and task["status"] == "PENDING"
    # The delay counts from the server's receipt: between the click and now, plus LATER seconds.
    assert before + timedelta(seconds=LATER) <= datetime.fromisoformat(task["run_at"])
    assert datetime.fromisoformat(task["run_at"]) <= datetime.now(UTC) + timedelta(seconds=LATER)
    await page.locator(f"{row(after_id)} .c-runtime").filter(has_text="scheduled for").wait_for()
    await page.locator(f'{row(after_id)} .priority[data-priority="high"]').wait_for()

    await page.click(f"{row(after_id)} .task-link")
    await page.locator(f'{panel(after_id)} .fields .priority').filter(has_text="high").wait_for()
    await page.locator(f"{panel(after_id)} .wait").filter(has_text="scheduled for").wait_for()
