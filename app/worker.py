"""The arq side: `WorkerSettings`, the one job function `run_task`, and the worker's resources."""

import asyncio
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, get_kwargs

from app import keys
from app.attempts import Attempts
from app.changes import Changes
from app.connections import deserialize_job, serialize_job
from app.errors import OUTAGES
from app.figures import sample_depth_forever
from app.heartbeat import Heartbeat
from app.jobs import promote_forever
from app.logs import about_task, configure_logging
from app.newtask import TIMEOUT
from app.pubsub import BACKOFF_MAX, BACKOFF_MIN, follow
from app.retention import retain_forever
from app.runner import Runner
from app.scheduler import Scheduler
from app.settings import Settings, load_settings
from app.store import TaskStore
from app.tasks import configure
from app.tasks.base import TaskType
from app.uploads import upload_store
from app.watchdog import Watchdog
from app.webhook_sender import WebhookSender
from app.webhooks import NUDGE, Hooks, check_settings

log = logging.getLogger(__name__)



def arq_job_timeout(types: Mapping[str, TaskType]) -> float:
    """arq's time limit: our own limits (per type, or per task up to TIMEOUT.maximum) stop a task
    first and record why; arq's only backs them up, so it must never come first."""
    return max(TIMEOUT.maximum, *(kind.timeout for kind in types.values())) + 60


async def run_task(ctx: dict[str, Any], task_id: str, dispatch: int) -> dict[str, Any]:
    runner: Runner = ctx["runner"]
    return await runner.run(task_id, dispatch)


def _on_control(runner: Runner, sender: WebhookSender | None, channel: str, message: str | None) -> None:
    if message is None:
        return
    if message == NUDGE:
        if sender is not None:
            sender.wake()
        return
    command, _, task_id = message.partition("|")
    if command == "cancel":
        runner.cancel(task_id)


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    stack = ctx["stack"] = AsyncExitStack()
    store = await stack.enter_async_context(TaskStore.open(str(settings.database_url)))
    redis = ctx["redis"]
    changes = ctx["changes"] = Changes(store, redis, Hooks.from_settings(settings))
    await changes.sync_seq()
    attempts = Attempts(changes)
    types = configure(settings.task_timeouts, settings.task_max_attempts)
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    runner = ctx["runner"] = Runner(attempts, types, upload_store(settings), worker_id, settings)
    watchdog = ctx["watchdog"] = Watchdog(
        attempts, types, worker_id, runner.running, interval=settings.watchdog_interval,
        heartbeat_ttl=settings.heartbeat_ttl, reconcile_every=settings.reconcile_interval,
        grace=settings.reconcile_grace, lock_ttl=arq_job_timeout(types) + 10,
    )
    heartbeat = ctx["heartbeat"] = Heartbeat(
        redis, worker_id,
        {"id": worker_id, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
         "queues": [settings.queue_name], "concurrency": settings.worker_concurrency},
        interval=settings.heartbeat_interval, ttl=settings.heartbeat_ttl, running=runner.running,
        counts=runner.counts,
    )
    await heartbeat.beat()
    subscribed = asyncio.Event()
    # Only a worker that can sign sends webhooks (app/webhooks.py); without WEBHOOK_SECRET they wait for one that can.
    sender = WebhookSender(changes.webhooks, worker_id, settings) if settings.webhook_secret else None

    async def on_subscribed() -> None:
        # Signals sent while the subscription was down are lost: look at the flags instead.
        for task_id in runner.running():
            if await redis.exists(keys.cancel_key(task_id)):
                runner.cancel(task_id)
        if sender is not None:
            sender.wake()  # and at the outbox, for nudges missed
        subscribed.set()

    ctx["background"] = [
        asyncio.create_task(heartbeat.run(), name="heartbeat"),
        asyncio.create_task(watchdog.run(), name="watchdog"),
        asyncio.create_task(promote_forever(changes.jobs), name="promote-due"),
        asyncio.create_task(sample_depth_forever(redis, store, settings.queue_name), name="queue-depth-sample"),
        asyncio.create_task(Scheduler(store, redis).run(), name="schedules"),
        asyncio.create_task(
            follow(redis, [keys.CONTROL], lambda channel, m: _on_control(runner, sender, channel, m),
                   on_subscribed=on_subscribed),
            name="control-listener",
        ),
    ]
    if sender is not None:
        ctx["background"].append(asyncio.create_task(sender.run(), name="webhooks"))
    if settings.retention_days > 0:
        ctx["background"].append(asyncio.create_task(
            retain_forever(changes, settings.data_dir, settings.retention_days, settings.retention_interval),
            name="retention"))
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
    if "changes" in ctx:
        await ctx["changes"].drain()
    if "stack" in ctx:
        await ctx["stack"].aclose()


def build_worker_settings(settings: Settings) -> type:
    check_settings(settings)  # refuses, at start, a global webhook that could not be signed
    types = configure(settings.task_timeouts, settings.task_max_attempts)

    class WorkerSettings:
        functions = [run_task]
        redis_settings = RedisSettings.from_dsn(str(settings.redis_url))
        queue_name = settings.queue_name
        max_jobs = settings.worker_concurrency
        poll_delay = settings.poll_delay
        job_timeout = arq_job_timeout(types)
        keep_result = 60
        # On SIGTERM/SIGINT: take no new job, let running ones finish for this long, then hand the
        # rest back to the queue as new attempts (honcho kills after 5 s: the default leaves room).
        job_completion_wait = settings.shutdown_grace
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
        except OUTAGES as exc:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # shutting down: redis-py may report the cancelled command as a lost connection
            log.warning("Redis unavailable (%s: %s); polling again in %.1fs", exc.__class__.__name__, exc,
                        self._backoff)
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        else:
            self._backoff = BACKOFF_MIN

    async def run_job(self, job_id: str, score: int) -> None:
        # arq's own lines about the job (started, ended, expired) name its task (app/keys.py: job ids
        # are <task_id>:<dispatch>); the attempt shows on them once the task claims it.
        with about_task(job_id.rpartition(":")[0]):
            await super().run_job(job_id, score)

    def handle_sig_wait_for_completion(self, signum: signal.Signals) -> None:
        # The same stop often arrives twice (honcho signals the process group, and app.respawn
        # passes its own on): the first starts the graceful stop, a repeat must not start another.
        if self.allow_pick_jobs:
            super().handle_sig_wait_for_completion(signum)

    async def close(self) -> None:
        """arq's close, except that a job cancelled at shutdown does not abort it halfway (arq
        gathers the jobs without `return_exceptions`, so one CancelledError skips on_shutdown and
        leaves the pool open)."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:
            return
        # The poll loop may be inside a Redis pipeline when it is cancelled: let it leave it before
        # the pool closes under it (else the pipeline's connection is left unreleased).
        await asyncio.gather(*self.tasks.values(), *([self.main_task] if self.main_task else []),
                             return_exceptions=True)
        await self.pool.delete(self.health_check_key)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        await self.pool.aclose(close_connection_pool=True)
        self._pool = None


def create_worker(settings: Settings, **overrides: Any) -> ResilientWorker:
    options = {**get_kwargs(build_worker_settings(settings)), "ctx": {"settings": settings}, **overrides}
    return ResilientWorker(**options)


def main() -> None:
    settings = load_settings()
    configure_logging(settings, "worker")
    create_worker(settings).run()
