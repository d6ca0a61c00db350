"""The arq side of a worker: `WorkerSettings`, the one job function `run_task`, and the process's entry
point (`python worker.py`)."""

import asyncio
from collections.abc import Mapping
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Retry, get_kwargs

try:
    import uvloop
except ImportError:  # uvicorn[standard] installs it, except on Windows
    uvloop = None

from app.core.cli import parse_command_line, refused_start
from app.core.connections import deserialize_job, serialize_job
from app.core.logs import configure_logging
from app.lifecycle.new_task import TIMEOUT_MAX
from app.settings import Settings, load_settings
from app.tasks import TaskType, configured_types
from app.webhooks.hooks import check_settings
from app.worker.lifespan import shutdown, startup
from app.worker.resilient import ResilientWorker
from app.worker.runner import Runner

UNSERVED_DEFER = 5.0  # seconds before a job of a type this worker does not serve is due again


def arq_job_timeout(types: Mapping[str, TaskType]) -> float:
    """arq's time limit: our own limits (per type, or per task up to TIMEOUT_MAX) stop a task first and
    record why; arq's only backs them up, so it must never come first."""
    return max(TIMEOUT_MAX, *(kind.timeout for kind in types.values())) + 60


async def run_task(ctx: dict[str, Any], task_id: str, dispatch: int, task_type: str | None = None) -> dict[str, Any]:
    runner: Runner = ctx["runner"]
    if task_type is not None and task_type not in runner.types:
        # Workers may serve different types (TASK_MODULES): this one leaves the task, unclaimed, in the
        # queue for one that serves it (arq puts the job back, due again in UNSERVED_DEFER seconds).
        raise Retry(defer=UNSERVED_DEFER)
    return await runner.run(task_id, dispatch, ctx["free_slot"])  # worker/resilient.py


def build_worker_settings(settings: Settings) -> type:
    check_settings(settings)  # refuses, at start, a global webhook that could not be signed
    types = configured_types(settings)

    class WorkerSettings:
        functions = [run_task]
        redis_settings = RedisSettings.from_dsn(str(settings.redis_url))
        queue_name = settings.queue_name
        max_jobs = settings.worker_concurrency
        poll_delay = 0  # the worker waits for wake-ups between looks at the queue (worker/resilient.py)
        job_timeout = arq_job_timeout(types)
        keep_result = 0  # the database holds each task's outcome: nothing reads arq's results
        # A job is tried again only by our own rules (attempts, the watchdog, the reconciler) and, for a
        # type this worker does not serve, until one that does takes it: arq's own cap never gives up.
        max_tries = 10**9
        # On SIGTERM/SIGINT: take no new job, let running ones finish for this long, then hand the
        # rest back to the queue as new attempts (honcho kills after 5 s: the default leaves room).
        job_completion_wait = settings.shutdown_grace
        # Cancels travel as our own pub/sub signal plus a flag (lifecycle/cancel.py): arq's abort
        # would cancel a job a second time while it records its end, and leaves entries for jobs
        # that had already finished in a set it reads on every poll.
        allow_abort_jobs = False
        job_serializer = serialize_job
        job_deserializer = deserialize_job
        on_startup = startup
        on_shutdown = shutdown
        # the watchdog reads arq's lock time from it
        ctx = {"settings": settings, "job_timeout": job_timeout, "types": types}

    return WorkerSettings


def create_worker(settings: Settings, **overrides: Any) -> ResilientWorker:
    worker_settings = build_worker_settings(settings)
    options = {**get_kwargs(worker_settings), "ctx": dict(worker_settings.ctx), **overrides}  # type: ignore[attr-defined]
    return ResilientWorker(**options)


def main() -> None:
    parse_command_line("taskqueue-worker", "A worker process: runs the queued tasks of the types it serves.")
    with refused_start("taskqueue-worker"):
        settings = load_settings()
        configure_logging(settings, "worker")
        # uvloop (uvicorn's loop in the web process too) where it is installed: a task's round trips to
        # Redis and the database cost a fifth less CPU on it than on asyncio's own loop
        asyncio.set_event_loop(uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop())
        worker = create_worker(settings)
    worker.run()
