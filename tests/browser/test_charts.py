"""The charts panel in chromium, drawn from the real series (`GET /api/metrics/series`) of real tasks
run by a real worker: what each canvas says it shows, what it painted, and live updates."""

import re
from datetime import datetime
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from app.worker.resilient import ResilientWorker
from tests.support.browser import CHROMIUM, SKIP_REASON
from tests.support.waits import submit, wait_for_status, wait_until

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)

FAILING = {"data": ["a", None], "fail_fast": True, "delay_per_item": 0}  # FAILED at once, no retry
THROUGHPUT = '#charts [data-chart="throughput"] canvas'

# Pixels of exactly the colour of a CSS variable (bars are drawn in them), counted in the canvas. A
# function, not an expression: playwright would eval() that, which the page's CSP refuses.
PAINTED = """([selector, names]) => {
  const canvas = document.querySelector(selector);
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const css = getComputedStyle(canvas);
  const counts = { any: 0 };
  const colours = names.map((name) => {
    const hex = css.getPropertyValue(name).trim();
    counts[name] = 0;
    return [name, [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16))];
  });
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] === 0) continue;
    counts.any += 1;
    for (const [name, [r, g, b]] of colours) {
      if (data[i] === r && data[i + 1] === g && data[i + 2] === b && data[i + 3] === 255) counts[name] += 1;
    }
  }
  return counts;
}"""


async def run_tasks(client: httpx.AsyncClient, succeed: int, fail: int) -> None:
    tasks = [await submit(client, "text_processing", text=f"chart words {n}") for n in range(succeed)]
    tasks += [await submit(client, "batch_processing", **FAILING) for _ in range(fail)]
    for task in tasks:
        await wait_for_status(client, task["id"], {"SUCCESS", "FAILED"})


async def label(page: Page, chart: str) -> str:
    return await page.locator(f'#charts [data-chart="{chart}"] canvas').get_attribute("aria-label") or ""


async def painted(page: Page, chart: str, *names: str) -> dict[str, Any]:
    return await page.evaluate(PAINTED, [f'#charts [data-chart="{chart}"] canvas', list(names)])  # type: ignore[no-any-return]


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_charts_draw_the_real_series_and_follow_new_tasks_live(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page, scheme: str,
) -> None:
    await page.emulate_media(color_scheme=scheme)
    await run_tasks(client, succeed=4, fail=2)
    series = (await client.get("/api/metrics/series", params={"window": "hour"})).json()
    assert (sum(series["succeeded"]), sum(series["failed"])) == (4, 2)

    await page.goto(f"http://{web}/")
    await page.wait_for_selector('#connection[data-connection="live"]')
    await page.wait_for_selector(f'{THROUGHPUT}[aria-label*="4 tasks succeeded, 2 tasks failed"]')
    assert (await label(page, "throughput")).startswith("Tasks per minute over the last hour: 4 tasks succeeded, 2 tasks failed.")
    # The bars: the succeeded ones twice the failed ones' area (same width, heights 4 : 2).
    bars = await painted(page, "throughput", "--success", "--failed")
    assert bars["--success"] > 100 and bars["--failed"] > 50, bars
    assert 1.6 < bars["--success"] / bars["--failed"] < 2.4, bars
    assert "text_processing p50" in await label(page, "runtime")
    assert (await painted(page, "runtime", "--accent", "--retrying"))["--accent"] > 50
    assert (await label(page, "wait")).startswith("Wait time before start: latest p50")
    assert await page.locator("#charts-now").text_content() == "0 waiting now · 1 worker live"

    # Live: more tasks finish, the page fetches again by itself (no reload) and redraws.
    await page.evaluate("window.notReloaded = true")
    await run_tasks(client, succeed=3, fail=1)
    await page.wait_for_selector(f'{THROUGHPUT}[aria-label*="7 tasks succeeded, 3 tasks failed"]', timeout=10_000)
    bars = await painted(page, "throughput", "--success", "--failed")
    assert 1.9 < bars["--success"] / bars["--failed"] < 2.8, bars  # 7 : 3
    assert await page.evaluate("window.notReloaded") is True

    # The last day: the same tasks, 1440 minutes in bars of several minutes each (a bar per minute
    # would be under a pixel wide).
    await page.click('#charts [data-window="day"]')
    await page.wait_for_selector(f'{THROUGHPUT}[aria-label*="over the last day: 7 tasks succeeded, 3 tasks failed."]')
    assert (await label(page, "throughput")).startswith("Tasks per 5 minutes over the last day")
    assert await page.locator('#charts [data-window="day"]').get_attribute("aria-pressed") == "true"
    assert (await painted(page, "throughput", "--success"))["--success"] > 0


