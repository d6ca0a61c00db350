"""`GET /api/workers`: each worker from its last heartbeat, live, lost (silent past its deadline) or stopped."""

import time
from typing import Any, Literal, TypedDict

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import JSONResponse

from app import keys
from app.errors import OUTAGES, Unavailable
from app.liveset import members

WorkerState = Literal["live", "lost", "stopped"]


class WorkerDict(TypedDict):
    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    started: float  # unix seconds, like every time here
    last_heartbeat: float
    running: list[str]  # task ids, as of the last heartbeat
    completed: int  # attempts it ended with SUCCESS since it started
    failed: int  # attempts it ended with FAILED, or with a retry to come
    state: WorkerState
    stopped: float | None  # when it stopped cleanly


def describe(worker_id: str, beat: dict[str, Any], deadline: float, now: float) -> WorkerDict:
    state: WorkerState = "stopped" if beat.get("stopped") else "live" if deadline >= now else "lost"
    return {
        "id": worker_id, "host": beat.get("host", ""), "pid": beat.get("pid", 0), "queues": beat.get("queues", []),
        "concurrency": beat.get("concurrency", 0), "started": beat.get("started", 0.0),
        "last_heartbeat": beat.get("last_heartbeat", 0.0), "running": beat.get("running", []),
        "completed": beat.get("completed", 0), "failed": beat.get("failed", 0), "state": state,
        "stopped": beat.get("stopped"),
    }


async def all_workers(redis: Redis, now: float) -> list[WorkerDict]:
    """Every worker still in the heartbeat set, oldest first (a worker keeps its place when it is lost)."""
    workers = [describe(worker, beat, deadline, now)
               for worker, deadline, beat in await members(redis, keys.WORKERS, keys.worker_key)
               if beat is not None]  # its description expired between the two reads
    return sorted(workers, key=lambda worker: (worker["started"], worker["id"]))


async def list_workers(request: Request) -> JSONResponse:
    state = request.state
    now = time.time()
    try:
        workers = await all_workers(state.redis, now)
    except OUTAGES as exc:
        raise Unavailable(f"workers unknown: Redis is down ({exc.__class__.__name__}); retry later") from exc
    return JSONResponse({"workers": workers, "heartbeat_interval": state.settings.heartbeat_interval,
                         "heartbeat_ttl": state.settings.heartbeat_ttl, "now": now})
