"""Serving under a path prefix (ROOT_PATH, e.g. /tq) behind a reverse proxy: the ASGI `root_path`.

The usual proxy set-up strips the prefix (`location /tq/ { proxy_pass http://app/; }`), so requests
arrive as `/api/…`; the app is told the prefix and puts it back, as uvicorn's `--root-path` does: the
scope's `path` then holds the full public path and `root_path` the prefix, which Starlette's routing
takes off again. A request that still carries the prefix (a proxy that passes it through, or uvicorn
run with `--root-path` as well) is left as it is, so both set-ups work, and so do direct requests to
the backend port (a load balancer's `/api/health`). Only the server's own URLs depend on the prefix
(the OpenAPI `servers`); the dashboard finds its base from its own files' URLs (static/js/base.js).
"""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


def has_prefix(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def route_path(scope: Scope) -> str:
    """The path the routes see: the request's path without the prefix (as Starlette's routing takes it off)."""
    path, prefix = scope["path"], scope.get("root_path", "")
    return path[len(prefix):] if prefix and has_prefix(path, prefix) else path


class RootPath:
    def __init__(self, app: ASGIApp, root_path: str) -> None:
        self.app = app
        self.root_path = root_path

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        prefix = self.root_path
        if prefix and scope["type"] in ("http", "websocket"):
            scope = {**scope, "root_path": prefix}
            if not has_prefix(scope["path"], prefix):
                scope["path"] = prefix + scope["path"]
                if scope.get("raw_path") is not None:
                    scope["raw_path"] = prefix.encode() + scope["raw_path"]
        await self.app(scope, receive, send)
