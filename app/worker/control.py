"""The workers' control channel: cancel signals for the tasks they run, the queue paused or resumed,
and nudges that webhook deliveries are due; on every (re)subscription, the cancel flags and the pause
are read again for signals missed."""

import asyncio

from arq.connections import ArqRedis

from app.core import keys
from app.core.pubsub import follow
from app.lifecycle.cancel import signalled_task
from app.lifecycle.pause import PAUSE, RESUME
from app.webhooks.hooks import NUDGE
from app.webhooks.sender import WebhookSender
from app.worker.runner import Runner


class Gate:
    """Whether the worker may take jobs: closed while its queue is paused (worker/resilient.py)."""

    paused = False


async def listen(redis: ArqRedis, runner: Runner, sender: WebhookSender | None, gate: Gate, queue: str,
                 subscribed: asyncio.Event) -> None:
    """Until cancelled; `subscribed` is set once the first subscription is in place."""

    def on_message(channel: str, message: str | None) -> None:
        if message is None:
            return
        if message in (PAUSE, RESUME):
            gate.paused = message == PAUSE
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
        subscribed.set()

    await follow(redis, [keys.CONTROL], on_message, on_subscribed=on_subscribed)
