"""Recovery of work arq alone would leave stuck: attempts whose worker died, and queued tasks
whose arq job is gone. Every worker runs it; the guarded moves let exactly one act on a task.

arq re-runs a killed worker's job only when its lock expires (job timeout + 10 s), and never
tells us about jobs it dropped without running our code (expired, max tries, a failure before
the task was claimed). The heartbeats tell in seconds which workers are gone.
"""

import asyncio
import logging
import time
from datetime import timedelta

from app import keys
from app.attempts import Attempts
from app.errors import OUTAGES
from app.status import Status
from app.store import utcnow
from app.tasks import TASK_TYPES
from app.wire import TaskDict

log = logging.getLogger(__name__)

RECONCILE_BATCH = 1000  # queued tasks checked per reconcile pass, oldest first


async def live_worker_ids(attempts: Attempts) -> set[str]:
    members = await attempts.redis.zrangebyscore(keys.WORKERS, time.time(), "+inf")
    return {member.decode() for member in members}


class Watchdog:
    def __init__(self, attempts: Attempts, queue_name: str, *, interval: float, reconcile_every: float,
                 grace: float) -> None:
        self.attempts = attempts
        self.queue_name = queue_name
        self.interval = interval
        self.reconcile_every = reconcile_every
        self.grace = grace

    async def run(self) -> None:
        last_reconcile = 0.0
        while True:
            try:
                await self.recover_lost()
                if time.monotonic() - last_reconcile >= self.reconcile_every:
                    last_reconcile = time.monotonic()
                    await self.reconcile()
            except OUTAGES as exc:
                log.warning("watchdog pass failed (%s); trying again", exc)
            await asyncio.sleep(self.interval)

    async def recover_lost(self) -> list[TaskDict]:
        """RUNNING tasks whose worker stopped heart-beating: run again as a new attempt or fail."""
        running = await self.attempts.store.running()
        if not running:
            return []
        live = await live_worker_ids(self.attempts)
        recovered = []
        for task in running:
            if task["worker"] in live:
                continue
            reason = f"worker {task['worker']} stopped responding"
            moved = await self.attempts.recover(task, reason, TASK_TYPES[task["task_type"]].retry)
            if moved is not None:
                log.warning("task %s: %s; now %s", task["id"], reason, moved["status"])
                recovered.append(moved)
        return recovered

    async def reconcile(self) -> list[TaskDict]:
        """Queued tasks (past a grace period) whose current arq job is gone, or was taken by a worker
        that died before claiming the task (arq's lock on it would hold for the job timeout): queue
        them again as a new dispatch."""
        waiting = await self.attempts.store.waiting_since(utcnow() - timedelta(seconds=self.grace), RECONCILE_BATCH)
        if not waiting:
            return []
        async with self.attempts.redis.pipeline(transaction=False) as pipe:
            for task in waiting:
                job = keys.job_id(task["id"], task["dispatch"])
                pipe.exists(keys.ARQ_JOB_PREFIX + job)
                pipe.exists(keys.ARQ_IN_PROGRESS_PREFIX + job)
            found = await pipe.execute()
        requeued = []
        for task, queued, taken in zip(waiting, found[0::2], found[1::2], strict=True):
            if queued and not taken:
                continue
            moved = await self.attempts.requeue(task["id"], task["dispatch"], "its queued job was lost; queued again",
                                                status=Status(task["status"]))
            if moved is not None:
                log.warning("task %s: arq job %s was lost; queued again", task["id"], task["dispatch"])
                requeued.append(moved)
        return requeued
