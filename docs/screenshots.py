"""Regenerates the README's dashboard screenshots (docs/dashboard.png, docs/dashboard-dark.png).

Starts its own redis-server, web process and a worker running two tasks at a time, submits tasks
that end in every state (and leaves some running and some queued), and photographs the dashboard
in Debian's chromium at 1400×900, light and dark. Run: `.venv/bin/python docs/screenshots.py`.
"""

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.redisserver import RedisServer, free_port

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SLOW = {"data": list(range(200)), "delay_per_item": 0.5}


def submit(http: httpx.Client, task_type: str, **parameters: object) -> dict:
    answer = http.post("/api/tasks/submit", json={"task_type": task_type, "parameters": parameters})
    answer.raise_for_status()
    return answer.json()


def wait_status(http: httpx.Client, task_id: str, statuses: set[str]) -> None:
    deadline = time.monotonic() + 30
    while http.get(f"/api/tasks/{task_id}").json()["status"] not in statuses:
        if time.monotonic() > deadline:
            raise TimeoutError(task_id)
        time.sleep(0.05)


def populate(http: httpx.Client) -> None:
    """Finished tasks of each kind, one cancelled, two running (worker is full), two queued."""
    for task_type, parameters in [("text_processing", {}), ("ai_summarization", {}),
                                  ("data_processing", {"rows": 20000, "processing_time": 0}),
                                  ("image_processing", {"image_count": 2, "operation": "thumbnail"}),
                                  ("batch_processing", {"data": ["a", None], "fail_fast": True, "delay_per_item": 0}),
                                  ("email_simulation", {"recipient_count": 5, "delay_per_email": 0})]:
        wait_status(http, submit(http, task_type, **parameters)["id"], {"SUCCESS", "FAILED"})
    cancelled = submit(http, "batch_processing", **SLOW)
    wait_status(http, cancelled["id"], {"RUNNING"})
    time.sleep(1.2)
    http.delete(f"/api/tasks/{cancelled['id']}")
    running = [submit(http, "batch_processing", **SLOW), submit(http, "email_simulation", recipient_count=400,
                                                                   delay_per_email=0.05)]
    for task in running:
        wait_status(http, task["id"], {"RUNNING"})
    submit(http, "image_processing", image_count=20)
    submit(http, "data_processing", rows=100000)
    time.sleep(4)  # the running ones get somewhere


async def photograph(url: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for scheme, name in [("light", "dashboard.png"), ("dark", "dashboard-dark.png")]:
            context = await browser.new_context(viewport={"width": 1400, "height": 900}, color_scheme=scheme)
            page = await context.new_page()
            await page.goto(url)
            await page.wait_for_selector('#connection[data-connection="live"]')
            await page.wait_for_selector('#task-rows tr[data-status="RUNNING"]')
            await page.select_option("#task-type", "image_processing")
            await page.wait_for_timeout(1500)
            await page.screenshot(path=str(ROOT / "docs" / name))
            await context.close()
        await browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, RedisServer(free_port(), Path(tmp) / "redis", appendonly=False) as redis:
        port = free_port()
        env = {**os.environ, "REDIS_URL": redis.url, "DATABASE_URL": f"sqlite:///{tmp}/tasks.db",
               "DATA_DIR": f"{tmp}/data", "LOG_LEVEL": "WARNING", "WORKER_CONCURRENCY": "2"}
        bin_dir = Path(sys.executable).parent
        procs = [
            subprocess.Popen([str(bin_dir / "uvicorn"), "app.main:create_app", "--factory", "--port", str(port),
                              "--log-level", "warning"], cwd=ROOT, env=env),
            subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env),
        ]
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                deadline = time.monotonic() + 30
                while not _healthy(http):
                    if time.monotonic() > deadline:
                        raise TimeoutError("web process not healthy")
                    time.sleep(0.05)
                populate(http)
            asyncio.run(photograph(f"http://127.0.0.1:{port}/"))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)


def _healthy(http: httpx.Client) -> bool:
    try:
        return http.get("/api/health").status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
