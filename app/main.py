"""The web application: resources opened in one lifespan, and the route table (the site map)."""

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from app import api, api_files, api_schedules, api_webhooks, api_workers, openapi, prometheus, series, ws
from app.connections import open_redis
from app.errors import ClientError, InvalidParameters
from app.figures import WebFigures
from app.hub import EventHub
from app.lifecycle import TaskLifecycle
from app.ratelimit import RateLimiter
from app.security import SecurityMiddleware, check_exposure
from app.settings import Settings, load_settings
from app.store import TaskStore
from app.tasks import configure
from app.uploads import upload_store
from app.webhooks import Hooks, check_settings

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
log = logging.getLogger(__name__)


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


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    check_exposure(settings)
    check_settings(settings)  # a global webhook that could not be signed
    types = configure(settings.task_timeouts, settings.task_max_attempts)  # refuses a bad name at start

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with AsyncExitStack() as stack:
            store = await stack.enter_async_context(TaskStore.open(str(settings.database_url)))
            redis = await stack.enter_async_context(open_redis(str(settings.redis_url), settings.queue_name))
            uploads = upload_store(settings)
            lifecycle = TaskLifecycle(store, redis, uploads, settings.max_queued, Hooks.from_settings(settings))
            hub = await stack.enter_async_context(
                EventHub(redis, store, lifecycle.changes.sync_seq, gap_timeout=settings.ws_gap_timeout,
                         queue_size=settings.ws_queue_size)
            )
            await stack.enter_async_context(
                WebFigures(redis, lambda: {"clients": len(hub.clients), "delivered": hub.delivered}))
            stack.push_async_callback(lifecycle.changes.drain)  # runs before Redis and the database close
            yield {"settings": settings, "store": store, "redis": redis, "hub": hub, "lifecycle": lifecycle,
                   "uploads": uploads, "types": types, "openapi": spec, "minutes": series.MinuteCache(),
                   "limiter": RateLimiter(settings.submit_rate, settings.submit_burst)}

    routes = [
        Route("/api/tasks/submit", api.submit, methods=["POST"]),
        Route("/api/tasks/batch", api.submit_batch, methods=["POST"]),
        Route("/api/tasks/bulk", api.bulk_action, methods=["POST"]),
        Route("/api/tasks/", api.list_tasks, methods=["GET"]),
        Route("/api/tasks/{task_id}", api.get_task, methods=["GET"]),
        Route("/api/tasks/{task_id}", api.cancel_task, methods=["DELETE"]),
        Route("/api/tasks/{task_id}/retry", api.retry_task, methods=["POST"]),
        Route("/api/tasks/{task_id}/rerun", api.rerun_task, methods=["POST"]),
        Route("/api/tasks/{task_id}/logs", api_files.task_logs, methods=["GET"]),
        Route("/api/tasks/{task_id}/webhooks", api_webhooks.task_webhooks, methods=["GET"]),
        Route("/api/tasks/{task_id}/artifacts/{name}", api_files.artifact, methods=["GET"]),
        Route("/api/uploads", api_files.upload, methods=["POST"]),
        Route("/api/uploads/{upload_id}", api_files.get_upload, methods=["GET"]),
        Route("/api/schedules", api_schedules.list_schedules, methods=["GET"]),
        Route("/api/schedules", api_schedules.create_schedule, methods=["POST"]),
        Route("/api/schedules/{schedule_id}", api_schedules.get_schedule, methods=["GET"]),
        Route("/api/schedules/{schedule_id}", api_schedules.edit_schedule, methods=["PATCH"]),
        Route("/api/schedules/{schedule_id}", api_schedules.delete_schedule, methods=["DELETE"]),
        Route("/api/schedules/{schedule_id}/run", api_schedules.run_schedule, methods=["POST"]),
        Route("/api/stats", api.stats, methods=["GET"]),
        Route("/api/task-types", api.task_types, methods=["GET"]),
        Route("/api/health", api.health_check, methods=["GET"]),
        Route("/api/workers", api_workers.list_workers, methods=["GET"]),
        Route("/api/metrics/series", series.series, methods=["GET"]),
        Route("/metrics", prometheus.metrics, methods=["GET"]),
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        WebSocketRoute("/ws", ws.endpoint),
        Mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static"),
    ]
    spec = openapi.document(routes, types)  # refuses, at start, a route the document does not describe
    handlers = {ClientError: client_error, HTTPException: http_error, Exception: server_error}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers,  # type: ignore[arg-type]
                     middleware=[Middleware(SecurityMiddleware, settings=settings)])
