"""arq's worker, made to survive and to idle: it waits for a wake-up (jobs due, a slot freed) instead of
polling Redis, looks at the queue and claims and reads the jobs it takes in one script, runs them
(arq's `run_job`, less what it does not use), finishes the jobs that ended together in another
script, keeps polling through a Redis outage, names each job's task on its log lines, keeps a
deferred job's priority, takes no job while its queue is paused, takes a repeated stop signal once,
and closes without aborting a job halfway."""

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any, NamedTuple

from arq.constants import retry_key_prefix
from arq.jobs import deserialize_job_raw
from arq.utils import args_to_string, ms_to_datetime, timestamp_ms, truncate
from arq.worker import Retry, Worker
from redis.commands.core import AsyncScript

from app.core import keys
from app.core.batches import Batches
from app.core.errors import OUTAGES, stop_if_cancelled
from app.core.logs import about_task
from app.core.priority import Priority, due_of, of_score
from app.core.pubsub import BACKOFF_MAX, BACKOFF_MIN
from app.core.wakeup import woken
from app.lifecycle.jobs import DELAYED

log = logging.getLogger(__name__)
arq_log = logging.getLogger("arq.worker")  # a job's start and end lines, as arq's own run_job writes them

# KEYS: the queue; ARGV: now (ms), the in-progress key's expiry (ms), the most jobs to claim, the retry
# key's expiry (s), the most due jobs to look at, then arq's in-progress, job and retry key prefixes.
# arq's look at the queue and its claim and read of a job, for the jobs of a look at once: the due
# jobs in queue order, a few per free slot at a time, and each is this worker's if no worker holds
# it (this one's own running jobs included: they stay queued until they end); then its try is
# counted and its payload read ('' once expired). arq makes a round trip per look, four per job to
# claim it (WATCH, EXISTS, ZSCORE, MULTI/EXEC) and one more to read it; the script, one per look.
# (It names keys it builds itself, as arq's own keys are named: a Redis Cluster is no arq target.)
CLAIM = """
local claimed = {}
local now, most, limit = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[5])
local n, offset, step = 0, 0, math.max(2 * most, 8)
while n < most and offset < limit do
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', offset, step)
  for i = 1, #due, 2 do
    local id, score = due[i], due[i + 1]
    local progress, tries = ARGV[6] .. id, ARGV[8] .. id
    if tonumber(score) ~= 0 and redis.call('EXISTS', progress) == 0 then
      redis.call('PSETEX', progress, ARGV[2], '1')
      local try = redis.call('INCR', tries)
      redis.call('EXPIRE', tries, ARGV[4])
      n = n + 1
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = score
      claimed[#claimed + 1] = redis.call('GET', ARGV[7] .. id) or ''
      claimed[#claimed + 1] = try
      if n >= most then break end
    end
  end
  if #due < 2 * step then break end
  offset = offset + step
end
return claimed
"""

# KEYS: the queue, then each job's in-progress, retry and job keys; ARGV: the jobs' ids. arq's finish of
# a job (a MULTI of five commands), for the jobs that ended meanwhile; no result is kept (the database
# holds the task's outcome).
FINISH = """
for i = 1, #ARGV do
  redis.call('DEL', KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1])
  redis.call('ZREM', KEYS[1], ARGV[i])
end
"""
RETRY_KEY_EXPIRY = 88400  # seconds, as arq's


class Claimed(NamedTuple):
    """A job as the claim script hands it over: its id, its banded score, its payload (b"" once
    expired) and which try this is."""

    id: str
    score: int
    payload: bytes
    try_: int


