"""Recovery of work arq alone would leave stuck: attempts whose worker died, and queued tasks
whose arq job is gone. Every worker runs it; the guarded moves let exactly one act on a task.

arq re-runs a killed worker's job only when its lock expires (job timeout + 10 s), and never
tells us about jobs it dropped without running our code (expired, max tries, a failure before
the task was claimed). The heartbeats tell in seconds which workers are gone.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from app.core import keys
from app.core.clock import utcnow
from app.core.errors import OUTAGES, stop_if_cancelled
from app.core.logs import about_task
from app.core.wire import TaskDict
from app.lifecycle.attempts import Attempts
from app.tasks import RetryPolicy, TaskType
from app.worker.heartbeat import live_workers

log = logging.getLogger(__name__)

RECONCILE_BATCH = 1000  # queued tasks checked per reconcile pass, oldest first


class Watchdog:
    def __init__(self, attempts: Attempts, types: Mapping[str, TaskType], worker_id: str,
                 running: Callable[[], list[str]], *, interval: float,
                 heartbeat_ttl: float, reconcile_every: float, grace: float, lock_ttl: float) -> None:
        self.attempts = attempts
        self.types = types
        self.worker_id = worker_id
        self.running = running  # what this worker runs now: known first-hand, not from a heartbeat
        self.lock_ttl = lock_ttl  # what arq sets its in-progress lock to: job timeout + 10 s
        self.interval = interval
        self.heartbeat_ttl = heartbeat_ttl
        self.reconcile_every = reconcile_every
        self.grace = grace
        self._redis_back = time.monotonic()  # when our passes last started succeeding again

    async def run(self) -> None:
        last_reconcile = 0.0
        failing = False
        while True:
            try:
                if failing:
                    self._redis_back, failing = time.monotonic(), False
                await self.recover_lost()
                if time.monotonic() - last_reconcile >= self.reconcile_every:
                    last_reconcile = time.monotonic()
                    await self.reconcile()
            except OUTAGES as exc:
                stop_if_cancelled()
                failing = True
                log.warning("watchdog pass failed (%s); trying again", exc)
            except Exception:  # a dead watchdog would leave stuck work stuck: say why and go on
                stop_if_cancelled()
                log.exception("watchdog pass failed; trying again")
            await asyncio.sleep(self.interval)

    def _judge(self, task: TaskDict, live: dict[str, dict[str, Any]], trust_silence: bool) -> str | None:
        """Why this RUNNING task is lost, or None if its attempt is (or may still be) running."""
        worker = task["worker"]
        quiet_for = (utcnow() - datetime.fromisoformat(task["updated_at"])).total_seconds()
        if worker == self.worker_id:
            running = task["id"] in self.running()
        elif worker in live:
            running = task["id"] in live[worker]["running"]
        else:
            # Right after an outage every heartbeat has lapsed, ours included: wait for the
            # living to beat again before calling anyone dead.
            return f"worker {worker} stopped responding" if trust_silence else None
        # A live worker that does not run it (its claim was stored, but the outcome of the claim
        # never reached it): orphaned. The grace covers a claim its heartbeat does not show yet.
        return None if running or quiet_for < self.grace else f"worker {worker} is not running it"

    async def recover_lost(self) -> list[TaskDict]:
        """RUNNING tasks whose worker stopped heart-beating (or lost track of them): run them again
        as a new attempt, or fail them when their attempts are spent."""
        running = await self.attempts.store.running()
        if not running:
            return []
        live = await live_workers(self.attempts.redis)
        trust_silence = time.monotonic() - self._redis_back >= self.heartbeat_ttl
        recovered = []
        for task in running:
            reason = self._judge(task, live, trust_silence)
            if reason is None:
                continue
            with about_task(task["id"], task["attempts"]):  # the lost attempt's lines
                # a type this worker does not serve (TASK_MODULES differ) backs off as the default does
                kind = self.types.get(task["task_type"])
                moved = await self.attempts.recover(task, reason, kind.retry if kind else RetryPolicy())
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
            for task_id, dispatch, _ in waiting:
                job = keys.job_id(task_id, dispatch)
                pipe.exists(keys.ARQ_JOB_PREFIX + job)
                pipe.pttl(keys.ARQ_IN_PROGRESS_PREFIX + job)
            found = await pipe.execute()
        requeued = []
        for (task_id, dispatch, status), queued, lock_left in zip(waiting, found[0::2], found[1::2], strict=True):
            # A busy worker may take a while from taking a job to claiming its task: only a lock
            # older than the grace period means the taker died in between.
            taken_for = self.lock_ttl - lock_left / 1000 if lock_left >= 0 else 0.0
            if queued and taken_for <= self.grace:
                continue
            with about_task(task_id):
                moved = await self.attempts.requeue(task_id, dispatch, status, "its queued job was lost; queued again")
                if moved is not None:
                    log.warning("task %s: arq job %s was lost; queued again", task_id, dispatch)
                    requeued.append(moved)
        return requeued
