"""Results people can read, in Debian's chromium: each built-in type's result in its own view with the
figures of a real run, any other type's result in the generic view (bounded, however large), the raw
JSON one click away, parameters by their titles and uploads by their file names, the queue's own
fields under "More", a failed task's error first, and hostile keys and values shown as text."""

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.async_api import Browser, Locator, Page

from app.settings import Settings
from app.worker.resilient import ResilientWorker
from tests.browser.test_xss import PAYLOADS, Watch
from tests.support.browser import CHROMIUM, LIVE, SKIP_REASON, open_dashboard
from tests.support.servers import make_settings
from tests.support.waits import submit, wait_for_status

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)

# A table read back as the reader sees it: each body row as {column title: cell text}, or, for a
# table of names and values, {name: value}.
ROWS = """table => { const heads = [...table.querySelectorAll(':scope > thead th')].map((th) => th.textContent);
  return [...table.querySelectorAll(':scope > tbody > tr')].map(
    (tr) => Object.fromEntries([...tr.cells].map((cell, i) => [heads[i], cell.textContent]))); }"""
PAIRS = """table => Object.fromEntries([...table.querySelectorAll(':scope > tbody > tr')].map(
  (tr) => [tr.cells[0].textContent, tr.cells[1].textContent]))"""


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    return make_settings(redis_url, db_url, tmp_path / "data",
                         TASK_MODULES="tests.support.user_tasks,tests.support.result_tasks")


async def rows(table: Locator) -> list[dict[str, str]]:
    return await table.evaluate(ROWS)  # type: ignore[no-any-return]


async def pairs(table: Locator) -> dict[str, str]:
    return await table.evaluate(PAIRS)  # type: ignore[no-any-return]


async def upload(client: httpx.AsyncClient, name: str, body: bytes, content_type: str) -> str:
    response = await client.post("/api/uploads", params={"filename": name}, content=body,
                                 headers={"Content-Type": content_type})
    assert response.status_code == 201, response.text
    return response.json()["id"]  # type: ignore[no-any-return]


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((width, height)).convert("RGB").save(out, "PNG")
    return out.getvalue()


async def finished(client: httpx.AsyncClient, task_type: str, status: str = "SUCCESS",
                   **parameters: Any) -> dict[str, Any]:
    task = await submit(client, task_type, **parameters)
    return await wait_for_status(client, task["id"], {status}, timeout=30)


async def show(page: Page, task: dict[str, Any]) -> str:
    """Opens the task's panel (from the list, as a user does) once it is settled; returns its selector."""
    await page.click(f'tr[data-task-id="{task["id"]}"] .task-link')
    panel = f'#detail[data-task-id="{task["id"]}"][data-status="{task["status"]}"]'
    await page.wait_for_selector(panel)
    await page.wait_for_selector(f'{panel} [data-section="parameters"]:not([aria-busy])')
    return panel


async def raw_result(page: Page, panel: str) -> Any:
    """The result's raw JSON, after the click that opens it."""
    raw = page.locator(f'{panel} [data-section="result"] .raw-json')
    assert await raw.get_attribute("open") is None and not await raw.locator("pre").is_visible()
    await raw.locator("summary").click()
    assert await raw.locator("pre").is_visible()
    return json.loads(await raw.locator("pre").text_content() or "")


CITIES = b"city,temp,count\n<b>Oslo</b>,1,10\nRome,2,20\nRome,3,30\nOslo,4,\nLima,5,50\n"


