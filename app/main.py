"""The web application: resources opened in one lifespan, and the route table (the site map)."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from app.core.connections import open_redis
from app.lifecycle.cancel import Canceller
from app.lifecycle.changes import Changes
from app.lifecycle.pause import QueuePause
from app.lifecycle.retry import Retrier
from app.lifecycle.run_now import RunNow
from app.lifecycle.submit import Submissions
from app.metrics.figures import WebFigures
from app.metrics.series import MinuteCache
from app.settings import Settings, load_settings
from app.store.stores import open_stores
from app.store.uploads import upload_store
from app.tasks import configured_types
from app.web import apidocs, errors, files, health, metrics, openapi, queue, schedules, tasks, webhooks, workers
from app.web.live import ws
from app.web.live.hub import EventHub
from app.web.ratelimit import RateLimiter
from app.web.rootpath import RootPath
from app.web.security import SecurityMiddleware, check_exposure
from app.webhooks.hooks import Hooks, check_settings


def _static_dir() -> Path:
    """The checkout's `static/`, or, installed (`pip install .`), the same files as package `taskqueue_static`."""
    checkout = Path(__file__).resolve().parent.parent / "static"
    if (checkout / "index.html").is_file():
        return checkout
    import importlib.resources

    # A namespace package (no __init__.py): files() is a MultiplexedPath on 3.11; a file in it is a real Path.
    return Path(str(importlib.resources.files("taskqueue_static").joinpath("index.html"))).parent


STATIC_DIR = _static_dir()


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    check_exposure(settings)
    check_settings(settings)  # a global webhook that could not be signed
    types = configured_types(settings)  # refuses, at start, a module it cannot use

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with AsyncExitStack() as stack:
            stores = await stack.enter_async_context(open_stores(str(settings.database_url)))
            redis = await stack.enter_async_context(open_redis(str(settings.redis_url), settings.queue_name))
            hooks = Hooks.from_settings(settings)
            uploads = upload_store(settings)
            changes = Changes(stores, redis, hooks)
            hub = await stack.enter_async_context(
                EventHub(redis, stores.tasks, changes.sync_seq, gap_timeout=settings.ws_gap_timeout,
                         queue_size=settings.ws_queue_size, queue_bytes=settings.ws_queue_bytes)
            )
            await stack.enter_async_context(
                WebFigures(redis, lambda: {"clients": len(hub.clients), "delivered": hub.delivered}))
            stack.push_async_callback(changes.drain)  # runs before Redis and the database close
            yield {"settings": settings, "stores": stores, "redis": redis, "hub": hub, "uploads": uploads,
                   "submissions": Submissions(stores.tasks, redis, types, uploads, settings.max_queued, hooks),
                   "canceller": Canceller(changes), "retrier": Retrier(changes, types), "run_now": RunNow(changes),
                   "pauser": QueuePause(redis, settings.queue_name), "types": types, "openapi": spec,
                   "minutes": MinuteCache(), "limiter": RateLimiter(settings.submit_rate, settings.submit_burst),
                   "upload_limiter": RateLimiter(settings.upload_rate, settings.upload_burst)}

    routes = [
        Route("/api/tasks/submit", tasks.submit, methods=["POST"]),
        Route("/api/tasks/batch", tasks.submit_batch, methods=["POST"]),
        Route("/api/tasks/bulk", tasks.bulk_action, methods=["POST"]),
        Route("/api/tasks/", tasks.list_tasks, methods=["GET"]),
        Route("/api/tasks", tasks.list_tasks, methods=["GET"]),  # not the static mount's 404
        Route("/api/tasks/{task_id}", tasks.get_task, methods=["GET"]),
        Route("/api/tasks/{task_id}", tasks.cancel_task, methods=["DELETE"]),
        Route("/api/tasks/{task_id}/retry", tasks.retry_task, methods=["POST"]),
        Route("/api/tasks/{task_id}/run-now", tasks.run_task_now, methods=["POST"]),
        Route("/api/tasks/{task_id}/rerun", tasks.rerun_task, methods=["POST"]),
        Route("/api/tasks/{task_id}/logs", files.task_logs, methods=["GET"]),
        Route("/api/tasks/{task_id}/webhooks", webhooks.task_webhooks, methods=["GET"]),
        Route("/api/tasks/{task_id}/artifacts/{name}", files.artifact, methods=["GET"]),
        Route("/api/uploads", files.upload, methods=["POST"]),
        Route("/api/uploads/{upload_id}", files.get_upload, methods=["GET"]),
        Route("/api/uploads/{upload_id}", files.delete_upload, methods=["DELETE"]),
        Route("/api/schedules", schedules.list_schedules, methods=["GET"]),
        Route("/api/schedules", schedules.create_schedule, methods=["POST"]),
        Route("/api/schedules/{schedule_id}", schedules.get_schedule, methods=["GET"]),
        Route("/api/schedules/{schedule_id}", schedules.edit_schedule, methods=["PATCH"]),
        Route("/api/schedules/{schedule_id}", schedules.delete_schedule, methods=["DELETE"]),
        Route("/api/schedules/{schedule_id}/run", schedules.run_schedule, methods=["POST"]),
        Route("/api/stats", tasks.stats, methods=["GET"]),
        Route("/api/queue", queue.get_queue, methods=["GET"]),
        Route("/api/queue/pause", queue.pause_queue, methods=["POST"]),
        Route("/api/queue/resume", queue.resume_queue, methods=["POST"]),
        Route("/api/task-types", tasks.task_types, methods=["GET"]),
        Route("/api/health", health.health, methods=["GET"]),
        Route("/api/workers", workers.list_workers, methods=["GET"]),
        Route("/api/metrics/series", metrics.series, methods=["GET"]),
        Route("/metrics", metrics.metrics, methods=["GET"]),
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/docs", apidocs.page(STATIC_DIR), methods=["GET"]),
        WebSocketRoute("/ws", ws.endpoint),
        Mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static"),
    ]
    spec = openapi.document(routes, types)  # refuses, at start, a route the document does not describe
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=errors.HANDLERS,  # type: ignore[arg-type]
                     middleware=[Middleware(RootPath, root_path=settings.root_path),  # outermost: sets the path
                                 Middleware(SecurityMiddleware, settings=settings)])
