"""The dashboard under load, in Debian's chromium: 10,000 tasks stored, 100 changes/s.

One web process (no worker) on a fresh SQLite file (in /dev/shm: see `database`) holding 10,000
finished tasks. A driver thread makes the changes the way workers do (`lifecycle/changes.py`: INCR
seq, guarded write, publish), paced at a steady rate: tasks created, started, reporting progress
every 0.2 s (the workers' PROGRESS_INTERVAL) and finishing, 20 of them in flight, so every change
lands on page 1. The page:

- main-thread busy: CDP `Performance.getMetrics` before and after the window, `TaskDuration` over
  the wall-clock interval, with its script / layout / style share, and `ThreadTime` (the CPU time
  the main thread got: on a loaded machine a task's wall time also counts the time it waited for a
  CPU); long tasks (> 50 ms) from a `PerformanceObserver`;
- the rate that reached the page: task frames counted on its WebSocket;
- change published → row updated (a new row inserted, or its `data-status` changed), p50 / p95, and
  of that the page's own share (frame received → row updated);
- first load: navigation start → the first 50 rows rendered, over several cold loads."""

import asyncio
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from arq import create_pool
from arq.connections import RedisSettings
from playwright.async_api import Browser, CDPSession, Page, async_playwright

from app.core.clock import utcnow
from app.core.status import PROGRESS, START, SUCCEED, Status
from app.core.wire import entry
from app.lifecycle.changes import Changes
from app.lifecycle.submit import Submissions
from app.store.stores import open_stores
from app.store.uploads import UploadStore
from app.tasks import load_task_types
from bench.report import Options, Row, percentile
from bench.stack import running_stack

STORED = 10_000
RATE = 100.0  # changes/s
SECONDS = 20.0  # the measured window, after WARMUP
WARMUP = 3.0  # seconds of changes before the window opens: the page is in its steady state
LOADS = 5
SLOTS = 20  # tasks in flight; each advances every SLOTS / RATE s (0.2 s: the workers' progress interval)
PROGRESS_STEPS = 8  # progress reports per task, between RUNNING and SUCCESS
BUSY_GOAL = 50.0  # % of the main thread
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1400, "height": 900}

# Records when the first page of rows is on screen, measured from navigation start.
FIRST_ROWS = """
new MutationObserver((_, observer) => {
  if (document.querySelectorAll('#task-rows tr').length >= 50) {
    window.firstRows = performance.now();
    observer.disconnect();
  }
}).observe(document, {childList: true, subtree: true});
"""

# Installed before the page's own scripts (through CDP, which the page's CSP does not govern): task
# frames counted and timestamped as they arrive (this listener runs before the app's onmessage),
# and long tasks recorded.
INSTRUMENT = """
window.bench = {frames: 0, arrivals: {}, longTasks: []};
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', (event) => {
      const at = performance.timeOrigin + performance.now();
      const message = JSON.parse(event.data);
      if (message.type !== 'task') return;
      window.bench.frames += 1;
      if (message.change !== 'progress') window.bench.arrivals[`${message.task.id}/${message.task.status}`] ??= at;
    });
  }
};
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.bench.longTasks.push({start: entry.startTime, ms: entry.duration});
}).observe({type: 'longtask', buffered: true});
"""

# Records when each row first shows a status: inserted with it, or its `data-status` changed.
ROW_CHANGES = """() => {
  window.bench.shown = {};
  const seen = (row, at) => {
    if (row.dataset && row.dataset.taskId) window.bench.shown[`${row.dataset.taskId}/${row.dataset.status}`] ??= at;
  };
  new MutationObserver((records) => {
    const at = performance.timeOrigin + performance.now();
    for (const r of records) {
      if (r.type === 'attributes') seen(r.target, at);
      else for (const node of r.addedNodes) seen(node, at);
    }
  }).observe(document.getElementById('task-rows'),
             {childList: true, attributes: true, subtree: true, attributeFilter: ['data-status']});
}"""


@dataclass
class Published:
    """What the driver published: every change counted, status changes and creations timestamped."""

    count: int = 0
    at: dict[str, float] = field(default_factory=dict)  # "<id>/<status>" → time.time() once published
    window: tuple[float, float] = (0.0, 0.0)  # monotonic start, end of the paced run


