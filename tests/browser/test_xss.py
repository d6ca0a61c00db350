"""An XSS corpus through every place the dashboard shows task data, in Debian's chromium.

Each payload, if it ever ran, would call `window.__xss(<its number>)` or `alert(<its number>)`. They go
into every text parameter, into results and log lines (which echo them), into error messages (a CSV
whose header repeats a payload column fails naming it, a 422 quotes the offending value), and into
upload file names; they arrive over the live socket while the page is open, are read again in each
task's detail panel, and once more after a reload from the REST API. The page runs with its CSP
bypassed, so what is tested is the dashboard's own rendering (text only), not the CSP's backstop; a
MutationObserver also reports any element or attribute the payloads could have planted.
"""

import asyncio
import csv
import io
import json
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.async_api import Browser, Dialog, Page, WebSocket

from app.worker.resilient import ResilientWorker
from tests.support.browser import CHROMIUM, LIVE, SKIP_REASON, Console, http_status
from tests.support.waits import submit, wait_for_status

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)

FINAL = ("SUCCESS", "FAILED", "CANCELLED")

# "§" is the payload's number: the sentinel it would call.
TEMPLATES = [
    "<script>__xss(§)</script>",
    "<img src=x onerror=__xss(§)>",
    "<svg onload=__xss(§)>",
    '"><script>__xss(§)</script>',
    "'><img src=x onerror=__xss(§)>",
    "</script><script>__xss(§)</script>",
    "javascript:__xss(§)",
    '<a href="javascript:__xss(§)">click me</a>',
    '<iframe srcdoc="<script>parent.__xss(§)</script>"></iframe>',
    "&lt;script&gt;__xss(§)&lt;/script&gt;",
    "%3Cscript%3E__xss(§)%3C%2Fscript%3E",
    "%253Cimg%2520src%253Dx%2520onerror%253D__xss(§)%253E",
    "&#x3C;script&#x3E;__xss(§)&#x3C;/script&#x3E;",
    "&#60;img src=x onerror=__xss(§)&#62;",
    "{{constructor.constructor('__xss(§)')()}}",
    "${__xss(§)}",
    '<div style="width: expression(__xss(§))">css</div>',
    "<div style=\"background:url('javascript:__xss(§)')\">css</div>",
    "<math><mtext><table><mglyph><style><img src=x onerror=__xss(§)>",
    "\\u003cscript\\u003e__xss(§)\\u003c/script\\u003e",
    "\uff1cscript\uff1e__xss(§)\uff1c/script\uff1e",
    "<body onload=__xss(§)>",
    "<input autofocus onfocus=__xss(§)>",
    "<details open ontoggle=__xss(§)>",
    "<video><source onerror=__xss(§)></video>",
    '<object data="javascript:__xss(§)"></object>',
    '<embed src="javascript:__xss(§)">',
    "<form><button formaction=javascript:__xss(§)>go</button></form>",
    '<meta http-equiv="refresh" content="0;url=javascript:__xss(§)">',
    "<style>@import 'javascript:__xss(§)';</style>",
    '<img src="x" onerror="&#95;&#95;xss(§)">',
    "<svg><script>__xss&#40;§&#41;</script></svg>",
    '" onmouseover="__xss(§)" x="',
    "<scr<script>ipt>__xss(§)</scr</script>ipt>",
    "<IMG SRC=JaVaScRiPt:__xss(§)>",
    "<marquee onstart=__xss(§)>scroll</marquee>",
    '<noscript><p title="</noscript><img src=x onerror=__xss(§)>">',
    "data:text/html,<script>__xss(§)</script>",
    "<img src=x onerror=alert(§)>",
    "<svg/onload=alert(§)>",
    "<script>alert(§)</script>",
    "<a href=\"&#14;  javascript:alert(§)\">x</a>",
    "<template><img src=x onerror=__xss(§)></template>",
    "<x contenteditable onblur=__xss(§)>edit",
    "\u202e<img src=x onerror=__xss(§)>\u202c",
]
PAYLOADS = [template.replace("§", str(number)) for number, template in enumerate(TEMPLATES, 1)]