async def test_the_tooltip_names_the_minute_under_the_pointer(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    await run_tasks(client, succeed=2, fail=1)
    await page.goto(f"http://{web}/")
    await page.wait_for_selector(f'{THROUGHPUT}[aria-label*="2 tasks succeeded, 1 task failed"]')
    canvas = page.locator(THROUGHPUT)
    box = await canvas.bounding_box()
    assert box is not None
    # The current minute is the last bucket, at the right end of the plot.
    await canvas.hover(position={"x": box["width"] - 14, "y": box["height"] / 2})
    tip = page.locator('#charts [data-chart="throughput"] .chart-tip')
    await tip.wait_for()
    shown = re.fullmatch(r"(\d\d:\d\d) · (\d+) tasks? succeeded · (\d+) tasks? failed", await tip.text_content() or "")
    assert shown, await tip.text_content()
    series = (await client.get("/api/metrics/series", params={"window": "hour"})).json()
    # The minute it names (in the page's time zone), read again: a new minute may have begun since.
    labels = await page.evaluate("""buckets => buckets.map((t) => {
      const at = new Date(t * 1000);
      return `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
    })""", series["buckets"])
    minute = labels.index(shown[1])
    assert minute >= len(labels) - 2  # the last minute, or the one before if a new one began
    assert (int(shown[2]), int(shown[3])) == (series["succeeded"][minute], series["failed"][minute])
    await page.mouse.move(0, 0)
    await tip.wait_for(state="hidden")


async def test_the_charts_are_drawn_again_on_resize_and_in_the_new_colour_scheme(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    await run_tasks(client, succeed=2, fail=1)
    await page.goto(f"http://{web}/")
    await page.wait_for_selector(f'{THROUGHPUT}[aria-label*="2 tasks succeeded, 1 task failed"]')
    await page.click('.nav a[href="#charts"]')  # the top bar's link to the panel
    await expect(page.locator("#charts")).to_be_in_viewport()

    wide = await page.locator(THROUGHPUT).evaluate("canvas => canvas.width")
    await page.set_viewport_size({"width": 900, "height": 900})
    await page.wait_for_function("([selector, wide]) => document.querySelector(selector).width < wide",
                                 arg=[THROUGHPUT, wide])
    assert (await painted(page, "throughput", "--success"))["--success"] > 0  # drawn again, not only scaled

    # Dark mode has other colours: the bars are painted again in the dark ones.
    await page.emulate_media(color_scheme="dark")
    for _ in range(50):
        if (await painted(page, "throughput", "--success"))["--success"] > 0:
            break
        await page.wait_for_timeout(100)
    counts = await painted(page, "throughput", "--success", "--failed")
    assert counts["--success"] > 0 and counts["--failed"] > 0, counts


# Whether the tab is hidden, as the browser would say it, with the event it would send. A function,
# like PAINTED: the page's CSP refuses eval().
HIDE = """(hidden) => {
  Object.defineProperty(document, 'hidden', { value: hidden, configurable: true });
  document.dispatchEvent(new Event('visibilitychange'));
}"""
QUIET = 4000  # ms watched for fetches: twice the hour's throttle after task changes


async def test_a_hidden_tab_fetches_nothing_and_the_day_is_fetched_at_most_once_a_minute(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url) if "/api/metrics/series" in request.url else None)
    await run_tasks(client, succeed=1, fail=0)
    await page.goto(f"http://{web}/")
    await page.wait_for_selector(f'{THROUGHPUT}[aria-label*="1 task succeeded, 0 tasks failed"]')

    await page.evaluate(HIDE, True)
    before = len(fetched)
    await run_tasks(client, succeed=2, fail=0)
    await page.wait_for_timeout(QUIET)
    assert len(fetched) == before, fetched[before:]
    # Shown again: fetched at once, with what ended meanwhile.
    await page.evaluate(HIDE, False)
    await page.wait_for_selector(f'{THROUGHPUT}[aria-label*="3 tasks succeeded, 0 tasks failed"]', timeout=5_000)

    await page.click('#charts [data-window="day"]')
    await page.wait_for_selector(f'{THROUGHPUT}[aria-label*="over the last day: 3 tasks succeeded, 0 tasks failed."]')
    before = len(fetched)
    await run_tasks(client, succeed=1, fail=0)
    await page.wait_for_timeout(QUIET)
    assert len(fetched) == before, fetched[before:]
    assert fetched[-1].endswith("window=day")


QUEUE = '#charts [data-chart="queue"] canvas'
BURST = 1000  # one batch request

# The highest row (CSS px from the canvas's top) holding a pixel of the colour of a CSS variable,
# drawn opaque (the line, not its translucent fill); -1 if none.
TOPMOST = """([selector, name]) => {
  const canvas = document.querySelector(selector);
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const hex = getComputedStyle(canvas).getPropertyValue(name).trim();
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] === r && data[i + 1] === g && data[i + 2] === b && data[i + 3] === 255) {
      return Math.floor(i / 4 / canvas.width) / (canvas.height / canvas.clientHeight);
    }
  }
  return -1;
}"""


async def test_a_burst_drained_within_its_minute_is_drawn_at_its_height(
    web: str, client: httpx.AsyncClient, start_worker: Any, page: Page,
) -> None:
    """1,000 tasks queued at once with no worker, cancelled within the minute, then a worker samples
    the empty queue: the minute is drawn at 1,000 (its maximum), not at the last sample's 0."""
    answer = await client.post("/api/tasks/batch", json={"tasks": [{"task_type": "text_processing"}] * BURST})
    assert answer.status_code == 201, answer.text
    minute = int(datetime.fromisoformat(answer.json()["tasks"][0]["created_at"]).timestamp() // 60) * 60
    assert (await client.post("/api/tasks/bulk", json={"action": "cancel", "filter": {}})).json()["applied"] == BURST
    await start_worker()

    async def sampled() -> bool:
        series = (await client.get("/api/metrics/series")).json()
        return any(mean is not None for mean in series["queue_depth_mean"])
    await wait_until(sampled, "a worker's depth sample")

    await page.goto(f"http://{web}/")
    await page.wait_for_selector(f'{QUEUE}[aria-label*="0 tasks waiting now, at most {BURST} at once"]')
    # The axis ends at 1,000 (a round tick): the line's peak touches the plot's top (10 px down).
    assert 8 <= await page.evaluate(TOPMOST, [QUEUE, "--cancelled"]) <= 12
    series = (await client.get("/api/metrics/series")).json()
    index = series["buckets"].index(minute)
    canvas = page.locator(QUEUE)
    box = await canvas.bounding_box()
    assert box is not None
    left, width = 46, box["width"] - 46 - 12  # chartdraw.js MARGIN
    await canvas.hover(position={"x": left + (index + 0.5) * width / len(series["buckets"]), "y": box["height"] / 2})
    tip = page.locator('#charts [data-chart="queue"] .chart-tip')
    await expect(tip).to_have_text(re.compile(rf"\d\d:\d\d · at most {BURST} waiting( · mean \d+(\.\d)?)?"))


async def test_run_time_bars_stop_at_the_longest_run_and_counts_say_what_they_count(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    tasks = [await submit(client, "batch_processing", data=["x"] * 3, delay_per_item=0.1) for _ in range(3)]
    done = [await wait_for_status(client, t["id"], {"SUCCESS"}) for t in tasks]
    longest = max(datetime.fromisoformat(t["completed_at"]).timestamp()
                  - datetime.fromisoformat(t["started_at"]).timestamp() for t in done)
    await page.goto(f"http://{web}/")
    runtime = page.locator('#charts [data-chart="runtime"] canvas')
    await expect(runtime).to_have_attribute("aria-label", re.compile(r"batch_processing p50 \d+ ms, p95 \d+ ms, "
                                                                     r"longest \d+ ms \(3 runs\)"))
    shown = re.search(r"batch_processing p50 (\d+) ms, p95 (\d+) ms, longest (\d+) ms",
                      await runtime.get_attribute("aria-label") or "")
    assert shown and int(shown[1]) <= int(shown[2]) <= int(shown[3]) == round(longest * 1000)

    # One word per count, each explained: the chart counts tasks, the workers panel attempts.
    legend = page.locator('#charts [data-chart="throughput"] .legend .key')
    await expect(legend).to_have_text(["tasks succeeded", "tasks failed"])
    assert "Workers panel counts attempts" in (await legend.nth(1).get_attribute("title") or "")
    header = page.locator("#workers thead th", has_text="Attempts failed")
    assert "not the count of failed tasks" in (await header.get_attribute("title") or "")
    await page.wait_for_selector("#worker-rows tr .c-failed")
    assert "attempts failed" in (await page.locator("#worker-rows tr .c-failed").first.get_attribute("title") or "")
