"""Who may do what, from where: security headers, same-origin and content-type checks against
cross-site use, bearer tokens, and early refusal of oversized bodies.

Neither Starlette nor uvicorn checks an Origin, and a browser lets any site it visits post forms
(urlencoded, multipart, text/plain) to a server on the user's machine: mutating requests must be
JSON and come from our own origin (or from no browser at all: curl and scripts send no Origin).
"""

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.settings import Settings
from app.web.rootpath import route_path

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UPLOADS = "/api/uploads"
MAX_JSON_BODY = 2 * 1024 * 1024
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
PUBLIC = ("/api/health", "/openapi.json")  # readable without a token (load balancers, tooling)
TOKEN_PATHS = ("/metrics",)  # outside /api/ but read like it: a scraper sends the read token


def needs_token(path: str) -> bool:
    """Whether API_TOKEN (or READ_TOKEN, to read) guards this path, when set."""
    return (path.startswith("/api/") and path not in PUBLIC) or path in TOKEN_PATHS


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse to serve beyond this machine without a token: the API runs and cancels work."""
    if not is_loopback(settings.host) and settings.api_token is None:
        raise RuntimeError(
            f"refusing to listen on HOST={settings.host} without an API token: anyone who can reach it could "
            "run and cancel work. Set API_TOKEN to a long random secret (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`), optionally READ_TOKEN for read-only access, or keep "
            "HOST=127.0.0.1.")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def foreign_origin(scope: Scope, allowed: frozenset[str]) -> str | None:
    """The request's Origin when it is not this server's own (nor an allowed one), else None."""
    origin = _header(scope, b"origin")
    if origin is None:
        return None
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    own = f"{scheme}://{_header(scope, b'host')}"
    return None if origin == own or origin in allowed else origin


def token_access(settings: Settings, presented: str | None) -> str | None:
    """"write", "read" or None for a presented token (tokens compared in constant time)."""
    if presented is None:
        return None
    if settings.api_token and hmac.compare_digest(presented.encode(), str(settings.api_token).encode()):
        return "write"
    if settings.read_token and hmac.compare_digest(presented.encode(), str(settings.read_token).encode()):
        return "read"
    return None


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.allowed_origins = frozenset(settings.allowed_origins)

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] == "websocket" and (origin := foreign_origin(scope, self.allowed_origins)):
            await send({"type": "websocket.close", "code": 1008, "reason": f"origin {origin[:100]} refused"})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            status, detail, extra = refusal
            await _send_error(send, status, detail, extra)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)

    def _refusal(self, scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        method, path = scope["method"], route_path(scope)  # under ROOT_PATH, the path without the prefix
        mutating = method not in SAFE_METHODS
        if mutating and (origin := foreign_origin(scope, self.allowed_origins)):
            return 403, f"cross-origin request refused: Origin {origin[:100]} is not this dashboard's", []
        if mutating and _header(scope, b"sec-fetch-site") == "cross-site":
            return 403, "cross-site request refused", []
        if refused := self._body_refusal(scope, method, path):
            return refused
        if self.settings.api_token and needs_token(path):
            authorization = _header(scope, b"authorization") or ""
            scheme, _, presented = authorization.partition(" ")
            access = token_access(self.settings, presented.strip() if scheme.lower() == "bearer" else None)
            if access is None:
                return 401, "a valid API token is required: Authorization: Bearer <token>", [
                    (b"www-authenticate", b'Bearer realm="tasks"')]
            if access == "read" and mutating:
                return 403, "this token is read-only", []
        return None

    def _body_refusal(self, scope: Scope, method: str, path: str) -> tuple[int, str, list[Any]] | None:
        length = _header(scope, b"content-length")
        cap = self.settings.upload_max_bytes if path == UPLOADS else MAX_JSON_BODY
        if length is not None and length.isdigit() and int(length) > cap:
            return 413, f"request body exceeds {cap} bytes", []
        if method in SAFE_METHODS or path == UPLOADS:
            return None
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        has_body = (length not in (None, "0")) or _header(scope, b"transfer-encoding") is not None
        if (content_type or has_body) and content_type != "application/json":
            return 415, f"content type must be application/json, got {content_type or 'none'!r}", []
        return None


async def _send_error(send: Callable[[Message], Awaitable[None]], status: int, detail: str,
                      extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), *HEADERS, *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