async def test_csv_statistics_read_as_a_table_per_column_with_a_quantile_strip(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page) -> None:
    upload_id = await upload(client, "cities.csv", CITIES, "text/csv")
    task = await finished(client, "data_processing", processing_time=0, upload=[upload_id])
    await open_dashboard(page, web)
    panel = await show(page, task)
    view = f'{panel} .result-view[data-view="data_processing"]'
    summary = await pairs(page.locator(f"{view} > .rv-csv > .rv-pairs"))
    assert summary["Source"] == f"uploaded file cities.csv ({len(CITIES)} B)"
    assert (summary["Rows"], summary["Columns"]) == ("5", "3")

    temp, count, city = (f'{view} .rv-column[data-column="{name}"]' for name in ("temp", "count", "city"))
    assert await rows(page.locator(f"{temp} .rv-stats")) == [
        {"Count": "5", "Missing": "0", "Mean": "3", "Std": "1.581", "Min": "1", "Max": "5"}]
    assert await rows(page.locator(f"{temp} .rv-quantiles")) == [
        {"p5": "1.2", "p25": "2", "Median": "3", "p75": "4", "p95": "4.8"}]
    assert await rows(page.locator(f"{count} .rv-stats")) == [
        {"Count": "4", "Missing": "1", "Mean": "27.5", "Std": "17.078", "Min": "10", "Max": "50"}]
    assert await rows(page.locator(f"{count} .rv-quantiles")) == [
        {"p5": "11.5", "p25": "17.5", "Median": "25", "p75": "35", "p95": "47"}]
    # the strip spans min to max: temp's p25-p75 box (2 to 4 of 1 to 5) covers its middle half
    strip = await page.locator(f"{temp} .rv-strip").bounding_box()
    box = await page.locator(f"{temp} .rv-strip-iqr").bounding_box()
    median = await page.locator(f"{temp} .rv-strip-median").bounding_box()
    assert strip and box and median
    assert abs(box["x"] - strip["x"] - strip["width"] / 4) < 2 and abs(box["width"] - strip["width"] / 2) < 2
    assert abs(median["x"] + median["width"] / 2 - strip["x"] - strip["width"] / 2) < 2

    assert await rows(page.locator(f"{city} .rv-stats")) == [{"Count": "5", "Missing": "0", "Distinct": "4"}]
    top = await rows(page.locator(f"{city} .rv-top"))
    assert [(r["Most frequent"], r["Count"]) for r in top] == [("Rome", "2"), ("<b>Oslo</b>", "1"), ("Lima", "1"),
                                                                 ("Oslo", "1")]
    assert await page.locator(f"{city} .rv-top .rv-bar").count() == 4

    # the parameters by their schema titles, the upload by its file name
    parameters = await pairs(page.locator(f"{panel} .rv-params"))
    assert parameters["Processing Time"] == "0" and parameters["Chunk Size"] == "1000 (default)"
    named = page.locator(f'{panel} [data-param="upload"] .rv-upload[data-state="named"]')
    assert (await named.text_content() or "").startswith("cities.csv")
    assert await named.get_attribute("title") == f"upload {upload_id}"
    assert await raw_result(page, panel) == task["result_data"]


async def test_a_csv_wider_than_analysed_says_how_many_columns_it_has(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page) -> None:
    wide = (",".join(f"c{i}" for i in range(1001)) + "\n" + ",".join("1" for _ in range(1001)) + "\n").encode()
    task = await finished(client, "data_processing", processing_time=0,
                          upload=[await upload(client, "wide.csv", wide, "text/csv")])
    await open_dashboard(page, web)
    panel = await show(page, task)
    summary = await pairs(page.locator(f'{panel} .result-view[data-view="data_processing"] > .rv-csv > .rv-pairs'))
    assert summary["Columns"] == "1,001 (statistics of the first 1,000)"


