"""The REST handlers of tasks: submit (one, a batch, a re-run), list and search, get, cancel, retry,
bulk actions, counts, task types."""

import asyncio
import bisect
import re
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from starlette.requests import Request

from app.core import keys
from app.core.errors import OUTAGES, InvalidParameters
from app.core.status import WAITING, Status
from app.core.wire import TaskDict, brief
from app.lifecycle import bulk
from app.lifecycle.lookup import existing
from app.lifecycle.new_task import OPTION_FIELDS
from app.lifecycle.submit import MAX_GROUP
from app.store.filters import TaskFilter
from app.web.requests import int_query, json_body, limit_submits
from app.web.responses import JSONResponse

MAX_PAGE = 500
MAX_BATCH = MAX_GROUP  # tasks per batch submit
SUBMIT_FIELDS = frozenset({"task_type", "parameters"}) | OPTION_FIELDS
RERUN_FIELDS = frozenset({"parameters"}) | OPTION_FIELDS
BULK_FIELDS = frozenset({"action", "ids", "filter", "dry_run"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
CURSOR = re.compile(r"([0-9]{1,17})\.([0-9A-Za-z_-]{1,36})")  # mirrored by the `after` pattern in web/openapi.py
# Each job's rank in arq's queue (-1: not in it), in one command: a pipeline of one ZRANK per job
# (a page's queued tasks and every running one) cost more than the rest of a list request.
RANKS = """
local ranks = {}
for i, job in ipairs(ARGV) do ranks[i] = redis.call('ZRANK', KEYS[1], job) or -1 end
return ranks
"""


async def submit(request: Request) -> JSONResponse:
    limit_submits(request)
    data = await json_body(request, SUBMIT_FIELDS)
    if "task_type" not in data:
        raise InvalidParameters("task_type", f"required; known: {request.state.types.known()}")
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= 200:
        raise InvalidParameters("Idempotency-Key", "must be 1 to 200 characters")
    task, created = await request.state.submissions.submit(
        data["task_type"], data.get("parameters", {}), data, idempotency_key=key)
    return JSONResponse(task, status_code=201 if created else 200)


async def rerun_task(request: Request) -> JSONResponse:
    """A new task from this one (linked by `source_task_id`), with the body's changes: an empty body
    duplicates it; `parameters` replaces them whole."""
    changes = await json_body(request, RERUN_FIELDS)
    limit_submits(request)
    return JSONResponse(await request.state.submissions.rerun(request.path_params["task_id"], changes), status_code=201)


async def submit_batch(request: Request) -> JSONResponse:
    """Many tasks in one request, all or none, answered in request order. Each counts against the
    client's submit rate. No Idempotency-Key: a batch is not replayed (422)."""
    if request.headers.get("idempotency-key") is not None:
        raise InvalidParameters("Idempotency-Key", "is not supported for batches; submit one by one to use it")
    items = (await json_body(request, {"tasks"})).get("tasks")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise InvalidParameters("tasks", f"must be a list of 1 to {MAX_BATCH} tasks")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidParameters(f"tasks[{index}]", "must be a JSON object")
        if unknown := sorted(set(item) - SUBMIT_FIELDS):
            raise InvalidParameters(f"tasks[{index}].{unknown[0]}",
                                    f"unknown field; known: {', '.join(sorted(SUBMIT_FIELDS))}")
        if "task_type" not in item:
            raise InvalidParameters(f"tasks[{index}].task_type", f"required; known: {request.state.types.known()}")
    limit_submits(request, len(items))
    return JSONResponse({"tasks": await request.state.submissions.submit_many(items)}, status_code=201)


async def bulk_action(request: Request) -> JSONResponse:
    """Cancel, retry or delete a selection or every task of a filter; `dry_run` only counts."""
    action, selection, dry_run = bulk.parse(await json_body(request, BULK_FIELDS))
    state = request.state
    runner = bulk.BulkAction(state.canceller, state.retrier, state.settings.data_dir, state.uploads, state.types)
    return JSONResponse(await runner.run(action, selection, dry_run))


async def list_tasks(request: Request) -> JSONResponse:
    where = TaskFilter.parse(request.query_params)
    limit = int_query(request, "limit", 50, 1, MAX_PAGE)
    offset = int_query(request, "offset", 0, 0, 10**9)
    after = _parse_cursor(request.query_params.get("after") or None)
    queries = request.state.stores.queries
    tasks, total = await queries.page(where, limit=limit, offset=offset, after=after)
    tasks = [brief(task) for task in tasks]  # a page of large tasks would be megabytes: each whole by its id
    counts = await queries.counts()
    await _add_queue_positions(request, tasks)
    return JSONResponse({"tasks": tasks, "total": total, "limit": limit, "offset": offset,
                         "counts": counts, "seq": request.state.hub.head,
                         "next": _cursor(tasks[-1]) if len(tasks) == limit else None})


def _cursor(task: TaskDict) -> str:
    """Where the next page starts: the task's creation time in microseconds since 1970, and its id."""
    micros = (datetime.fromisoformat(task["created_at"]) - EPOCH) // MICROSECOND
    return f"{micros}.{task['id']}"


def _parse_cursor(raw: str | None) -> tuple[datetime, str] | None:
    if raw is None:
        return None
    if not (match := CURSOR.fullmatch(raw)):
        raise InvalidParameters("after", f"must be a `next` cursor from a previous page, got {raw[:60]!r}")
    return EPOCH + int(match[1]) * MICROSECOND, match[2]


async def stats(request: Request) -> JSONResponse:
    """Counts per status, for a live view to resynchronise its counters without reloading tasks."""
    return JSONResponse({"counts": await request.state.stores.queries.counts(), "seq": request.state.hub.head})


async def get_task(request: Request) -> JSONResponse:
    task = await existing(request.state.stores.tasks, request.path_params["task_id"])
    await _add_queue_positions(request, [task])
    return JSONResponse(task)


async def _add_queue_positions(request: Request, tasks: list[TaskDict]) -> None:
    """`queue_position` (1 = next) for queued tasks: their jobs' rank in arq's queue, not counting
    the jobs ahead that are already running (arq keeps a job in its queue until it ends). Left out
    while Redis is unreachable, since reads must keep working then."""
    waiting = [task for task in tasks if task["status"] in WAITING]
    if not waiting:
        return
    running = await request.state.stores.tasks.running_jobs()
    jobs = [keys.job_id(task["id"], task["dispatch"]) for task in waiting]
    jobs += [keys.job_id(task_id, dispatch) for task_id, dispatch in running]
    try:
        ranks = await request.state.redis.register_script(RANKS)(keys=[request.state.settings.queue_name], args=jobs)
    except OUTAGES:
        return
    running_ranks = sorted(rank for rank in ranks[len(waiting):] if rank >= 0)
    for task, rank in zip(waiting, ranks[: len(waiting)], strict=True):
        ahead_running = bisect.bisect_left(running_ranks, rank)
        task["queue_position"] = None if rank < 0 else rank + 1 - ahead_running  # type: ignore[typeddict-unknown-key]


async def cancel_task(request: Request) -> JSONResponse:
    """Queued tasks end CANCELLED at once; a running one answers once its worker stopped it
    (or after CANCEL_WAIT seconds, still RUNNING with `cancel_requested` set)."""
    task_id = request.path_params["task_id"]
    with request.state.hub.watch_final(task_id) as final:
        task = await request.state.canceller.cancel(task_id)
        if task["status"] == Status.RUNNING:
            with suppress(TimeoutError):
                await asyncio.wait_for(final, request.state.settings.cancel_wait)
            task = await existing(request.state.stores.tasks, task_id)
    return JSONResponse(task)


async def retry_task(request: Request) -> JSONResponse:
    return JSONResponse(await request.state.retrier.retry(request.path_params["task_id"]))


async def run_task_now(request: Request) -> JSONResponse:
    return JSONResponse(await request.state.run_now.run_now(request.path_params["task_id"]))


async def task_types(request: Request) -> JSONResponse:
    return JSONResponse({"task_types": [kind.describe() for kind in request.state.types.values()]})
