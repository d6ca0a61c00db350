"""Reading a request: a JSON body (its content type, size, depth, text and known fields), an integer from
the query string, and the client's submit and upload rates."""

import json
from collections.abc import Collection
from typing import Any

from starlette.requests import Request

from app.core.errors import BadRequest, InvalidParameters, PayloadTooLarge, TooManyRequests, UnsupportedMediaType
from app.core.validation import MAX_JSON_DEPTH, check_json

MAX_BODY_BYTES = 2 * 1024 * 1024


async def json_body(request: Request, fields: Collection[str]) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType(f"content type must be application/json, got {content_type or 'none'!r}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except RecursionError:
        raise InvalidParameters("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from exc
    check_json(data)
    if not isinstance(data, dict):
        raise InvalidParameters("body", "must be a JSON object")
    for name in data:
        if name not in fields:
            raise InvalidParameters(name, f"unknown field; known: {', '.join(sorted(fields))}")
    return data


def int_query(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameters(name, f"must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise InvalidParameters(name, f"must be between {low} and {high}, got {value}")
    return value


def limit_submits(request: Request, count: int = 1) -> None:
    """The client's submit rate (per web process): 429 with Retry-After beyond it."""
    client = request.client.host if request.client else "?"
    if wait := request.state.limiter.take(client, count):
        raise TooManyRequests(f"too many submits from {client}; slow down", wait)


def limit_uploads(request: Request, size: int) -> None:
    """The client's upload rate in bytes (per web process), `size` charged up front: 429 with Retry-After
    beyond it."""
    client = request.client.host if request.client else "?"
    limiter = request.state.upload_limiter
    if wait := limiter.take(client, size):
        raise TooManyRequests(f"too many upload bytes from {client}: UPLOAD_RATE allows {limiter.rate:.0f} bytes a "
                              f"second (bursts of UPLOAD_BURST={limiter.burst}); retry in {wait:.0f} s", wait)
