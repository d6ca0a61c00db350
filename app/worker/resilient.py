"""arq's worker, made to survive and to idle: it waits for a wake-up (jobs due, a slot freed) instead of
polling Redis, claims the jobs of a look in one script and finishes a job in another, keeps polling
through a Redis outage, names each job's task on its log lines, keeps a deferred job's priority,
takes no job while its queue is paused, takes a repeated stop signal once, and closes without
aborting a job halfway."""

import asyncio
import logging
import signal
from typing import Any

from arq.constants import abort_jobs_ss, result_key_prefix, retry_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker
from redis.commands.core import AsyncScript

from app.core import keys
from app.core.errors import OUTAGES
from app.core.logs import about_task
from app.core.priority import Priority, due_of, of_score
from app.core.pubsub import BACKOFF_MAX, BACKOFF_MIN
from app.core.wakeup import woken
from app.lifecycle.jobs import DELAYED

log = logging.getLogger(__name__)

# KEYS: the queue, then each candidate job's in-progress key; ARGV: now (ms), the in-progress key's expiry
# (ms), the most jobs to claim, then the candidates' ids. arq's own claim, for many jobs at once: a job
# is this worker's if no worker holds it and it is still queued and due; arq makes four round trips
# per job for it (WATCH, EXISTS, ZSCORE, MULTI/EXEC), a script is atomic in one.
CLAIM = """
local claimed = {}
local now, most = tonumber(ARGV[1]), tonumber(ARGV[3]) * 2
for i = 2, #KEYS do
  if #claimed >= most then break end
  if redis.call('EXISTS', KEYS[i]) == 0 then
    local score = redis.call('ZSCORE', KEYS[1], ARGV[i + 2])
    if score and tonumber(score) ~= 0 and tonumber(score) <= now then
      redis.call('PSETEX', KEYS[i], ARGV[2], '1')
      claimed[#claimed + 1] = ARGV[i + 2]
      claimed[#claimed + 1] = score
    end
  end
end
return claimed
"""

# KEYS: the job's in-progress, retry, job and result keys, arq's abort set, the queue; ARGV: the result,
# its expiry (ms), the job id. arq's finish of a job that ran (a MULTI of five commands), in one.
FINISH = """
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[3])
redis.call('ZREM', KEYS[6], ARGV[3])
"""


class ResilientWorker(Worker):
    """arq's worker exits on the first Redis error of its poll loop (and under honcho takes the web
    down with it); this one logs, waits with backoff and polls again once Redis is back."""

    _backoff = BACKOFF_MIN

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._taken: dict[str, tuple[Priority, int]] = {}  # each running job's priority and due time (ms)
        self._claim: AsyncScript | None = None
        self._finish: AsyncScript | None = None

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        gate = self.ctx.get("gate")
        if gate is not None and gate.paused:  # its queue is paused: the jobs wait (running ones go on)
            return
        if self._claim is None:
            self._claim = self.pool.register_script(CLAIM)
        # The look's jobs less those this worker runs (they stay queued until they end), offered in
        # chunks of a few per free slot: a deep queue's tail is not sent back to Redis on every look,
        # and jobs other workers hold move the claim on to the next chunk.
        candidates = [job_id for raw in job_ids
                      if (running := self.tasks.get(job_id := raw.decode())) is None or running.done()]
        free = self.max_jobs - self.job_counter
        step = max(2 * free, 8)
        for start in range(0, len(candidates), step):
            if free <= 0:
                return
            ids = candidates[start:start + step]
            claimed = await self._claim(
                keys=[self.queue_name, *(keys.ARQ_IN_PROGRESS_PREFIX + job_id for job_id in ids)],
                args=[timestamp_ms(), int(self.in_progress_timeout_s * 1000), free, *ids])
            for raw_id, score in zip(claimed[::2], claimed[1::2]):
                await self.sem.acquire()  # a free slot: never waits
                self.job_counter += 1
                free -= 1
                job_id = raw_id.decode()
                task = self.loop.create_task(self.run_job(job_id, int(float(score))))
                task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
                self.tasks[job_id] = task

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

    async def run_job(self, job_id: str, score: int) -> None:
        # arq's own lines about the job (started, ended, expired) name its task (core/keys.py: job ids
        # are <task_id>:<dispatch>); the attempt shows on them once the task claims it.
        # arq is told the time the job was due, not its banded score (app/core/priority.py): it logs
        # how late a job starts from it, and adds a deferred job's delay to it.
        self._taken[job_id] = of_score(score), due_of(score)
        try:
            with about_task(job_id.rpartition(":")[0]):
                await super().run_job(job_id, due_of(score))
        finally:
            del self._taken[job_id]

    async def finish_job(self, job_id: str, finish: bool, result_data: bytes | None, result_timeout_s: float | None,
                         keep_result_forever: bool, incr_score: int | None, keep_in_progress: float | None) -> None:
        if finish and result_data and result_timeout_s and not keep_result_forever and keep_in_progress is None:
            if self._finish is None:
                self._finish = self.pool.register_script(FINISH)
            await self._finish(keys=[keys.ARQ_IN_PROGRESS_PREFIX + job_id, retry_key_prefix + job_id,
                                     keys.ARQ_JOB_PREFIX + job_id, result_key_prefix + job_id, abort_jobs_ss,
                                     self.queue_name],
                               args=[result_data, int(result_timeout_s * 1000), job_id])
            return None
        if finish or not incr_score:
            return await super().finish_job(job_id, finish, result_data, result_timeout_s, keep_result_forever,
                                            incr_score, keep_in_progress)
        # A deferred job (arq's Retry: a type this worker does not serve), due again at now + its delay
        # (arq's incr_score counts from the due time it was given). arq would move it there in the
        # queue, out of its priority's band; it waits in its priority's delayed set instead, and the
        # workers move it back into its band when it is due.
        priority, due = self._taken[job_id]
        async with self.pool.pipeline(transaction=True) as tr:
            tr.zrem(self.queue_name, job_id)
            tr.zadd(keys.delayed_key(self.queue_name, priority), {job_id: due + incr_score})
            tr.delete(keys.ARQ_IN_PROGRESS_PREFIX + job_id)
            tr.publish(keys.CONTROL, DELAYED)  # the workers' promoters look again (lifecycle/jobs.py)
            await tr.execute()

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
