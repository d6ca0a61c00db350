"""The API's JSON answers, encoded by the one JSON path (core/wire.py's `dumps`)."""

from typing import Any

from starlette import responses

from app.core.wire import dumps


class JSONResponse(responses.JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content).encode()
