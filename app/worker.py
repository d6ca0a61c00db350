"""The arq side: `WorkerSettings`, the one job function `run_task`, and the worker's resources."""

import asyncio
import logging
import os
import socket
import time
import uuid
from contextlib import AsyncExitStack
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, get_kwargs
from redis.exceptions import RedisError

from app import keys
from app.connections import deserialize_job, serialize_job
from app.heartbeat import Heartbeat
from app.lifecycle import TaskLifecycle
from app.pubsub import BACKOFF_MAX, BACKOFF_MIN, follow
from app.runner import Runner
from app.settings import Settings, load_settings
from app.store import TaskStore
from app.tasks import TASK_TYPES

log = logging.getLogger(__name__)


async def run_task(ctx: dict[str, Any], task_id: str, dispatch: int) -> dict[str, Any]:
    runner: Runner = ctx["runner"]
    return await runner.run(task_id, dispatch)


def _on_control(runner: Runner, message: str | None) -> None:
    if message is None:
        return
    command, _, task_id = message.partition("|")
    if command == "cancel":
        runner.cancel(task_id)


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    stack = ctx["stack"] = AsyncExitStack()
    store = await stack.enter_async_context(TaskStore.open(str(settings.database_url)))
    redis = ctx["redis"]
    lifecycle = TaskLifecycle(store, redis)
    await lifecycle.sync_seq()
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    runner = ctx["runner"] = Runner(
        lifecycle, redis, worker_id,
        data_dir=settings.data_dir, progress_interval=settings.progress_interval,
    )
    heartbeat = ctx["heartbeat"] = Heartbeat(
        redis, worker_id,
        {"id": worker_id, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
         "queues": [settings.queue_name], "concurrency": settings.worker_concurrency},
        interval=settings.heartbeat_interval, ttl=settings.heartbeat_ttl, running=runner.running,
    )
    await heartbeat.beat()
    subscribed = asyncio.Event()

    async def on_subscribed() -> None:
        # Signals sent while the subscription was down are lost: look at the flags instead.
        for task_id in runner.running():
            if await redis.exists(keys.cancel_key(task_id)):
                runner.cancel(task_id)
        subscribed.set()

    ctx["background"] = [
        asyncio.create_task(heartbeat.run(), name="heartbeat"),
        asyncio.create_task(
            follow(redis, keys.CONTROL, lambda m: _on_control(runner, m), on_subscribed=on_subscribed),
            name="control-listener",
        ),
    ]
    await asyncio.wait_for(subscribed.wait(), 10)
    log.info("worker %s ready", worker_id)


async def shutdown(ctx: dict[str, Any]) -> None:
    for task in ctx.get("background", []):
        task.cancel()
    await asyncio.gather(*ctx.get("background", []), return_exceptions=True)
    if "heartbeat" in ctx:
        try:
            await ctx["heartbeat"].remove()
        except Exception as exc:  # Redis may already be gone; the key expires by itself
            log.warning("could not deregister worker: %s", exc)
    if "stack" in ctx:
        await ctx["stack"].aclose()


def build_worker_settings(settings: Settings) -> type:
    class WorkerSettings:
        functions = [run_task]
        redis_settings = RedisSettings.from_dsn(str(settings.redis_url))
        queue_name = settings.queue_name
        max_jobs = settings.worker_concurrency
        poll_delay = settings.poll_delay
        # Our own per-type timeouts stop a task first and record why; arq's is only a backstop.
        job_timeout = max(kind.timeout for kind in TASK_TYPES.values()) + 60
        keep_result = 60
        # Cancels travel as our own pub/sub signal plus a flag (see lifecycle.request_stop): arq's
        # abort would cancel a job a second time while it records its end, and leaves entries for
        # jobs that had already finished in a set it reads on every poll.
        allow_abort_jobs = False
        job_serializer = serialize_job
        job_deserializer = deserialize_job
        on_startup = startup
        on_shutdown = shutdown
        ctx = {"settings": settings}

    return WorkerSettings


class ResilientWorker(Worker):
    """arq's worker exits on the first Redis error of its poll loop (and under honcho takes the web
    down with it); this one logs, waits with backoff and polls again once Redis is back."""

    _backoff = BACKOFF_MIN

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (RedisError, OSError) as exc:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # shutting down: redis-py may report the cancelled command as a lost connection
            log.warning("Redis unavailable (%s: %s); polling again in %.1fs", exc.__class__.__name__, exc,
                        self._backoff)
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        else:
            self._backoff = BACKOFF_MIN


def create_worker(settings: Settings, **overrides: Any) -> ResilientWorker:
    options = {**get_kwargs(build_worker_settings(settings)), "ctx": {"settings": settings}, **overrides}
    return ResilientWorker(**options)


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    create_worker(settings).run()