def tags(length: int, number: int) -> str:
    """`length` characters of <b> tags ending in a payload."""
    tail = f"<img src=x onerror=__xss({number})>"
    return ("<b>" * length)[: length - len(tail)] + tail


LONG = tags(100_000, len(PAYLOADS) + 1)  # for the text parameters that take a megabyte
LONG_ITEM = tags(10_000, len(PAYLOADS) + 2)  # a batch item may hold at most 10,000 characters
CORPUS = [*PAYLOADS, LONG, LONG_ITEM]
assert len(LONG) == 100_000 and len(CORPUS) >= 30 and len(set(CORPUS)) == len(CORPUS)
# File names cannot hold a slash; the server sanitises names anyway, the form shows what was picked.
FILE_NAMES = [p for p in PAYLOADS if "/" not in p][:6]

# Watches for anything a payload could have planted: elements that run or load code, event-handler
# attributes, javascript:/data: URLs. Installed in every document (and frame) before any script.
WATCH = """
(() => {
  const RISKY = new RegExp('^(script|iframe|frame|object|embed|svg|math|style|meta|base|link|video|audio|source'
    + '|marquee|noscript|template)$', 'i');
  const URLS = /^(href|src|action|formaction|data|srcdoc|xlink:href)$/i;
  const CODE = /^\\s*(javascript|data|vbscript):/i;
  const risky = (el) => RISKY.test(el.tagName) || [...el.attributes].some(
    (a) => /^on/i.test(a.name) || a.name === 'srcdoc' || (URLS.test(a.name) && CODE.test(a.value)));
  const report = (el) => window.__injected(el.outerHTML.slice(0, 300));
  const check = (node, deep) => {
    if (node.nodeType !== 1) return;
    for (const el of deep ? [node, ...node.querySelectorAll('*')] : [node]) if (risky(el)) report(el);
  };
  // The page's own markup (its module script in <head>, say) is in place before it runs: watch after.
  document.addEventListener('DOMContentLoaded', () => {
    check(document.body, true);
    new MutationObserver((records) => {
      for (const record of records) {
        if (record.type === 'attributes') check(record.target, false);
        else record.addedNodes.forEach((node) => check(node, true));
      }
    }).observe(document.documentElement, { childList: true, subtree: true, attributes: true });
  });
})();
"""


def pack(payloads: list[str], limit: int, separator: str = " | ") -> list[str]:
    """The payloads joined into as few strings of at most `limit` characters as they fit in."""
    packed: list[str] = []
    for payload in payloads:
        if packed and len(packed[-1]) + len(separator) + len(payload) <= limit:
            packed[-1] += separator + payload
        else:
            packed.append(payload)
    return packed


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((width, height)).save(out, "PNG")
    return out.getvalue()


