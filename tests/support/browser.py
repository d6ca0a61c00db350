"""Helpers for the browser tests: Debian's chromium driven by playwright, console errors collected,
and the app served on a port chosen by the test (so it can be restarted on the same one)."""

import asyncio
import re
import shutil
from pathlib import Path

import uvicorn
from playwright.async_api import ConsoleMessage, Error, Page

CHROMIUM = shutil.which("chromium") or next((p for p in ("/usr/bin/chromium",) if Path(p).exists()), None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SKIP_REASON = "chromium is not installed (Debian: apt-get install chromium); the browser tests drive it"

# What Chromium itself logs while the server is deliberately down or answers an expected 4xx.
SERVER_DOWN = (
    re.compile(r"WebSocket connection to 'ws://127\.0\.0\.1:\d+/ws(\?since=\d+)?' failed: .*ERR_CONNECTION_REFUSED"),
    re.compile(r"Failed to load resource: net::ERR_CONNECTION_REFUSED"),
)


LIVE = '#connection[data-connection="live"]'  # the dashboard's live indicator once its socket is up
# Predicates are functions, never expression strings: playwright evaluates those with eval(), which
# the page's CSP (script-src 'self') refuses.
ROWS_SHOWN = "n => document.querySelectorAll('tr[data-task-id]').length === n"


async def open_dashboard(page: Page, address: str, query: str = "") -> None:
    """The dashboard, live, with its form built from /api/task-types."""
    await page.goto(f"http://{address}/{query}")
    await page.wait_for_selector(LIVE)
    await page.wait_for_selector("#task-type option", state="attached")


def row(task_id: str, status: str | None = None) -> str:
    """The list's row of a task (in that status)."""
    return f'tr[data-task-id="{task_id}"]' + (f'[data-status="{status}"]' if status else "")


def http_status(status: int, path: str) -> re.Pattern[str]:
    """Chromium's console line for a fetch answered with `status` (match on the text and the url)."""
    return re.compile(rf"Failed to load resource: the server responded with a status of {status} .*@ .*{re.escape(path)}")


class Console:
    """Console errors and uncaught page errors; some may be declared expected, by exact pattern."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.expected: list[re.Pattern[str]] = []

    def watch(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} @ {message.location.get('url', '')}")

    def _on_page_error(self, error: Error) -> None:
        self.errors.append(f"pageerror: {error}")

    def expect(self, *patterns: re.Pattern[str]) -> None:
        self.expected.extend(patterns)

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected)]


async def stop(server: uvicorn.Server, task: "asyncio.Task[None]") -> None:
    server.should_exit = True
    await task
