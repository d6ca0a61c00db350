"""E-mail once per recipient across attempts: a real worker process SIGKILLed while it sends to a real
SMTP server (aiosmtpd), the task recovered by another worker; nobody gets the message twice."""

from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest

from tests.support.processes import process_env, workers
from tests.support.servers import make_settings, served
from tests.support.smtp import Collector, smtp_servers
from tests.support.waits import wait_for_status, wait_until

COUNT = 30


@pytest.mark.timeout(120)
async def test_a_worker_killed_mid_run_leaves_no_recipient_with_two_messages(
        redis_url: str, db_url: str, tmp_path: Path) -> None:
    handler = Collector()
    start_smtp = smtp_servers()
    smtp = next(start_smtp)(handler)
    env = process_env(redis_url, db_url, tmp_path / "data", SMTP_URL=f"smtp://{smtp}")
    settings = make_settings(redis_url, db_url, tmp_path / "data")
    try:
        async with served(settings) as address, httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
            with workers(env, tmp_path) as pool:
                first = pool.start()
                body = {"task_type": "email_simulation", "max_attempts": 3,
                        "parameters": {"recipient_count": COUNT, "delay_per_email": 0.1}}
                task = (await client.post("/api/tasks/submit", json=body)).json()
                await wait_until(lambda: len(handler.envelopes) >= COUNT // 3, "a third delivered", timeout=30)
                pool.kill(first)  # SIGKILL mid-run: a third or so delivered
                delivered_before = len(handler.envelopes)
                pool.start()
                done = await wait_for_status(client, task["id"], {"SUCCESS", "FAILED"}, timeout=60)
    finally:
        next(start_smtp, None)
    assert done["status"] == "SUCCESS" and done["attempts"] >= 2, done["timeline"]
    received = Counter(rcpt for envelope in handler.envelopes for rcpt in envelope.rcpt_tos)
    twice = {rcpt: n for rcpt, n in received.items() if n > 1}
    assert twice == {}, f"sent twice: {twice}"
    assert set(received) == {f"user{n}@example.test" for n in range(1, COUNT + 1)}
    ids = {message_from_bytes(envelope.content, policy=policy.SMTP)["Message-ID"] for envelope in handler.envelopes}
    assert ids == {f"<{task['id']}.{n}@example.test>" for n in range(1, COUNT + 1)}
    assert 0 < delivered_before < COUNT
