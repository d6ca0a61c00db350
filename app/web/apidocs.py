"""`GET /docs`: the browsable API reference, Swagger UI vendored under static/vendor/ (no CDN) reading this
server's /openapi.json; its page is static/docs.html, its initializer static/js/apidocs.js."""

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response


def page(static_dir: Path) -> Callable[[Request], Awaitable[Response]]:
    """The handler serving the page; its relative links resolve under the prefix the browser sees."""
    path = static_dir / "docs.html"

    async def docs(request: Request) -> Response:
        return FileResponse(path, media_type="text/html; charset=utf-8")

    return docs