class ResilientWorker(Worker):
    """arq's worker exits on the first Redis error of its poll loop (and under honcho takes the web
    down with it); this one logs, waits with backoff and polls again once Redis is back."""

    _backoff = BACKOFF_MIN

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._claim: AsyncScript | None = None
        self._finish_script: AsyncScript | None = None
        self._finishes: Batches[str, None] = Batches(self._finish_all, "job-finisher")

    async def _look(self) -> None:
        """arq's `_poll_iteration` (burst mode and aborts aside, unused here), its read of the queue made
        by the claim script."""
        gate = self.ctx.get("gate")
        paused = gate is not None and gate.paused  # its queue is paused: the jobs wait (running ones go on)
        if self.allow_pick_jobs and self.job_counter < self.max_jobs and not paused:
            await self._claim_due()
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                task.result()  # an error of the job's run is raised here, as arq does
        await self.heart_beat()

    async def _claim_due(self) -> None:
        if self._claim is None:
            self._claim = self.pool.register_script(CLAIM)
        free = self.max_jobs - self.job_counter
        claimed = await self._claim(keys=[self.queue_name], args=[
            timestamp_ms(), int(self.in_progress_timeout_s * 1000), free, RETRY_KEY_EXPIRY,
            self.queue_read_limit + self.max_jobs, keys.ARQ_IN_PROGRESS_PREFIX, keys.ARQ_JOB_PREFIX,
            retry_key_prefix])
        for at in range(0, len(claimed), 4):
            await self.sem.acquire()  # a free slot: never waits
            self.job_counter += 1
            job = Claimed(claimed[at].decode(), int(float(claimed[at + 1])), claimed[at + 2], int(claimed[at + 3]))
            free = self._slot_freer()
            task = self.loop.create_task(self.run_claimed(job, free))
            task.add_done_callback(lambda _, free=free: free())  # type: ignore[misc]
            self.tasks[job.id] = task

    def _slot_freer(self) -> Callable[[], None]:
        """Frees a job's slot, once: when its task's code has returned (the job function says so through
        its ctx's `free_slot`: its outcome is then written while the next job starts), or when the job
        ends, whichever comes first. A slot is for running code; writing an outcome and finishing the
        job hold none, so the next job's start is written with the last one's end."""
        freed = False

        def free() -> None:
            nonlocal freed
            if not freed:
                freed = True
                self._release_sem_dec_counter_on_complete()

        return free

    async def _poll_iteration(self) -> None:
        # arq polls the queue every `poll_delay` (0 here: its loop goes round at once); after a look the
        # worker waits for a wake-up (worker/control.py: jobs due, the queue resumed, a slot freed),
        # so an idle worker costs nothing and still starts a job as soon as it is queued; at most
        # WORKER_POLL_DELAY, the safety net for a wake-up lost. Cleared before the look, so a wake-up
        # that comes during it is not lost.
        wakeups = self.ctx.get("wakeups")
        if wakeups is not None:
            wakeups.due.clear()
        try:
            await self._look()
        except OUTAGES as exc:
            stop_if_cancelled()  # shutting down: redis-py may report the cancelled command as an outage
            log.warning("Redis unavailable (%s: %s); polling again in %.1fs", exc.__class__.__name__, exc,
                        self._backoff)
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        else:
            self._backoff = BACKOFF_MIN
            safety_net = self.ctx["settings"].poll_delay
            if wakeups is None:  # before the worker's start-up made them
                await asyncio.sleep(safety_net)
                return
            await woken(wakeups.due, safety_net)

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        wakeups = self.ctx.get("wakeups")
        if wakeups is not None:
            wakeups.due.set()  # a slot is free: jobs left in the queue while the worker was full can start

    async def run_claimed(self, job: Claimed, free_slot: Callable[[], None]) -> None:
        """arq's `run_job`, for a job whose payload and try came with its claim (arq would read them in a
        MULTI of its own: one more round trip per job), and only what this worker uses of it: no aborts
        (cancels are our own signal), no results kept (the database holds the outcome), tries counted
        by our own rules (arq's cap is 10**9 here)."""
        # arq's own lines about the job (started, ended) name its task (core/keys.py: job ids are
        # <task_id>:<dispatch>); the attempt shows on them once the task claims it. The job is due at
        # its score less its priority's band (app/core/priority.py): its lateness counts from there.
        with about_task(job.id.rpartition(":")[0]):
            finish, defer_ms = await self._call(job, due_of(job.score), free_slot)
            await asyncio.shield(self._finish(job.id, of_score(job.score), finish, defer_ms))

    async def _call(self, job: Claimed, due: int, free_slot: Callable[[], None]) -> tuple[bool, int | None]:
        """Runs the job's function: whether the job is done with (else it stays queued), and in how many
        ms it is due again (arq's Retry)."""
        if not job.payload:
            arq_log.warning("job %s expired", job.id)
            return True, None
        try:
            name, args, kwargs, _, enqueued_ms = deserialize_job_raw(job.payload, deserializer=self.job_deserializer)
            function = self.functions[name]
        except Exception:
            arq_log.exception("job %s cannot be run", job.id)
            return True, None
        ref = f"{job.id}:{name}"
        ctx = {**self.ctx, "job_id": job.id, "job_try": job.try_, "enqueue_time": ms_to_datetime(enqueued_ms),
               "score": due, "free_slot": free_slot}
        start_ms = timestamp_ms()
        extra = (f" try={job.try_}" if job.try_ > 1 else "") + \
            (f" delayed={(start_ms - due) / 1000:0.2f}s" if start_ms - due > 1200 else "")
        arq_log.info("%6.2fs → %s(%s)%s", (start_ms - enqueued_ms) / 1000, ref, args_to_string(args, kwargs), extra)
        self.job_tasks[job.id] = running = self.loop.create_task(function.coroutine(ctx, *args, **kwargs))
        try:
            result = await asyncio.wait_for(running, self.job_timeout_s if function.timeout_s is None
                                            else function.timeout_s)
        except Retry as exc:  # a type this worker does not serve (worker/main.py): another may take it
            self.jobs_retried += 1
            arq_log.info("%6.2fs ↻ %s retrying job in %0.2fs", self._since(start_ms), ref,
                         (exc.defer_score or 0) / 1000)
            return False, exc.defer_score or 0
        except asyncio.CancelledError:  # the worker stops: the job stays queued for the next one
            self.jobs_retried += 1
            arq_log.info("%6.2fs ↻ %s cancelled, will be run again", self._since(start_ms), ref)
            return False, None
        except Exception as exc:
            self.jobs_failed += 1
            arq_log.exception("%6.2fs ! %s failed, %s: %s", self._since(start_ms), ref, exc.__class__.__name__, exc)
            return True, None
        finally:
            del self.job_tasks[job.id]
        self.jobs_complete += 1
        if arq_log.isEnabledFor(logging.INFO):
            shown = "" if result is None or not self.log_results else truncate(repr(result))
            arq_log.info("%6.2fs ← %s ● %s", self._since(start_ms), ref, shown)
        return True, None

    @staticmethod
    def _since(start_ms: int) -> float:
        return (timestamp_ms() - start_ms) / 1000

    async def _finish(self, job_id: str, priority: Priority, finish: bool, defer_ms: int | None) -> None:
        if finish:
            # Jobs end in groups (their tasks' ends are written together: lifecycle/groups.py), and the
            # jobs that end while one finish is in flight go in the next, in one round trip
            return await self._finishes.add(job_id)
        if defer_ms is None:  # left queued: the next look (of any worker) takes it
            await self.pool.delete(keys.ARQ_IN_PROGRESS_PREFIX + job_id)
            return
        # Due again in `defer_ms`: arq would move it there in the queue, out of its priority's band; it
        # waits in its priority's delayed set instead, and the workers move it back into its band when
        # it is due.
        async with self.pool.pipeline(transaction=True) as tr:
            tr.zrem(self.queue_name, job_id)
            tr.zadd(keys.delayed_key(self.queue_name, priority), {job_id: timestamp_ms() + defer_ms})
            tr.delete(keys.ARQ_IN_PROGRESS_PREFIX + job_id)
            tr.publish(keys.CONTROL, DELAYED)  # the workers' promoters look again (lifecycle/jobs.py)
            await tr.execute()

    async def _finish_all(self, ids: list[str]) -> list[None]:
        if self._finish_script is None:
            self._finish_script = self.pool.register_script(FINISH)
        await self._finish_script(keys=[self.queue_name, *(key + job_id for job_id in ids for key in (
            keys.ARQ_IN_PROGRESS_PREFIX, retry_key_prefix, keys.ARQ_JOB_PREFIX))], args=ids)
        return [None] * len(ids)

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
