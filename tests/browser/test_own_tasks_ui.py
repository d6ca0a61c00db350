"""A team's own task type in the dashboard, in Debian's chromium: the form built from its schema
(labels from titles, help from descriptions, a required field), a run watched live, and a failed
task's traceback in the detail panel."""

from pathlib import Path

import pytest
from playwright.async_api import Page

from app.settings import Settings
from app.worker.resilient import ResilientWorker
from tests.support.browser import CHROMIUM, SKIP_REASON, Console, http_status, open_dashboard, row
from tests.support.servers import make_settings

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    return make_settings(redis_url, db_url, tmp_path / "data", TASK_MODULES="tests.support.user_tasks")


async def test_the_form_of_a_user_type_reads_its_schema_and_runs_it_live(
        web: str, worker: ResilientWorker, page: Page, console: Console) -> None:
    console.expect(http_status(422, "/api/tasks/submit"))
    await open_dashboard(page, web)
    await page.select_option("#task-type", "word_count")
    assert await page.locator('label[for="param-text"]').text_content() == "Text to count (required)"
    assert await page.locator('label[for="param-repeat"]').text_content() == "Repeat"
    assert await page.locator('[data-field="repeat"] .hint').text_content() == "Count it this many times over."
    assert await page.get_attribute("#param-text", "required") == "" and await page.input_value("#param-text") == ""
    assert await page.evaluate("document.querySelector('#param-text').tagName") == "TEXTAREA"
    assert (await page.get_attribute("#param-repeat", "min"), await page.get_attribute("#param-repeat", "max")) == (
        "1", "100")
    await page.click("#submit-form button[type=submit]")  # the required text left empty: refused, named
    await page.locator('[data-error-for="text"]').filter(has_text="required").wait_for()
    assert await page.get_attribute("#param-text", "aria-invalid") == "true"
    await page.fill("#param-text", "one two three four")
    await page.fill("#param-repeat", "2")
    await page.click("#submit-form button[type=submit]")
    task_id = await (await page.wait_for_selector("#submit-result [data-open]")).text_content()
    assert task_id
    await page.wait_for_selector(row(task_id, "SUCCESS"))
    await page.click(f"{row(task_id)} .task-link")
    panel = f'#detail[data-task-id="{task_id}"]'
    # the result in the generic readable view: its key in words beside its value
    result = page.locator(f'{panel} .result-view[data-view="generic"] tr').filter(has_text="Words")
    assert await result.locator("td").text_content() == "8"


async def test_a_failed_tasks_traceback_is_in_its_detail_panel(web: str, worker: ResilientWorker, page: Page) -> None:
    await open_dashboard(page, web)
    await page.select_option("#task-type", "explode")
    assert await page.locator('label[for="param-message"]').text_content() == "Message"
    await page.fill("#param-message", "kaboom")
    await page.click("#submit-form button[type=submit]")
    task_id = await (await page.wait_for_selector("#submit-result [data-open]")).text_content()
    assert task_id
    await page.wait_for_selector(row(task_id, "FAILED"))
    await page.click(f"{row(task_id)} .task-link")
    panel = f'#detail[data-task-id="{task_id}"]'
    await page.wait_for_selector(f'{panel}[data-status="FAILED"]')
    assert await page.locator(f"{panel} .error-text").text_content() == "ValueError: kaboom"
    box = page.locator(f"{panel} .traceback-box")
    assert await box.is_visible() and not await page.locator(f"{panel} pre.traceback").is_visible()
    await box.locator("summary").click()
    trace = await page.locator(f"{panel} pre.traceback").text_content()
    assert trace and "in fail_deeply" in trace and trace.rstrip().endswith("ValueError: kaboom")
