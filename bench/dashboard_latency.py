"""The dashboard's live latency and load time, with real processes and a real browser.

Starts its own redis-server, one web process (uvicorn) and one worker (`python worker.py`) on a fresh
SQLite file holding 10,000 finished tasks, then measures in Debian's chromium:

1. page load: navigation start → the first page of rows rendered, over several cold loads;
2. live latency: a worker's status change published on Redis (`tq:events`, timestamped here on
   arrival) → the row's `data-status` changed in the page (a MutationObserver timestamps it with
   `performance.timeOrigin + performance.now()`), p50 / p95 over N changes (RUNNING and SUCCESS of
   N/2 short tasks submitted one after another); and of that, the page's own share: the status
   frame received on the WebSocket → the row updated.

Run: `.venv/bin/python bench/dashboard_latency.py [N]` (default 100).
"""

import asyncio
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import redis
from playwright.async_api import Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import keys
from app.store import TaskStore
from bench.stack import running_stack

STORED = 10_000
LOADS = 10
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Records when the first page of rows is on screen, measured from navigation start.
FIRST_ROWS = """
new MutationObserver((_, observer) => {
  if (document.querySelectorAll('#task-rows tr').length >= 50) {
    window.firstRows = performance.now();
    observer.disconnect();
  }
}).observe(document, {childList: true, subtree: true});
"""

# Records when each status frame arrives (this listener runs before the app's onmessage), to tell
# the page's own share of the latency from the server's and the network's.
FRAME_ARRIVALS = """
window.frameArrivals = {};
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', (event) => {
      const at = performance.timeOrigin + performance.now();
      const message = JSON.parse(event.data);
      if (message.change === 'status') window.frameArrivals[`${message.task.id}/${message.task.status}`] ??= at;
    });
  }
};
"""

# Records every row status change with a wall-clock time comparable to Python's time.time().
STATUS_CHANGES = """
window.statusChanges = [];
new MutationObserver((records) => {
  const at = performance.timeOrigin + performance.now();
  for (const r of records) {
    window.statusChanges.push({id: r.target.dataset.taskId, status: r.target.dataset.status, at});
  }
}).observe(document.getElementById('task-rows'), {attributes: true, subtree: true, attributeFilter: ['data-status']});
"""


async def fill(database_url: str, count: int) -> None:
    """`count` finished tasks, written straight to the store (no worker should pick them up)."""
    start = datetime.now(UTC) - timedelta(days=1)
    async with TaskStore.open(database_url) as store:
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


def subscribe(redis_url: str, arrivals: dict[tuple[str, str], float], stop: threading.Event) -> None:
    """Timestamps every published status change as it arrives from Redis."""
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(keys.EVENTS)
    while not stop.is_set():
        message = pubsub.get_message(timeout=0.1)
        if message and message["type"] == "message":
            now = time.time()
            _seq, change, task_id, status, _frame = message["data"].decode().split("|", 4)
            if change == "status":
                arrivals.setdefault((task_id, status), now)
    pubsub.close()
    client.close()


async def load_times(browser, url: str) -> list[float]:
    times = []
    for _ in range(LOADS):
        context = await browser.new_context(viewport={"width": 1400, "height": 900})  # a cold cache each time
        page = await context.new_page()
        await page.add_init_script(FIRST_ROWS)
        await page.goto(url)
        await page.wait_for_function("window.firstRows !== undefined")
        times.append(await page.evaluate("window.firstRows"))
        await context.close()
    return times


async def live_latencies(
    page: Page, http: httpx.AsyncClient, redis_url: str, changes: int,
) -> tuple[list[float], list[float]]:
    """Published → row updated, and frame received → row updated (the page's share), per change."""
    arrivals: dict[tuple[str, str], float] = {}
    stop = threading.Event()
    listener = threading.Thread(target=subscribe, args=(redis_url, arrivals, stop))
    listener.start()
    try:
        await asyncio.sleep(0.5)  # the subscription is in place
        await page.evaluate(STATUS_CHANGES)
        ids = []
        for _ in range(changes // 2):
            answer = await http.post("/api/tasks/submit", json={"task_type": "text_processing", "parameters": {}})
            ids.append(answer.json()["id"])
            await asyncio.sleep(0.1)
        for task_id in ids:
            await page.wait_for_selector(f'tr[data-task-id="{task_id}"][data-status="SUCCESS"]', timeout=30_000)
    finally:
        stop.set()
        listener.join()
    shown = {(c["id"], c["status"]): c["at"] for c in await page.evaluate("window.statusChanges")}
    frames = await page.evaluate("window.frameArrivals")
    keys = [key for key in arrivals if key[0] in ids]
    missing = [key for key in keys if key not in shown]
    assert not missing, f"status changes never shown: {missing[:5]}"
    return ([shown[key] - arrivals[key] * 1000 for key in keys],
            [shown[key] - frames[f"{key[0]}/{key[1]}"] for key in keys])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share + 0.5) - 1)]


async def measure(port: int, redis_url: str, changes: int) -> None:
    url = f"http://127.0.0.1:{port}/"
    async with async_playwright() as playwright, httpx.AsyncClient(base_url=url, timeout=10) as http:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        loads = await load_times(browser, url)
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        await page.add_init_script(FRAME_ARRIVALS)
        await page.goto(url)
        await page.wait_for_selector('#connection[data-connection="live"]')
        await page.wait_for_selector("#task-rows tr")
        latencies, in_page = await live_latencies(page, http, redis_url, changes)
        await browser.close()
    print(f"page load with {STORED:,} tasks stored, navigation start → first 50 rows rendered, {LOADS} cold loads: "
          f"median {statistics.median(loads):.0f} ms, max {max(loads):.0f} ms")
    print(f"worker status change published → browser row updated, {len(latencies)} changes: "
          f"p50 {percentile(latencies, 0.5):.1f} ms, p95 {percentile(latencies, 0.95):.1f} ms, "
          f"max {max(latencies):.1f} ms; of which frame received → row updated in the page: "
          f"p50 {percentile(in_page, 0.5):.1f} ms, p95 {percentile(in_page, 0.95):.1f} ms")


def main(changes: int) -> None:
    with running_stack(prepare=lambda database_url: asyncio.run(fill(database_url, STORED))) as stack:
        asyncio.run(measure(stack.port, stack.redis_url, changes))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