async def test_email_and_batch_show_counts_and_their_failures_first(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page) -> None:
    email = await finished(client, "email_simulation", recipient_count=5, delay_per_email=0, failure_rate=0.4, seed=42)
    batch = await finished(client, "batch_processing", data=["ok", None, 4, True, "fine"], delay_per_item=0)
    result = email["result_data"]
    failed = [r for r in result["recipients"] if r["status"] != "sent"]
    assert result["sent"] and failed, "the run must both send and fail some"
    await open_dashboard(page, web)

    panel = await show(page, email)
    view = f'{panel} .result-view[data-view="email_simulation"]'
    tiles = dict(zip(await page.locator(f"{view} .rv-tile dt").all_text_contents(),
                     await page.locator(f"{view} .rv-tile dd").all_text_contents()))
    assert tiles["Sent"] == str(result["sent"]) and tiles["Failed"] == str(len(failed)) and tiles["Recipients"] == "5"
    assert await page.get_attribute(f'{view} .rv-tile[data-figure="Failed"]', "data-tone") == "bad"
    assert await rows(page.locator(f"{view} .rv-failures")) == [
        {"Recipient": r["recipient"], "Reason": r["error"]} for r in failed]
    await page.keyboard.press("Escape")

    panel = await show(page, batch)
    view = f'{panel} .result-view[data-view="batch_processing"]'
    tiles = dict(zip(await page.locator(f"{view} .rv-tile dt").all_text_contents(),
                     await page.locator(f"{view} .rv-tile dd").all_text_contents()))
    assert tiles == {"Items": "5", "Succeeded": "3", "Failed": "2"}
    items = await rows(page.locator(f"{view} .rv-items-table"))
    assert [(r["#"], r["Outcome"], r["Item"]) for r in items] == [
        ("1", "✕ failed", "—"), ("3", "✕ failed", "true"),
        ("0", "✓ ok", "ok"), ("2", "✓ ok", "4"), ("4", "✓ ok", "fine")]
    assert items[0]["Output"] == "unsupported item type"
    assert items[3]["Output"] == "Value 4 · Square 16 · Sqrt 2"
    marked = page.locator(f'{view} .rv-items-table tr[data-ok="false"]')
    assert await marked.count() == 2
    assert await raw_result(page, panel) == batch["result_data"]


async def test_images_text_and_summary_read_as_gallery_tables_and_positions(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page) -> None:
    wide = await upload(client, "wide.png", png(80, 40), "image/png")
    tall = await upload(client, "tall.png", png(30, 60), "image/png")
    images = await finished(client, "image_processing", operation="thumbnail", target_size=[32, 32],
                            uploads=[wide, tall])
    text = await finished(client, "text_processing", text="apple banana apple. Cherry apple banana!\n\nA second one.")
    document = "Cats purr softly. Dogs bark loudly at night. Cats and dogs share the house with cats. Birds sing."
    summary = await finished(client, "ai_summarization", document=document, max_sentences=2)
    await open_dashboard(page, web)

    panel = await show(page, images)
    view = f'{panel} .result-view[data-view="image_processing"]'
    await page.wait_for_function(
        "() => { const imgs = [...document.querySelectorAll('#detail .files img')];"
        " return imgs.length === 2 && imgs.every((i) => i.complete && i.naturalWidth > 0); }")
    assert await page.locator(f"{view} .rv-gallery img").evaluate_all(
        "imgs => imgs.map((i) => [i.naturalWidth, i.naturalHeight])") == [[32, 16], [16, 32]]
    assert await page.locator(f"{view} .rv-dims").all_text_contents() == [
        "32 × 16 px · RGB PNG", "16 × 32 px · RGB PNG"]
    assert await page.locator(f"{view} .rv-origin").all_text_contents() == ["from wide.png", "from tall.png"]
    assert await page.locator("#detail .files").count() == 1  # shown once, in the gallery
    assert await page.locator(f'{panel} [data-section="files"]').is_hidden()
    names = page.locator(f'{panel} [data-param="uploads"] .rv-upload[data-state="named"]')
    assert [name.split(" ")[0] for name in await names.all_text_contents()] == ["wide.png", "tall.png"]
    await page.keyboard.press("Escape")

    panel = await show(page, text)
    view = f'{panel} .result-view[data-view="text_processing"]'
    counts, result = await pairs(page.locator(f"{view} .rv-counts")), text["result_data"]
    assert (counts["Words"], counts["Sentences"], counts["Paragraphs"], counts["Distinct words"]) == (
        str(result["word_count"]), "3", "2", str(result["unique_words"]))
    top = await rows(page.locator(f"{view} .rv-top"))
    assert [(r["#"], r["Word"], r["Count"]) for r in top[:2]] == [("1", "apple", "3"), ("2", "banana", "2")]
    await page.keyboard.press("Escape")

    panel = await show(page, summary)
    view = f'{panel} .result-view[data-view="ai_summarization"]'
    kept = summary["result_data"]["sentences"]
    assert len(kept) == 2
    assert await page.locator(f"{view} .rv-quote").text_content() == summary["result_data"]["summary"]
    assert await page.locator(f"{view} .rv-sentences > li > .rv-text").all_text_contents() == kept
    starts = [document.index(sentence) for sentence in kept]
    assert await page.locator(f"{view} .rv-where").all_text_contents() == [
        f"characters {start + 1}–{start + len(sentence)} of {len(document)}" for start, sentence in zip(starts, kept)]
    assert await page.locator(f"{view} .rv-sentences > li").evaluate_all(
        "items => items.map((li) => Number(li.dataset.start))") == starts


