"""arq's worker, made to survive: it keeps polling through a Redis outage, names each job's task on
its log lines, takes a repeated stop signal once, and closes without aborting a job halfway."""

import asyncio
import logging
import signal

from arq.worker import Worker

from app.core.errors import OUTAGES
from app.core.logs import about_task
from app.core.pubsub import BACKOFF_MAX, BACKOFF_MIN

log = logging.getLogger(__name__)


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
        # arq's own lines about the job (started, ended, expired) name its task (core/keys.py: job ids
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
