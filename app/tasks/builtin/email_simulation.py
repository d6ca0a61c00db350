"""The `email_simulation` task: builds a real message per recipient, delivered over SMTP or into a Maildir."""

import asyncio
import random
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Annotated, Any

from pydantic import Field

from app.store import artifacts
from app.tasks import Line, Reporter, TransientError, task
from app.tasks.builtin.mailers import MaildirMailer, Mailer, SentJournal, SmtpMailer
from app.tasks.builtin.pacing import Pace

SENDER = "Task Queue <noreply@example.test>"
MAX_LISTED = 100


def recipient(number: int) -> str:
    return f"user{number}@example.test"


def message_id(task_id: str, number: int) -> str:
    """The same for every attempt of a task: a receiver that deduplicates by Message-ID drops a repeat."""
    return f"<{task_id}.{number}@example.test>"


def build_message(task_id: str, number: int, total: int, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = recipient(number)
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message["Message-ID"] = message_id(task_id, number)
    message.set_content(
        f"Hello user {number},\n\n"
        f"this is message {number} of {total}, sent to {recipient(number)} by task {task_id}.\n\n"
        "-- \nThe task queue\n"
    )
    return message


def failures(count: int, rate: float, seed: int) -> list[bool]:
    """Which recipients' deliveries fail: the same for the same seed, rate and count."""
    rng = random.Random(seed)
    return [rng.random() < rate for _ in range(count)]


def build_and_deliver(mailer: Mailer, journal: SentJournal, task_id: str, number: int, total: int,
                      subject: str) -> dict[str, Any]:
    """Off the event loop, building included: the email package takes milliseconds per message. A delivery
    is journalled in the same thread call, the moment the server has it, before the journal can close."""
    message = build_message(task_id, number, total, subject)
    with journal.writing:
        outcome = mailer.deliver(message)
        if outcome["status"] == "sent":
            journal.record(number, outcome["bytes"])
    return {**outcome, "message_id": message["Message-ID"]}


def close_both(mailer: Mailer, journal: SentJournal) -> None:
    mailer.close()
    journal.close()


def open_journal(report: Reporter) -> SentJournal:
    return SentJournal(artifacts.state_directory(report.data_dir, report.task_id) / "mail.sent")


def open_mailer(report: Reporter) -> Mailer:
    if report.smtp_url:
        return SmtpMailer(report.smtp_url)
    return MaildirMailer(report.data_dir / "mail")


def outcome_line(outcome: dict[str, Any]) -> str:
    if outcome.get("earlier_attempt"):
        return f"{outcome['recipient']}: sent by an earlier attempt, not sent again"
    if outcome["status"] == "sent":
        answer = f" ({outcome['code']} {outcome['answer']})" if "code" in outcome else ""
        return f"{outcome['recipient']}: sent{answer}"
    code = f"{outcome['code']} " if "code" in outcome else ""
    return f"{outcome['recipient']}: failed: {code}{outcome['error']}"


async def send_all(mailer: Mailer, journal: SentJournal, report: Reporter, *, total: int, subject: str,
                   failure_rate: float, seed: int, delay: float) -> list[dict[str, Any]]:
    fails = failures(total, failure_rate, seed)
    outcomes: list[dict[str, Any]] = []
    # the delay is a minimum pace per e-mail: building and delivering count towards it
    pace = Pace(total * delay)
    for number in range(1, total + 1):
        stage = f"sending {number}/{total}"
        await report(100 * (number - 1) / total, stage)
        if number in journal.sent:
            outcome = {"status": "sent", "bytes": journal.sent[number], "earlier_attempt": True,
                       "message_id": message_id(report.task_id, number)}
        elif fails[number - 1]:
            outcome = {"status": "failed", "error": "simulated failure (failure_rate), not sent"}
        else:
            outcome = await asyncio.to_thread(build_and_deliver, mailer, journal, report.task_id, number, total,
                                              subject)
        outcomes.append({"recipient": recipient(number), **outcome})
        await report.log(outcome_line(outcomes[-1]))
        await pace.wait(number / total, lambda share: report(100 * share, stage))
    return outcomes


class DeliveryFailed(Exception):
    """Not one e-mail of the run went out: the attempt fails (a run that sent some succeeds, its
    failures counted in the result)."""


class DeliveryDeferred(DeliveryFailed, TransientError):
    """Not one e-mail went out, and the server refused each only for now (4xx: greylisting, a full
    queue, a rate limit): the task is tried again with backoff. Nothing was sent, so nobody gets one twice."""


def all_failed(outcomes: list[dict[str, Any]]) -> DeliveryFailed:
    count = f"all {len(outcomes)} e-mails" if len(outcomes) > 1 else "the e-mail"
    error = DeliveryDeferred if all(400 <= outcome.get("code", 0) < 500 for outcome in outcomes) else DeliveryFailed
    return error(f"{count} failed: {outcome_line(outcomes[0])}")


@task(timeout=3600.0)
async def email_simulation(
    report: Reporter,
    recipient_count: Annotated[int, Field(ge=1, le=10_000, description="Recipients to send to.")] = 10,
    delay_per_email: Annotated[float, Field(ge=0.0, le=10.0, description="Minimum seconds per e-mail.")] = 0.1,
    subject: Annotated[Line, Field(max_length=200, description="Subject line.")] = "Hello from the task queue",
    failure_rate: Annotated[float, Field(ge=0.0, le=1.0, description="Share of deliveries that fail (simulated, "
                                                                      "chosen by seed).")] = 0.0,
    seed: Annotated[int, Field(ge=0, le=2**31 - 1, description="Seed choosing which deliveries fail.")] = 42,
) -> dict[str, Any]:
    """Builds a personalised e-mail per recipient and delivers it over SMTP (SMTP_URL) or into a local
    Maildir; per-recipient outcome."""
    mailer = await asyncio.to_thread(open_mailer, report)
    journal = await asyncio.to_thread(open_journal, report)
    try:
        outcomes = await send_all(mailer, journal, report, total=recipient_count, subject=subject,
                                  failure_rate=failure_rate, seed=seed, delay=delay_per_email)
    finally:
        # not awaited: after a cancel a delivery may still be running in its thread, and close waits for it
        # (the journal after the mailer: that delivery is still journalled)
        asyncio.get_running_loop().run_in_executor(None, close_both, mailer, journal)
    sent = [outcome for outcome in outcomes if outcome["status"] == "sent"]
    await report.log(f"{len(sent)} sent, {len(outcomes) - len(sent)} failed")
    # every e-mail was tried: the bar of a run that failed them all stands at its end too
    await report(100, "done" if sent else "every e-mail failed")
    if not sent:
        raise all_failed(outcomes)
    return {
        **mailer.describe(),
        "sent": len(sent),
        "failed": len(outcomes) - len(sent),
        "recipients": outcomes[:MAX_LISTED],
        "recipients_truncated": len(outcomes) > MAX_LISTED,
        "total_bytes": sum(outcome["bytes"] for outcome in sent),
    }