async def test_a_user_types_result_in_the_generic_view_bounded_however_large(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page) -> None:
    value = {"name": "x", "sizes": [1, 2, 3], "owner": {"id": 7, "tags": ["a", "b"]},
             "rows": [{"a": 1, "b": "x"}, {"a": 2, "c": True}], "flag_set": False, "nothing": None}
    echo = await finished(client, "echo", value=value)
    sprawl = await finished(client, "sprawl", rows=2000, depth=30)
    assert len(json.dumps(sprawl["result_data"])) > 800_000
    await open_dashboard(page, web)

    panel = await show(page, echo)
    view = f'{panel} .result-view[data-view="generic"] > .rv-generic > .rv-object > .rv-pairs'
    shown = await pairs(page.locator(view))
    assert list(shown) == ["Name", "Sizes", "Owner", "Rows", "Flag set", "Nothing"]
    assert (shown["Name"], shown["Sizes"], shown["Flag set"], shown["Nothing"]) == ("x", "1, 2, 3", "no", "—")
    owner = page.locator(f'{view} > tbody > tr:has(> th[title="owner"]) .rv-pairs')
    assert await pairs(owner) == {"Id": "7", "Tags": "a, b"}
    records = page.locator(f'{view} > tbody > tr:has(> th[title="rows"]) .rv-records table')
    assert await rows(records) == [{"A": "1", "B": "x", "C": ""}, {"A": "2", "B": "", "C": "yes"}]
    # the parameter without a control of its own (an object) reads the same way
    assert await pairs(page.locator(f'{panel} [data-param="value"] .rv-pairs >> nth=0')) == shown
    assert await raw_result(page, panel) == value
    await page.keyboard.press("Escape")

    panel = await show(page, sprawl)
    view = f'{panel} .result-view[data-view="generic"]'
    assert await page.locator(f"{view} *").count() < 3000  # 24,000 cells and 8,000 numbers in the result
    notes = [note.strip() for note in await page.locator(f"{view} .rv-more").all_text_contents()]
    assert {"… 1,950 more rows (see Raw JSON)", "… 4 more columns (see Raw JSON)", "… 7,970 more"} <= set(notes)
    assert await page.locator(f"{view} .rv-records thead th").all_text_contents() == [
        f"Field {n}" for n in range(8)]
    assert await page.locator(f"{view} .rv-folded").first.text_content() == "{…} 2 keys"  # nesting cut at depth 4
    raw = await raw_result(page, panel)
    assert raw == sprawl["result_data"]