async def fill(database_url: str, count: int) -> None:
    """`count` finished tasks, written straight to the store."""
    start = datetime.now(UTC) - timedelta(days=1)
    async with open_stores(database_url) as stores:
        store = stores.tasks
        for i in range(count):
            status, result, error = (("SUCCESS", {"word_count": 56}, None) if i % 10 < 7
                                     else ("FAILED", None, "ValueError: bad item") if i % 10 < 9
                                     else ("CANCELLED", None, None))
            at = start + timedelta(seconds=i)
            await store.insert({
                "id": uuid.uuid4().hex, "task_type": "text_processing", "status": status,
                "parameters": {"text": "hello"}, "progress": 100.0, "result_data": result, "error_message": error,
                "created_at": at, "started_at": at, "completed_at": at + timedelta(milliseconds=40),
                "updated_at": at, "attempts": 1, "dispatch": 1, "cancel_requested": False, "seq": i + 1,
                "timeline": [{"status": "PENDING", "at": at.isoformat()}, {"status": status, "at": at.isoformat()}],
            })


async def _step(changes: Changes, task_id: str, n: int) -> str | None:
    """Change number `n` (1…) of a task's life after its submit; the status it showed, or None for a
    progress report."""
    if n == 1:
        values = {"started_at": utcnow(), "worker": "bench", "stage": "started", "attempts": 1}
        await changes.update(task_id, START, values, entry(Status.RUNNING, worker="bench"))
        return Status.RUNNING.value
    if n <= PROGRESS_STEPS + 1:
        done = n - 1
        await changes.update(task_id, PROGRESS,
                             {"progress": 100.0 * done / (PROGRESS_STEPS + 1), "stage": f"item {done} of {PROGRESS_STEPS}"})
        return None
    values = {"completed_at": utcnow(), "stage": "success", "progress": 100.0,
              "result_data": {"processed": PROGRESS_STEPS}}
    await changes.update(task_id, SUCCEED, values, entry(Status.SUCCESS))
    return Status.SUCCESS.value


async def _slot(changes: Changes, submissions: Submissions, slot: int, start: float, count: int,
                published: Published) -> None:
    """Changes number slot, slot + SLOTS, … of the run, each at its due time: one task after another."""
    task_id = ""
    for n, k in enumerate(range(slot, count, SLOTS)):
        await asyncio.sleep(max(0.0, start + k / RATE - time.monotonic()))
        life = n % (PROGRESS_STEPS + 3)
        if life == 0:
            task, _ = await submissions.submit("batch_processing", {"data": list(range(PROGRESS_STEPS)),
                                                                    "delay_per_item": 0.2})
            task_id, status = task["id"], task["status"]
        else:
            status = await _step(changes, task_id, life)
        published.count += 1
        if status is not None:
            published.at[f"{task_id}/{status}"] = time.time()


async def _drive(redis_url: str, database_url: str, seconds: float, published: Published) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        async with open_stores(database_url) as stores:
            changes = Changes(stores, pool)
            uploads = UploadStore(Path(tempfile.gettempdir()), 0, 0, 0)  # these tasks name no uploads
            submissions = Submissions(stores.tasks, pool, load_task_types(), uploads, 10**6)
            start = time.monotonic() + 0.1
            count = round(seconds * RATE)
            await asyncio.gather(*(_slot(changes, submissions, slot, start, count, published)
                                   for slot in range(SLOTS)))
            published.window = (start, time.monotonic())
    finally:
        await pool.aclose()


def drive(redis_url: str, database_url: str, seconds: float) -> tuple[threading.Thread, Published]:
    """Starts the paced changes in a thread of their own (their own event loop, off the browser's)."""
    published = Published()
    thread = threading.Thread(target=asyncio.run, args=(_drive(redis_url, database_url, seconds, published),))
    thread.start()
    return thread, published


async def load_times(browser: Browser, url: str, loads: int) -> list[float]:
    times = []
    for _ in range(loads):
        context = await browser.new_context(viewport=VIEWPORT)  # a cold cache each time
        page = await context.new_page()
        await page.add_init_script(FIRST_ROWS)
        await page.goto(url)
        await page.wait_for_function("() => window.firstRows !== undefined")
        times.append(await page.evaluate("() => window.firstRows"))
        await context.close()
    return times


async def metrics(cdp: CDPSession) -> dict[str, float]:
    answer = await cdp.send("Performance.getMetrics")
    return {m["name"]: m["value"] for m in answer["metrics"]}


@dataclass
class Window:
    wall: float  # s
    share: dict[str, float]  # CDP metric (TaskDuration, ThreadTime, …) → % of the wall-clock window
    frames: int  # task frames received
    long_tasks: list[float]  # ms
    load: float  # the machine's load average over the last minute, at the end


