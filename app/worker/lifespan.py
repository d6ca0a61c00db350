"""A worker process's resources and background loops, opened by arq's `on_startup` and closed by its
`on_shutdown`: the stores, the runner, heartbeat, watchdog, due jobs, queue-depth samples, schedules,
the control channel, webhook sending, retention and upload expiry."""

import asyncio
import logging
import os
import socket
import time
import uuid
from contextlib import AsyncExitStack
from typing import Any

from app.core.errors import cancelled
from app.lifecycle.attempts import Attempts
from app.lifecycle.changes import Changes
from app.lifecycle.jobs import promote_forever
from app.metrics.figures import sample_depth_forever
from app.schedules.scheduler import Scheduler
from app.settings import Settings
from app.store.stores import open_stores
from app.store.uploads import upload_store
from app.webhooks.hooks import Hooks
from app.webhooks.sender import WebhookSender
from app.worker import control
from app.worker.heartbeat import Heartbeat
from app.worker.retention import expire_uploads_forever, retain_forever
from app.worker.runner import Runner
from app.worker.watchdog import Watchdog

log = logging.getLogger(__name__)


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    stack = ctx["stack"] = AsyncExitStack()
    stores = await stack.enter_async_context(open_stores(str(settings.database_url)))
    redis = ctx["redis"]
    changes = ctx["changes"] = Changes(stores, redis, Hooks.from_settings(settings))
    await changes.sync_seq()
    attempts = Attempts(changes)
    types = ctx["types"]
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # report.data_dir, the tasks' own working folder
    runner = ctx["runner"] = Runner(attempts, types, upload_store(settings), worker_id, settings)
    watchdog = ctx["watchdog"] = Watchdog(
        attempts, types, worker_id, runner.running, interval=settings.watchdog_interval,
        heartbeat_ttl=settings.heartbeat_ttl, reconcile_every=settings.reconcile_interval,
        grace=settings.reconcile_grace, lock_ttl=ctx["job_timeout"] + 10,
    )
    heartbeat = ctx["heartbeat"] = Heartbeat(
        redis, worker_id,
        {"id": worker_id, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
         "queues": [settings.queue_name], "concurrency": settings.worker_concurrency, "task_types": list(types)},
        interval=settings.heartbeat_interval, ttl=settings.heartbeat_ttl, running=runner.running,
        counts=runner.counts,
    )
    await heartbeat.beat()
    subscribed = asyncio.Event()
    ctx["gate"] = control.Gate()  # the worker takes no job while its queue is paused
    wakeups = ctx["wakeups"] = control.Wakeups()  # what the worker's waiting loops wait for
    # Only a worker that can sign sends webhooks (webhooks/hooks.py); without WEBHOOK_SECRET they wait for one that can.
    sender = WebhookSender(stores.webhooks, worker_id, settings) if settings.webhook_secret else None
    ctx["background"] = [
        asyncio.create_task(heartbeat.run(), name="heartbeat"),
        asyncio.create_task(watchdog.run(), name="watchdog"),
        asyncio.create_task(promote_forever(changes.jobs, wakeups.delayed), name="promote-due"),
        asyncio.create_task(sample_depth_forever(redis, stores.tasks, settings.queue_name), name="queue-depth-sample"),
        asyncio.create_task(Scheduler(stores, redis).run(wakeups.schedules), name="schedules"),
        asyncio.create_task(control.listen(redis, runner, sender, ctx["gate"], wakeups, settings.queue_name,
                                           subscribed), name="control-listener"),
    ]
    if sender is not None:
        ctx["background"].append(asyncio.create_task(sender.run(), name="webhooks"))
    uploads = upload_store(settings)
    if settings.retention_days > 0:
        ctx["background"].append(asyncio.create_task(retain_forever(
            changes, settings.data_dir, uploads, types, settings.retention_days, settings.retention_interval),
            name="retention"))
    # Always: UPLOAD_EXPIRY=0 keeps unused uploads, but half-written ones would hold their quota for ever.
    ctx["background"].append(asyncio.create_task(expire_uploads_forever(
        stores.upload_refs, uploads, settings.upload_expiry, settings.retention_interval), name="upload-expiry"))
    await asyncio.wait_for(subscribed.wait(), 10)
    log.info("worker %s ready", worker_id)


async def shutdown(ctx: dict[str, Any]) -> None:
    await cancelled(ctx.get("background", []))
    if "heartbeat" in ctx:
        try:
            await ctx["heartbeat"].remove()
        except Exception as exc:  # Redis may already be gone; the key expires by itself
            log.warning("could not deregister worker: %s", exc)
    if "changes" in ctx:
        await ctx["changes"].drain()
    if "stack" in ctx:
        await ctx["stack"].aclose()
