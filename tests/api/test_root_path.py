"""ROOT_PATH: the app under a path prefix behind a proxy that strips it (the browser side, through a real
proxy, is tests/browser/test_subpath.py): the setting's bounds, both request shapes answered, the prefix
in the OpenAPI `servers`, and the token still guarding /api/ under a prefix."""

import asyncio
from pathlib import Path

import httpx
import pytest
import uvicorn

from app.main import create_app
from app.settings import load_settings
from launcher.redis_server import free_port
from tests.support.servers import make_settings, served


@pytest.mark.parametrize(("given", "kept"), [("", ""), ("/", ""), ("/tq", "/tq"), ("tq/", "/tq"),
                                             (" /a/b-c_d.e~f/ ", "/a/b-c_d.e~f")])
def test_the_prefix_is_normalised(given: str, kept: str) -> None:
    assert load_settings({"ROOT_PATH": given}).root_path == kept


@pytest.mark.parametrize("given", ["/a b", "/x?y=1", "/x#y", "/a//b", "/../etc", "/a/./b", "/<script>", "/é",
                                   "/" + "a" * 200])
def test_a_prefix_that_is_not_a_plain_path_is_refused_naming_the_setting(given: str) -> None:
    with pytest.raises(ValueError, match="ROOT_PATH must be a URL path"):
        load_settings({"ROOT_PATH": given})


async def test_stripped_and_unstripped_requests_are_both_served(redis_url: str, db_url: str, tmp_path: Path) -> None:
    settings = make_settings(redis_url, db_url, tmp_path / "data", ROOT_PATH="/tq")
    async with served(settings) as address, httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
        for path in ("/api/health", "/tq/api/health"):  # the proxy stripped it; a proxy passed it on
            health = await client.get(path)  # 503 (no worker here), but the health handler's answer
            assert health.status_code in (200, 503) and "status" in health.json(), path
        spec = (await client.get("/openapi.json")).json()
        assert [server["url"] for server in spec["servers"]] == ["/tq"]  # where "Try it out" and clients call
        page = await client.get("/tq/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'src="js/apidocs.js"' in page.text  # relative: under the prefix the browser sees
        index = await client.get("/tq/")
        assert index.status_code == 200 and 'src="js/app.js"' in index.text
        assert (await client.get("/tq/js/base.js")).status_code == 200


async def test_without_a_prefix_the_document_names_the_root(client: httpx.AsyncClient) -> None:
    assert [server["url"] for server in (await client.get("/openapi.json")).json()["servers"]] == ["/"]


async def test_the_token_guards_the_api_under_a_prefix(redis_url: str, db_url: str, tmp_path: Path) -> None:
    settings = make_settings(redis_url, db_url, tmp_path / "data", ROOT_PATH="/tq", API_TOKEN="s3cret")
    async with served(settings) as address, httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
        for path in ("/api/tasks/", "/tq/api/tasks/", "/tq/metrics"):
            assert (await client.get(path)).status_code == 401, path
        assert (await client.get("/tq/api/tasks/", headers={"Authorization": "Bearer s3cret"})).status_code == 200
        assert (await client.get("/tq/api/health")).status_code in (200, 503)  # public, as without a prefix


async def test_the_token_guards_the_api_under_uvicorns_own_root_path(
    redis_url: str, db_url: str, tmp_path: Path,
) -> None:
    """`uvicorn --root-path /x` (no ROOT_PATH) puts the prefix in every path: the checks look past it."""
    settings = make_settings(redis_url, db_url, tmp_path / "data", API_TOKEN="s3cret")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, root_path="/x",
                                           log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), task
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert (await client.get("/api/tasks/")).status_code == 401
            refused = await client.post("/api/tasks/submit", json={"task_type": "text_processing", "parameters": {}})
            assert refused.status_code == 401
    finally:
        server.should_exit = True
        await task