def csv_text(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def escaped(text: str) -> str:
    """`text` as it reads inside a JSON string (the server's frames, the panel's JSON blocks)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


class Watch:
    """Sentinel calls, dialogs, planted elements, and the socket frames the page received."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.dialogs: list[str] = []
        self.injected: list[str] = []
        self.frames: list[str] = []

    async def install(self, page: Page) -> None:
        await page.expose_function("__xss", lambda number: self.calls.append(number))
        await page.expose_function("__injected", lambda html: self.injected.append(html))
        await page.add_init_script(WATCH)
        page.on("dialog", self._dialog)
        page.on("websocket", self._socket)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        asyncio.ensure_future(dialog.dismiss())

    def _socket(self, ws: WebSocket) -> None:
        ws.on("framereceived", lambda payload: self.frames.append(payload if isinstance(payload, str) else ""))


async def upload(client: httpx.AsyncClient, name: str, body: bytes, content_type: str = "text/csv") -> dict[str, Any]:
    response = await client.post("/api/uploads", params={"filename": name}, content=body,
                                 headers={"Content-Type": content_type})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def submit_everywhere(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """One or more tasks per place a payload can reach; returns them as submitted."""
    lines = "\n".join(PAYLOADS)
    paragraphs = "\n\n".join(f"{payload} words here" for payload in PAYLOADS)
    single_line = [p for p in PAYLOADS if "\n" not in p and "\r" not in p]
    columns = [*PAYLOADS, "amount"]
    # A categorical column of payloads; "amount" reads as numbers for 100 rows, then a payload makes
    # it categorical, which the task logs quoting the value.
    rows = [columns, *([PAYLOADS[i % len(PAYLOADS)]] * len(PAYLOADS) + [str(i)] for i in range(100)),
            [*PAYLOADS, PAYLOADS[0]]]
    duplicate = " ".join(PAYLOADS[:8])
    twice = await upload(client, "twice.csv", csv_text([[duplicate, "x", duplicate], ["1", "2", "3"]]))
    columns_csv = await upload(client, "payload columns.csv", csv_text(rows))
    named = await upload(client, PAYLOADS[1], csv_text([["a"], ["1"]]))
    assert "<" not in named["filename"] and "/" not in named["filename"], named  # the server sanitises names
    tasks = [
        await submit(client, "text_processing", text=lines),
        await submit(client, "text_processing", text=LONG),
        await submit(client, "ai_summarization", document=paragraphs, max_sentences=50),
        await submit(client, "ai_summarization", document=LONG),
        await submit(client, "batch_processing", data=[*PAYLOADS, LONG_ITEM, None], delay_per_item=0),
        await submit(client, "batch_processing", data=[PAYLOADS[0], None], delay_per_item=0, fail_fast=True),
        await submit(client, "data_processing", processing_time=1.5, chunk_size=100, upload=[columns_csv["id"]]),
        await submit(client, "data_processing", processing_time=0, upload=[twice["id"]]),
        await submit(client, "data_processing", processing_time=0, upload=[named["id"]]),
    ]
    for subject in pack(single_line, 200):
        tasks.append(await submit(client, "email_simulation", subject=subject, recipient_count=2, delay_per_email=0))
    return tasks


async def check_detail(page: Page, client: httpx.AsyncClient, task_id: str) -> str:
    """Opens the task's panel and checks that what it shows as text is exactly the task's data;
    returns all the panel's text."""
    await page.click(f'tr[data-task-id="{task_id}"] .task-link')
    task = (await client.get(f"/api/tasks/{task_id}")).json()
    panel = f'#detail[data-task-id="{task_id}"][data-status="{task["status"]}"]'
    await page.wait_for_selector(panel)
    # The raw JSON beside the readable views opened (each task's starts folded), and the parameters
    # settled (titles and upload names fetched): the text read is then the whole of it.
    folds = page.locator("#detail .raw-json:not([hidden]):not([open]) > summary")
    while await folds.count():
        await folds.first.click()
    await page.wait_for_selector('#detail [data-section="parameters"]:not([aria-busy])')
    blocks = page.locator("#detail .json")
    # Error (when shown), result, parameters: each block's text parses back to the very data.
    assert json.loads(await blocks.nth(2).text_content() or "") == task["parameters"]
    result_text = await blocks.nth(1).text_content()
    assert (json.loads(result_text or "") if result_text != "—" else None) == task["result_data"]
    assert await blocks.nth(2).is_visible()
    if task["error_message"]:
        assert await page.locator("#detail .error-text").text_content() == task["error_message"]
        assert await page.locator("#detail .error-text").is_visible()
    messages = await page.locator("#detail .timeline .message").all_text_contents()
    assert messages == [entry["message"] for entry in task["timeline"] if entry.get("message")]
    stored = [line["line"] for line in (await client.get(f"/api/tasks/{task_id}/logs")).json()["lines"]]
    await page.wait_for_function(
        "n => document.querySelectorAll('#detail .log-line').length === n", arg=len(stored))
    assert await page.locator("#detail .log-line .log-text").all_text_contents() == stored
    text = await page.locator("#detail").inner_text()
    await page.keyboard.press("Escape")
    await page.wait_for_selector("#detail", state="hidden")
    return text


async def test_xss_corpus_is_shown_as_text_everywhere_and_never_runs(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, browser: Browser,
) -> None:
    console = Console()
    console.expect(http_status(422, "/api/tasks/submit"))
    watch = Watch()
    # CSP bypassed: an injected handler would run, so only the dashboard's text-only rendering stops it.
    context = await browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    page = await context.new_page()
    page.set_default_timeout(20_000)
    console.watch(page)
    await watch.install(page)
    try:
        await page.goto(f"http://{web}/")
        await page.wait_for_selector(LIVE)
        await page.wait_for_selector("#task-type option", state="attached")

        # The form: payload file names in the upload list, and a 422 quoting a payload next to its field.
        await page.select_option("#task-type", "image_processing")
        picture = png(40, 30)
        await page.set_input_files("#param-uploads", [
            {"name": f"{name}.png", "mimeType": "image/png", "buffer": picture} for name in FILE_NAMES])
        done = page.locator('[data-field="uploads"] .upload[data-state="done"]')
        await done.nth(len(FILE_NAMES) - 1).wait_for()
        assert await page.locator('[data-field="uploads"] .upload-name').all_text_contents() == [
            f"{name}.png" for name in FILE_NAMES]
        await page.fill('[aria-label="target_size width"]', "16")
        await page.fill('[aria-label="target_size height"]', "16")
        await page.click("#submit-form button[type=submit]")
        image_task = await (await page.wait_for_selector("#submit-result [data-open]")).text_content()
        assert image_task

        await page.select_option("#task-type", "batch_processing")
        await page.fill("#param-data", json.dumps([{"k": PAYLOADS[1]}]))
        await page.click("#submit-form button[type=submit]")
        error = page.locator('[data-error-for="data"]')
        await error.filter(has_text="must be a string").wait_for()
        assert json.dumps({"k": PAYLOADS[1]}) in await error.inner_text()

        # Everything else over the API while the page is open: it all arrives over the socket.
        tasks = await submit_everywhere(client)
        ids = [image_task, *(task["id"] for task in tasks)]
        logged = tasks[6]["id"]  # the CSV task logs payloads as it runs: follow it live
        await page.click(f'tr[data-task-id="{logged}"] .task-link')
        await page.wait_for_selector(f'#detail[data-task-id="{logged}"]')
        for task_id in ids:
            await wait_for_status(client, task_id, set(FINAL), timeout=40)
        final = ", ".join(f"[data-status={status}]" for status in FINAL)
        for task_id in ids:
            await page.wait_for_selector(f'tr[data-task-id="{task_id}"]:is({final})')
        # The open panel got its log over the socket as the task ran.
        log = [line["line"] for line in (await client.get(f"/api/tasks/{logged}/logs")).json()["lines"]]
        await page.wait_for_function("n => document.querySelectorAll('#detail .log-line').length === n", arg=len(log))
        assert await page.locator("#detail .log-line .log-text").all_text_contents() == log
        assert any("categorical" in line and repr(PAYLOADS[0]) in line for line in log), log
        assert any(PAYLOADS[1] in line for line in log), log  # the column names
        await page.keyboard.press("Escape")
        live = "".join(watch.frames)
        assert all(escaped(p) in live for p in CORPUS), "the payloads came over the socket"

        failed = (await client.get(f"/api/tasks/{tasks[7]['id']}")).json()
        assert failed["status"] == "FAILED" and repr(" ".join(PAYLOADS[:8])) in failed["error_message"]

        shown = [await check_detail(page, client, task_id) for task_id in ids]
        everything = "\n".join(shown)
        for payload in CORPUS:
            assert payload in everything or escaped(payload) in everything, payload[:100]

        await page.reload()  # the list, then each panel, from the REST API
        await page.wait_for_selector(LIVE)
        for task_id in ids:
            await page.wait_for_selector(f'tr[data-task-id="{task_id}"]')
        shown_again = [await check_detail(page, client, task_id) for task_id in ids]
        assert shown_again == shown

        planted = await page.evaluate("""() => document.querySelectorAll(
            'script:not(head > script[src="js/app.js"]), iframe, object, embed, svg, math, body style, body meta, '
            + '[href^="javascript:" i], [src^="javascript:" i]').length""")
        assert planted == 0
    finally:
        await context.close()
    assert watch.calls == [], f"payloads ran: {watch.calls}"
    assert watch.dialogs == [], f"dialogs opened: {watch.dialogs}"
    assert watch.injected == [], f"planted in the page: {watch.injected[:5]}"
    assert console.unexpected() == [], "console errors"
