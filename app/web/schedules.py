"""The REST handlers of schedules: list, create, get, edit (pause and resume too), delete, run now."""

from starlette.requests import Request
from starlette.responses import Response

from app.core import keys
from app.core.clock import utcnow
from app.core.errors import OUTAGES, NotFound, Unavailable
from app.core.wire import ScheduleDict
from app.schedules.rules import FIELDS, first_tick, new_row, schedule_values, when_changes
from app.schedules.scheduler import CHANGED, Scheduler
from app.store.schedules import ScheduleStore
from app.web.requests import json_body
from app.web.responses import JSONResponse


def _schedules(request: Request) -> ScheduleStore:
    return request.state.stores.schedules  # type: ignore[no-any-return]


async def _get(request: Request) -> ScheduleDict:
    schedule_id = request.path_params["schedule_id"]
    schedule = await _schedules(request).get(schedule_id)
    if schedule is None:
        raise NotFound(f"schedule {schedule_id!r} not found")
    return schedule


async def _announce(request: Request) -> None:
    """The workers' schedulers look again now, not at their next safety-net look (MAX_SLEEP)."""
    try:
        await request.state.redis.publish(keys.CONTROL, CHANGED)
    except OUTAGES:  # stored all the same: the schedulers find it on their next look
        pass


async def list_schedules(request: Request) -> JSONResponse:
    return JSONResponse({"schedules": await _schedules(request).all()})


async def create_schedule(request: Request) -> JSONResponse:
    state = request.state
    values = schedule_values(await json_body(request, FIELDS), state.types, state.uploads)
    created = await _schedules(request).insert(new_row(values))
    await _announce(request)
    return JSONResponse(created, status_code=201)


async def get_schedule(request: Request) -> JSONResponse:
    return JSONResponse(await _get(request))


async def edit_schedule(request: Request) -> JSONResponse:
    """Any field; a new timing, or a resume, moves the next tick to the first one ahead of now."""
    body = await json_body(request, FIELDS)
    current = await _get(request)
    values = schedule_values(body, request.state.types, request.state.uploads, current)
    if when_changes(current, values):
        values["next_run_at"] = first_tick(values, utcnow())
    edited = await _schedules(request).update(current["id"], values)
    if edited is None:
        raise NotFound(f"schedule {current['id']!r} not found")
    await _announce(request)
    return JSONResponse(edited)


async def delete_schedule(request: Request) -> Response:
    """The schedule goes; the tasks it made stay, still carrying its id."""
    schedule_id = request.path_params["schedule_id"]
    if not await _schedules(request).delete(schedule_id):
        raise NotFound(f"schedule {schedule_id!r} not found")
    return Response(status_code=204)


async def run_schedule(request: Request) -> JSONResponse:
    """A task from the schedule now, linked to it like a tick's; the next tick stays where it is."""
    schedule = await _get(request)
    try:
        task = await Scheduler(request.state.stores, request.state.redis).fire(schedule, utcnow(), None)
    except OUTAGES as exc:
        raise Unavailable.redis_down(exc) from exc
    if task is None:
        raise NotFound(f"schedule {schedule['id']!r} not found")
    return JSONResponse(task, status_code=201)
