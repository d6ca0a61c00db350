"""The error vocabulary at the edge: client errors (core/errors.py), Starlette's own HTTP errors and
anything unexpected, each answered as JSON `{"detail": ...}`."""

from starlette.exceptions import HTTPException
from starlette.requests import Request

from app.core.errors import ClientError, InvalidParameters
from app.web.responses import JSONResponse


async def client_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ClientError)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    body = {"detail": exc.detail}
    if isinstance(exc, InvalidParameters):
        body["field"] = exc.field  # lets a form show the message next to the field
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "internal server error"}, status_code=500)


HANDLERS = {ClientError: client_error, HTTPException: http_error, Exception: server_error}
