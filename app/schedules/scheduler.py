"""Schedules' ticks become tasks: the loop every worker runs, and a run on demand.

Exactly once per tick, however many workers watch: the tick's task is inserted in the same
transaction as a guarded UPDATE that moves the schedule's `next_run_at` from that tick to the next.
Only one transaction can find the row still at the tick (PostgreSQL re-checks the condition after
waiting for the row's lock; SQLite lets one writer in at a time), so the others insert nothing. The
seq is taken before the transaction and published once: as the task's "created" event, or as a skip.
"""

import asyncio
import logging
from datetime import datetime

from arq.connections import ArqRedis

from app.core import keys
from app.core.clock import utcnow
from app.core.errors import OUTAGES, stop_if_cancelled
from app.core.status import Status
from app.core.wakeup import woken
from app.core.wire import ScheduleDict, TaskDict, encode_event, encode_skip, entry
from app.lifecycle.jobs import Jobs
from app.lifecycle.new_task import task_row
from app.lifecycle.publish import publish_all
from app.metrics.tally import submitted
from app.schedules.rules import following_tick
from app.store.stores import Stores

log = logging.getLogger(__name__)

# Seconds between looks at the schedules at most: the safety net, since a new or edited schedule is
# announced (CHANGED, on the control channel) and wakes the loop at once.
MAX_SLEEP = 5.0
CHANGED = "schedules"
BATCH = 100  # schedules looked at per pass, soonest first
RETRY_AFTER = 1.0  # seconds before a pass that failed (Redis or the database away) is tried again


class Scheduler:
    def __init__(self, stores: Stores, redis: ArqRedis) -> None:
        self.stores = stores
        self.schedules = stores.schedules
        self.redis = redis
        self.jobs = Jobs(redis)
        self._firing: asyncio.Future[TaskDict | None] | None = None

    async def run(self, changed: asyncio.Event) -> None:
        """Until cancelled: run the due ticks, then sleep until the next one (MAX_SLEEP at most), or
        until `changed` says a schedule was created or edited."""
        try:
            while True:
                changed.clear()  # before the pass: a change during it wakes the next wait at once
                try:
                    wait = await self.run_due()
                except OUTAGES as exc:
                    stop_if_cancelled()
                    log.warning("schedules pass failed (%s); trying again", exc)
                    wait = RETRY_AFTER
                except Exception:  # a dead loop would stop every schedule: say why and go on
                    stop_if_cancelled()
                    log.exception("schedules pass failed; trying again")
                    wait = RETRY_AFTER
                await woken(changed, wait)
        finally:
            if self._firing is not None:  # a tick half-written must end (written and published, or skipped)
                await asyncio.gather(self._firing, return_exceptions=True)

    async def run_due(self) -> float:
        """Run every due tick; the seconds until the next one (MAX_SLEEP at most)."""
        upcoming = await self.schedules.upcoming(BATCH)
        now = utcnow()
        for schedule in upcoming:
            assert schedule["next_run_at"] is not None
            tick = datetime.fromisoformat(schedule["next_run_at"])
            if tick > now:
                return min((tick - now).total_seconds(), MAX_SLEEP)
            following = following_tick(schedule["cron"], schedule["interval"], schedule["timezone"], tick, now)
            # Shielded: a worker stopping mid-tick still finishes it (run() waits for it).
            self._firing = asyncio.ensure_future(self.fire(schedule, tick, following))
            await asyncio.shield(self._firing)
            self._firing = None
        # ticks fired (their schedules' next ticks are now stored): the next pass says how long to wait
        return 0.0 if upcoming else MAX_SLEEP

    async def fire(self, schedule: ScheduleDict, tick: datetime, following: datetime | None) -> TaskDict | None:
        """The tick's task, queued; None if another process ran this tick (or it was paused or
        moved meanwhile). `following` None: a run on demand, which leaves the next tick alone."""
        row = task_row(schedule["task_type"], schedule["parameters"], {"priority": schedule["priority"]},
                       schedule_id=schedule["id"])
        origin = "run on demand" if following is None else f"tick {tick.isoformat()}"
        row.update(run_at=tick, timeline=[entry(Status.PENDING, message=f"{origin} of schedule {schedule['name']}")])
        seq = await self.redis.incr(keys.SEQ)

        async def write() -> TaskDict | None:
            if following is None:
                won = await self.schedules.record_run(schedule["id"], tick, row["id"])
            else:
                won = await self.schedules.advance(schedule["id"], tick, following, row["id"])
            return await self.stores.tasks.insert({**row, "seq": seq}) if won else None

        try:
            task = await self.stores.db.atomically(write)
        except BaseException:
            await publish_all(self.redis, [encode_skip(seq)])
            raise
        if task is None:
            await publish_all(self.redis, [encode_skip(seq)])
            return None
        try:
            await self.jobs.write([task], events=[encode_event(task, "created")], tally=submitted([task]))
        except OUTAGES as exc:
            stop_if_cancelled()
            # The task stands: the reconciler queues it, the web reads its event from the database.
            log.warning("schedule %s: task %s stored but not queued (%s)", schedule["id"], task["id"], exc)
        return task
