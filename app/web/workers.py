"""`GET /api/workers`: each worker from its last heartbeat, live, lost (silent past its deadline) or stopped."""

import time
from typing import Any

from redis.asyncio import Redis
from starlette.requests import Request

from app.core import keys
from app.core.errors import OUTAGES, Unavailable
from app.core.liveset import members
from app.core.wire import WorkerDict, WorkerState
from app.web.responses import JSONResponse


def describe(worker_id: str, beat: dict[str, Any], deadline: float, now: float) -> WorkerDict:
    state: WorkerState = "stopped" if beat.get("stopped") else "live" if deadline >= now else "lost"
    return {
        "id": worker_id, "host": beat.get("host", ""), "pid": beat.get("pid", 0), "queues": beat.get("queues", []),
        "task_types": beat.get("task_types", []),
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
