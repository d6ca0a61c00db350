"""The `email_simulation` task: builds one real message per recipient and delivers it into a Maildir."""

import asyncio
import mailbox
import random
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from app.params import Float, Int, Str
from app.tasks.base import Reporter, TaskType

SENDER = "Task Queue <noreply@example.test>"
MAX_LISTED = 100


def recipient(number: int) -> str:
    return f"user{number}@example.test"


def build_message(task_id: str, number: int, total: int, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = recipient(number)
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    # an explicit domain: without it make_msgid asks DNS for this host's name, which can stall
    message["Message-ID"] = make_msgid(idstring=f"{task_id}.{number}", domain="example.test")
    message.set_content(
        f"Hello user {number},\n\n"
        f"this is message {number} of {total}, sent to {recipient(number)} by task {task_id}.\n\n"
        "-- \nThe task queue\n"
    )
    return message


def open_maildir(path: Path) -> mailbox.Maildir:
    path.parent.mkdir(parents=True, exist_ok=True)  # Maildir creates its own folder, not its parents
    return mailbox.Maildir(path, create=True)


def failures(count: int, rate: float, seed: int) -> list[bool]:
    """Which recipients' deliveries fail: the same for the same seed, rate and count."""
    rng = random.Random(seed)
    return [rng.random() < rate for _ in range(count)]


async def run(params: dict[str, Any], report: Reporter) -> dict[str, Any]:
    total: int = params["recipient_count"]
    delay: float = params["delay_per_email"]
    path = report.data_dir / "mail"
    maildir = await asyncio.to_thread(open_maildir, path)
    fails = failures(total, params["failure_rate"], params["seed"])
    outcomes: list[dict[str, Any]] = []
    size = 0
    start = time.monotonic()
    for number in range(1, total + 1):
        await report(100 * (number - 1) / total, f"sending {number}/{total}")
        if fails[number - 1]:
            outcomes.append({"recipient": recipient(number), "status": "failed",
                             "error": "simulated 550: mailbox unavailable"})
        else:
            message = build_message(report.task_id, number, total, params["subject"])
            data = message.as_bytes()
            await asyncio.to_thread(maildir.add, data)
            size += len(data)
            outcomes.append({"recipient": recipient(number), "status": "sent",
                             "message_id": message["Message-ID"], "bytes": len(data)})
        # the delay is a minimum pace per e-mail: sleep only what building and delivering did not take
        await asyncio.sleep(max(0.0, start + number * delay - time.monotonic()))
    await report(100, "done")
    sent = sum(1 for outcome in outcomes if outcome["status"] == "sent")
    return {
        "sent": sent,
        "failed": total - sent,
        "recipients": outcomes[:MAX_LISTED],
        "recipients_truncated": total > MAX_LISTED,
        "maildir": str(path),
        "total_bytes": size,
    }


TASK_TYPE = TaskType(
    name="email_simulation",
    description="Builds a personalised e-mail per recipient and delivers it into a local Maildir.",
    params={
        "recipient_count": Int(10, minimum=1, maximum=10_000, description="Recipients to send to."),
        "delay_per_email": Float(0.1, minimum=0.0, maximum=10.0, description="Minimum seconds per e-mail."),
        "subject": Str("Hello from the task queue", max_length=200, description="Subject line."),
        "failure_rate": Float(0.0, minimum=0.0, maximum=1.0,
                              description="Share of deliveries that fail (simulated, chosen by seed)."),
        "seed": Int(42, minimum=0, maximum=2**31 - 1, description="Seed choosing which deliveries fail."),
    },
    run=run,
    timeout=3600.0,
)
