"""`/docs`: the API reference (vendored Swagger UI) in chromium: our operations from our own /openapi.json,
under the same strict CSP as every page, with nothing fetched from elsewhere; and the vendored files are
the ones recorded."""

import hashlib
import re

import httpx
import pytest
from playwright.async_api import Page, Response

from app.main import STATIC_DIR
from app.web.security import CSP
from tests.support.browser import CHROMIUM, SKIP_REASON, open_dashboard

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)

VENDOR = next(STATIC_DIR.glob("vendor/swagger-ui-*"))
PAGE_BUDGET = 2_200_000  # bytes of the whole page as served, uncompressed: the bundle is 1.8 MB of it
RENDERED = 30_000  # ms: Swagger UI builds the page in a few seconds on a busy 2-core machine


async def test_docs_lists_every_operation_of_our_document_with_nothing_from_elsewhere(
    web: str, client: httpx.AsyncClient, page: Page,
) -> None:
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))
    await page.goto(f"http://{web}/docs")
    await page.get_by_text("Submit a task").first.wait_for(timeout=RENDERED)

    spec = (await client.get("/openapi.json")).json()
    operations = [(method.upper(), path) for path, item in spec["paths"].items() for method in item]
    assert await page.locator(".opblock").count() == len(operations)
    for method, path in operations:  # each one, with its method and path
        block = page.locator(f".opblock-{method.lower()}:has(.opblock-summary-path[data-path='{path}'])")
        assert await block.count() == 1, (method, path)
    for tag in spec["tags"]:
        await page.locator(f"[data-tag='{tag['name']}']").wait_for()

    assert {r.url for r in responses if not r.url.startswith(f"http://{web}/")} == set()  # no CDN, no validator
    served = {r.url.removeprefix(f"http://{web}"): r for r in responses}
    assert served["/docs"].headers["content-security-policy"] == CSP  # not loosened for this page
    sizes = [len(await r.body()) for r in responses if r.request.resource_type in ("document", "script", "stylesheet")]
    assert sum(sizes) < PAGE_BUDGET, sizes


async def test_try_it_out_submits_a_task_from_the_page(web: str, client: httpx.AsyncClient, page: Page) -> None:
    await page.goto(f"http://{web}/docs#/tasks/submitTask")  # deep link: the operation opens
    operation = page.locator("#operations-tasks-submitTask")
    await operation.get_by_role("button", name="Try it out").click(timeout=RENDERED)
    await operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status")
    await status.wait_for()
    assert (await status.inner_text()).strip() == "201"
    assert (await client.get("/api/tasks/")).json()["total"] == 1


async def test_the_dashboard_and_schedules_headers_link_to_the_reference(web: str, page: Page) -> None:
    await open_dashboard(page, web)
    await page.click(".topbar .nav a[href='docs']")
    await page.wait_for_url(f"http://{web}/docs")
    await page.get_by_text("Submit a task").first.wait_for(timeout=RENDERED)
    await page.goto(f"http://{web}/schedules.html")
    await page.click(".topbar .nav a[href='docs']")
    await page.wait_for_url(f"http://{web}/docs")


async def test_every_page_keeps_the_same_strict_policy(client: httpx.AsyncClient) -> None:
    for path in ("/", "/schedules.html", "/docs", "/openapi.json", "/api/health"):
        response = await client.get(path)
        assert response.headers["content-security-policy"] == CSP, path
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP


def test_the_vendored_files_are_those_recorded() -> None:
    recorded = dict(re.findall(r"\| `([\w.-]+)` \| \d+ \| `([0-9a-f]{64})` \|", (VENDOR / "README.md").read_text()))
    assert set(recorded) == {"swagger-ui-bundle.js", "swagger-ui.css"}
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert "Apache License" in (VENDOR / "LICENSE").read_text()
    docs_page = (STATIC_DIR / "docs.html").read_text()
    assert f"vendor/{VENDOR.name}/swagger-ui-bundle.js" in docs_page and "https://" not in docs_page
    assert (VENDOR / "NOTICE").is_file() and (VENDOR / "swagger-ui-bundle.js.LICENSE.txt").is_file()
