"""REST handlers for the queue's state: read it, pause it, resume it (lifecycle/pause.py)."""

from starlette.requests import Request

from app.lifecycle.pause import queue_state
from app.web.responses import JSONResponse


async def get_queue(request: Request) -> JSONResponse:
    return JSONResponse(await queue_state(request.state.redis, request.state.settings.queue_name))


async def pause_queue(request: Request) -> JSONResponse:
    return JSONResponse(await request.state.pauser.pause())


async def resume_queue(request: Request) -> JSONResponse:
    return JSONResponse(await request.state.pauser.resume())