async def test_a_failed_tasks_error_comes_first_and_the_queues_fields_are_under_more(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page) -> None:
    failed = await finished(client, "explode", "FAILED", message="kaboom: the first line\nand the second")
    counted = await finished(client, "word_count", text="one two three", repeat=2)
    await open_dashboard(page, web)

    panel = await show(page, failed)
    error = page.locator(f'{panel} [data-section="error"]')
    assert await error.locator(".error-text").text_content() == "ValueError: kaboom: the first line\nand the second"
    first = await error.bounding_box()
    fields = await page.locator(f"{panel} .fields").bounding_box()
    assert first and fields and first["y"] < fields["y"] and first["y"] + 60 < 900  # above the fields, in sight
    assert not await page.locator(f"{panel} pre.traceback").is_visible()
    assert await page.locator(f'{panel} [data-section="result"] .rv-note').text_content() == "No result."

    main = await page.locator(f"{panel} .fields > div:not([hidden]) > dt").all_text_contents()
    assert main[:5] == ["Type", "Priority", "Attempts", "Created", "Started"]
    assert not {"Dispatch", "Seq", "Cancel requested", "Worker", "Updated"} & set(main)
    more = page.locator(f"{panel} .more-fields")
    assert await more.get_attribute("open") is None and not await more.locator(".more-list").is_visible()
    await more.locator("summary").click()
    internal = dict(zip(await more.locator(".more-list > div:not([hidden]) dt").all_text_contents(),
                        await more.locator(".more-list > div:not([hidden]) dd").all_text_contents()))
    assert internal["Dispatch"] == str(failed["dispatch"]) and internal["Seq"] == str(failed["seq"])
    assert internal["Worker"] == failed["worker"] and internal["Cancel requested"] == "no"
    assert internal["Attempts allowed"] == "2 (the type's)"
    await page.keyboard.press("Escape")

    panel = await show(page, counted)
    label = page.locator(f'{panel} [data-param="text"] th')
    assert await label.text_content() == "Text to count"  # its schema title, not the identifier
    assert await label.get_attribute("title") == "text: Any text; words are split on blanks."
    assert await pairs(page.locator(f"{panel} .rv-params")) == {
        "Text to count": "one two three", "Repeat": "2", "Pause": "0 (default)"}


async def test_hostile_keys_and_values_in_a_result_are_shown_as_text(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, browser: Browser) -> None:
    keys, values = PAYLOADS[:20], PAYLOADS[20:40]
    echo = await finished(client, "echo", value={**dict(zip(keys, values)), "list": values,
                                                 "records": [{k: v} for k, v in zip(keys, values)]})
    table = io.StringIO()
    csv.writer(table, lineterminator="\n").writerows([PAYLOADS[:6], PAYLOADS[6:12]])
    csv_id = await upload(client, PAYLOADS[1], table.getvalue().encode(), "text/csv")
    csv_task = await finished(client, "data_processing", processing_time=0, upload=[csv_id])
    batch = await finished(client, "batch_processing", data=PAYLOADS[:10], delay_per_item=0)
    watch = Watch()
    # CSP bypassed: an injected handler would run, so only the dashboard's text-only rendering stops it.
    context = await browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    try:
        page = await context.new_page()
        page.set_default_timeout(15_000)
        await watch.install(page)
        await page.goto(f"http://{web}/")
        await page.wait_for_selector(LIVE)

        panel = await show(page, echo)
        view = f'{panel} .result-view[data-view="generic"] > .rv-generic > .rv-object > .rv-pairs'
        titled = page.locator(f"{view} > tbody > tr > th")
        assert (await titled.evaluate_all("ths => ths.map((th) => th.title)"))[:20] == keys
        assert (await page.locator(f"{view} > tbody > tr > td").all_text_contents())[:20] == values
        assert await page.locator(f'{view} > tbody > tr:has(> th[title="list"]) .rv-str').all_text_contents() == [
            v if len(v) <= 80 else f"{v[:80]}…" for v in values]
        await raw_result(page, panel)
        await page.keyboard.press("Escape")

        panel = await show(page, csv_task)
        columns = page.locator(f"{panel} .rv-column")
        assert await columns.evaluate_all("cs => cs.map((c) => c.dataset.column)") == PAYLOADS[:6]
        headings = await columns.locator(".rv-heading").all_text_contents()
        assert [heading.removesuffix("categorical") for heading in headings] == PAYLOADS[:6]
        assert await page.locator(f"{panel} .rv-top .rv-value").all_text_contents() == PAYLOADS[6:12]
        await page.keyboard.press("Escape")

        panel = await show(page, batch)
        assert await page.locator(f"{panel} .rv-items-table td:nth-child(3)").all_text_contents() == [
            p if len(p) <= 80 else f"{p[:80]}…" for p in PAYLOADS[:10]]

        planted = await page.evaluate("""() => document.querySelectorAll(
            '#detail :is(script, iframe, object, embed, svg, math, style, meta, img, '
            + '[href^="javascript:" i], [src^="javascript:" i])').length""")
        assert planted == 0
    finally:
        await context.close()
    assert watch.calls == [] and watch.dialogs == [] and watch.injected == []