async def measure_window(page: Page, cdp: CDPSession, seconds: float) -> Window:
    before, frames_before, page_start = (await metrics(cdp), await page.evaluate("() => window.bench.frames"),
                                         await page.evaluate("() => performance.now()"))
    await asyncio.sleep(seconds)
    after, frames_after = await metrics(cdp), await page.evaluate("() => window.bench.frames")
    long_tasks = await page.evaluate("() => window.bench.longTasks")
    wall = after["Timestamp"] - before["Timestamp"]
    names = ("TaskDuration", "ThreadTime", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
    return Window(wall, {n: 100 * (after[n] - before[n]) / wall for n in names}, frames_after - frames_before,
                  [t["ms"] for t in long_tasks if t["start"] >= page_start], os.getloadavg()[0])


async def live(browser: Browser, url: str, redis_url: str, database_url: str,
               seconds: float) -> tuple[Window, Published, dict, dict]:
    page = await browser.new_page(viewport=VIEWPORT)
    await page.add_init_script(INSTRUMENT)
    await page.goto(url)
    await page.wait_for_selector('#connection[data-connection="live"]')
    await page.wait_for_function("() => document.querySelectorAll('#task-rows tr').length >= 50")
    await page.evaluate(ROW_CHANGES)
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Performance.enable", {"timeDomain": "timeTicks"})
    thread, published = drive(redis_url, database_url, WARMUP + seconds + 1.0)
    try:
        await asyncio.sleep(WARMUP)
        window = await measure_window(page, cdp, seconds)
    finally:
        await asyncio.to_thread(thread.join)
    await asyncio.sleep(1.0)  # the last changes reach the page
    shown, arrivals = await page.evaluate("() => window.bench.shown"), await page.evaluate("() => window.bench.arrivals")
    await page.close()
    return window, published, shown, arrivals


async def measure(url: str, redis_url: str, database_url: str, seconds: float,
                  loads: int) -> tuple[list[float], Window, Published, dict, dict]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            first = await load_times(browser, url, loads)
            return first, *(await live(browser, url, redis_url, database_url, seconds))
        finally:
            await browser.close()


@contextmanager
def database() -> Iterator[str]:
    """A SQLite file in memory-backed storage when there is some: every change is a commit, and the
    page under test, not the disk's fsync, is what must set the pace of 100 changes/s."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        yield f"sqlite:///{tmp}/tasks.db"


def run(options: Options) -> list[Row]:
    stored, seconds, loads = options.size(STORED), max(3.0, SECONDS * options.scale), max(2, options.size(LOADS))
    with database() as database_url:
        asyncio.run(fill(database_url, stored))
        with running_stack(env={"DATABASE_URL": database_url}, workers=0) as stack:
            first, window, published, shown, arrivals = asyncio.run(
                measure(stack.url + "/", stack.redis_url, database_url, seconds, loads))
    label = f"dashboard, {stored:,} tasks stored, {RATE:.0f} changes/s"
    return [*live_rows(label, window, published, shown, arrivals),
            Row(f"dashboard, {stored:,} tasks stored: navigation start → first 50 rows rendered, {loads} cold loads",
                f"median {statistics.median(first):.0f} ms, max {max(first):.0f} ms")]


def live_rows(label: str, window: Window, published: Published, shown: dict[str, float],
              arrivals: dict[str, float]) -> list[Row]:
    share = window.share
    start, end = published.window
    rate = published.count / (end - start)
    keys = [key for key in published.at if key in shown]
    latencies = [shown[key] - published.at[key] * 1000 for key in keys]
    in_page = [shown[key] - arrivals[key] for key in keys if key in arrivals]
    return [
        Row(f"{label}: main-thread busy (task time / wall clock, {window.wall:.0f} s)",
            f"{share['TaskDuration']:.1f} %", f"< {BUSY_GOAL:.0f} %", share["TaskDuration"] < BUSY_GOAL),
        Row(f"{label}: of which script / layout / style; main-thread CPU time",
            f"{share['ScriptDuration']:.1f} / {share['LayoutDuration']:.1f} / {share['RecalcStyleDuration']:.1f} %; "
            f"CPU {share['ThreadTime']:.1f} % (machine load average {window.load:.1f} on {os.cpu_count()} CPUs)"),
        Row(f"{label}: long tasks (> 50 ms)",
            f"{len(window.long_tasks)} (longest {max(window.long_tasks, default=0.0):.0f} ms)"),
        Row(f"{label}: task frames received by the page", f"{window.frames / window.wall:,.1f} frames/s",
            baseline=f"{rate:,.1f} changes/s published", ratio=window.frames / window.wall / rate),
        Row(f"{label}: change published → row updated ({len(keys):,} of {len(published.at):,} "
            "creations and status changes seen)",
            f"p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms"),
        Row(f"{label}: of which frame received → row updated (the page's share)",
            f"p50 {percentile(in_page, 50):.1f} ms, p95 {percentile(in_page, 95):.1f} ms"),
    ]
