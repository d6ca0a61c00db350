"""The workers' control channel: cancel signals for the tasks they run, and nudges that webhook
deliveries are due; on every (re)subscription, the cancel flags are read again for signals missed."""

import asyncio

from arq.connections import ArqRedis

from app.core import keys
from app.core.pubsub import follow
from app.lifecycle.cancel import signalled_task
from app.webhooks.hooks import NUDGE
from app.webhooks.sender import WebhookSender
from app.worker.runner import Runner


async def listen(redis: ArqRedis, runner: Runner, sender: WebhookSender | None, subscribed: asyncio.Event) -> None:
    """Until cancelled; `subscribed` is set once the first subscription is in place."""

    def on_message(channel: str, message: str | None) -> None:
        if message is None:
            return
        if message == NUDGE:
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
        subscribed.set()

    await follow(redis, [keys.CONTROL], on_message, on_subscribed=on_subscribed)