async def test_a_task_cut_short_in_the_list_opens_whole_and_reruns_from_the_whole(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page) -> None:
    """Lists and live frames carry a 1,000,000-character text cut short (`truncated`): the panel says so
    while it reads the whole task, then shows it, and "Run again with changes" starts from all of it."""
    text = "word " * 200_000
    task = await finished(client, "text_processing", text=text)
    listed = (await client.get("/api/tasks")).json()["tasks"][0]
    assert listed["truncated"] == ["parameters"] and len(listed["parameters"]["text"]) < 10_000
    await open_dashboard(page, web)
    panel = await show(page, task)
    await page.wait_for_selector(f"{panel} .truncated-note", state="hidden")
    await page.click(f'{panel} [data-action="edit"]')
    assert await page.input_value("#param-text") == text


async def test_a_large_running_tasks_panel_reads_it_whole_once_however_many_progress_frames_come(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page) -> None:
    """Each progress frame of a large task comes cut short: the store keeps the whole parameters it read
    (they never change) rather than letting every frame make the open panel read the whole task again,
    and "Run again with changes" starts from all of them while the task runs."""
    text = "word " * 200_000
    task = await submit(client, "word_count", text=text, repeat=100, pause=0.1)
    running = await wait_for_status(client, task["id"], {"RUNNING"}, timeout=30)
    reads: list[str] = []
    frames: list[str] = []
    page.on("request", lambda request: request.url.endswith(f"/api/tasks/{task['id']}") and reads.append(request.url))
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: isinstance(payload, str)
                                          and '"type":"task"' in payload and task["id"] in payload
                                          and frames.append(payload)))
    await open_dashboard(page, web)
    panel = await show(page, running)
    await page.wait_for_selector(f"{panel} .truncated-note", state="hidden")
    counted = "() => Number(/count (\\d+) of/.exec(document.querySelector('#detail .stage').textContent)?.[1] ?? 0)"
    shown, seen = await page.evaluate(counted), len(frames)
    for _ in range(300):  # the panel shows 15 more counts (about 1.5 s of progress frames)
        if await page.evaluate(counted) >= shown + 15:
            break
        await asyncio.sleep(0.1)
    assert len(frames) - seen >= 10 and '"truncated":["parameters"]' in frames[-1]  # each cut short
    assert len(reads) <= 2, reads  # when it opened (and once more for the note it showed then), never per frame
    assert await page.get_attribute("#detail", "data-status") == "RUNNING"
    await page.click(f'{panel} [data-action="edit"]')
    assert await page.input_value("#param-text") == text
    assert (await client.delete(f"/api/tasks/{task['id']}")).status_code == 200
    await wait_for_status(client, task["id"], {"CANCELLED"}, timeout=30)
