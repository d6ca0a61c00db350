"""The workers' control channel: cancel signals for the tasks they run, the queue paused or resumed,
wake-ups (jobs due in the queue, a new delayed job) and nudges that webhook deliveries are due; on
every (re)subscription, the cancel flags and the pause are read again and the waiting loops woken,
for signals missed."""

import asyncio

from arq.connections import ArqRedis

from app.core import keys
from app.core.pubsub import follow
from app.lifecycle.cancel import signalled_task
from app.lifecycle.jobs import DELAYED, DUE
from app.lifecycle.pause import PAUSE, RESUME
from app.schedules.scheduler import CHANGED
from app.webhooks.hooks import NUDGE
from app.webhooks.sender import WebhookSender
from app.worker.runner import Runner


class Gate:
    """Whether the worker may take jobs: closed while its queue is paused (worker/resilient.py)."""

    paused = False


class Wakeups:
    """What a waiting worker's loops wait for instead of polling Redis: `due`, jobs to take from the
    queue (or a slot freed to take them: worker/resilient.py), `delayed`, a delayed job that may
    fall due before the promoter's next look (lifecycle/jobs.py promote_forever), and `schedules`, a
    schedule created or edited (schedules/scheduler.py)."""

    def __init__(self) -> None:
        self.due = asyncio.Event()
        self.delayed = asyncio.Event()
        self.schedules = asyncio.Event()

    def all(self) -> None:
        for event in (self.due, self.delayed, self.schedules):
            event.set()


async def listen(redis: ArqRedis, runner: Runner, sender: WebhookSender | None, gate: Gate, wakeups: Wakeups,
                 queue: str, subscribed: asyncio.Event) -> None:
    """Until cancelled; `subscribed` is set once the first subscription is in place."""

    def on_message(channel: str, message: str | None) -> None:
        if message is None:
            return
        if message == DUE:
            wakeups.due.set()
        elif message == DELAYED:
            wakeups.delayed.set()
        elif message == CHANGED:
            wakeups.schedules.set()
        elif message in (PAUSE, RESUME):
            gate.paused = message == PAUSE
            if not gate.paused:
                wakeups.due.set()  # the jobs that waited meanwhile
        elif message == NUDGE:
            if sender is not None:
                sender.wake()
        elif (task_id := signalled_task(message)) is not None:
            runner.cancel(task_id)

    async def on_subscribed() -> None:
        # Signals sent while the subscription was down are lost: look at the flags instead.
        for task_id in runner.running():
            if await redis.exists(keys.cancel_key(task_id)):
                runner.cancel(task_id)
        if sender is not None:
            sender.wake()  # and at the outbox, for nudges missed
        gate.paused = bool(await redis.exists(keys.paused_key(queue)))
        wakeups.all()  # and at the queue and the delayed sets, for wake-ups missed
        subscribed.set()

    await follow(redis, [keys.CONTROL], on_message, on_subscribed=on_subscribed)
