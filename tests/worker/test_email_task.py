"""The `email_simulation` task: real messages into a Maildir or through a real SMTP server (aiosmtpd),
plain, with STARTTLS or implicit TLS, logging in, refused and dropped."""

import asyncio
import json
import mailbox
import shutil
import socket
import ssl
import subprocess
import threading
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from app.store import artifacts
from app.tasks.builtin.email_simulation import failures
from app.tasks.builtin.mailers import SmtpError
from tests.support.smtp import Collector
from tests.support.task_runs import run

# --- email_simulation -------------------------------------------------------------------------

def recipients_of(count: int, rate: float, seed: int) -> list[str]:
    """The recipients the task should really send to: all but the simulated failures."""
    return [f"user{n}@example.test" for n, failed in enumerate(failures(count, rate, seed), 1) if not failed]


@pytest.mark.asyncio
async def test_email_delivers_exactly_the_sent_messages(tmp_path: Path) -> None:
    result, report = await run("email_simulation", tmp_path, recipient_count=101, delay_per_email=0,
                               failure_rate=0.3, seed=3, subject="Quarterly news")
    expected = recipients_of(101, 0.3, 3)
    assert 0 < len(expected) < 101
    assert (result["transport"], result["sent"], result["failed"]) == ("maildir", len(expected), 101 - len(expected))
    assert len(result["recipients"]) == 100 and result["recipients_truncated"] is True
    maildir = mailbox.Maildir(tmp_path / "mail", create=False)
    messages = list(maildir)
    assert result["total_bytes"] == sum(len(maildir.get_bytes(key)) for key in maildir.keys())
    assert sorted(message["To"] for message in messages) == sorted(expected)
    assert all(message["Subject"] == "Quarterly news" and message["Message-ID"] for message in messages)
    assert all(message["To"] in message.get_payload() for message in messages)
    assert len(report.lines) == 102 and report.lines[-1] == f"{len(expected)} sent, {101 - len(expected)} failed"


@pytest.mark.asyncio
async def test_email_failures_are_deterministic(tmp_path: Path) -> None:
    first, _ = await run("email_simulation", tmp_path / "a", recipient_count=30, delay_per_email=0,
                         failure_rate=0.5, seed=9)
    second, _ = await run("email_simulation", tmp_path / "b", recipient_count=30, delay_per_email=0,
                          failure_rate=0.5, seed=9)
    assert [o["status"] for o in first["recipients"]] == [o["status"] for o in second["recipients"]]
    assert first["recipients"][0]["recipient"] == "user1@example.test"


@pytest.mark.asyncio
async def test_email_over_smtp_reaches_exactly_the_recipients_not_failed(tmp_path: Path, smtp_server: Any) -> None:
    handler = Collector()
    address = smtp_server(handler)
    result, report = await run("email_simulation", tmp_path, smtp_url=f"smtp://{address}", recipient_count=12,
                               delay_per_email=0, failure_rate=0.3, seed=3, subject="Quarterly news")
    expected = recipients_of(12, 0.3, 3)
    assert (result["transport"], result["server"], result["tls"]) == ("smtp", address, "none")
    assert (result["sent"], result["failed"]) == (len(expected), 12 - len(expected))
    assert [envelope.rcpt_tos for envelope in handler.envelopes] == [[to] for to in expected]
    for envelope in handler.envelopes:
        message = message_from_bytes(envelope.content, policy=policy.default)
        number = int(envelope.rcpt_tos[0].removeprefix("user").split("@")[0])
        assert envelope.mail_from == "noreply@example.test"
        assert b"\n" not in envelope.original_content.replace(b"\r\n", b"")  # no bare LF on the wire
        assert (message["To"], message["Subject"]) == (envelope.rcpt_tos[0], "Quarterly news")
        body = message.get_content().replace("\r\n", "\n")
        assert body.startswith(f"Hello user {number},\n\nthis is message {number} of 12, sent to {envelope.rcpt_tos[0]}")
    sent = [o for o in result["recipients"] if o["status"] == "sent"]
    assert [o["recipient"] for o in sent] == expected
    assert all((o["code"], o["answer"]) == (250, "2.0.0 queued") for o in sent)
    assert result["total_bytes"] == sum(o["bytes"] for o in sent)
    assert not (tmp_path / "mail").exists()
    assert f"{expected[0]}: sent (250 2.0.0 queued)" in report.lines


@pytest.mark.asyncio
async def test_a_refused_recipient_is_a_per_recipient_failure(tmp_path: Path, smtp_server: Any) -> None:
    handler = Collector(refuse=("user2@example.test",))
    address = smtp_server(handler)
    result, report = await run("email_simulation", tmp_path, smtp_url=f"smtp://{address}", recipient_count=4,
                               delay_per_email=0)
    assert (result["sent"], result["failed"]) == (3, 1)
    refused = result["recipients"][1]
    assert (refused["recipient"], refused["status"], refused["step"], refused["code"]) == (
        "user2@example.test", "failed", "RCPT", 550)
    assert refused["error"] == "5.1.1 mailbox unavailable"
    assert [envelope.rcpt_tos for envelope in handler.envelopes] == [[f"user{n}@example.test"] for n in (1, 3, 4)]
    assert "user2@example.test: failed: 550 5.1.1 mailbox unavailable" in report.lines


@pytest.mark.asyncio
async def test_a_second_attempt_of_a_task_sends_only_to_recipients_not_yet_delivered(
        tmp_path: Path, smtp_server: Any) -> None:
    """The journal of deliveries (DATA_DIR/task-state/<task>/mail.sent) as a worker killed after 3 of 5 left
    it; it goes with the task."""
    handler = Collector()
    journal = artifacts.state_directory(tmp_path, "task0123abcd") / "mail.sent"
    journal.parent.mkdir(parents=True)
    journal.write_text("1 500\n2 500\n3 50")  # the third line torn by the kill: not a delivery
    result, report = await run("email_simulation", tmp_path, smtp_url=f"smtp://{smtp_server(handler)}",
                               recipient_count=5, delay_per_email=0)
    assert [envelope.rcpt_tos for envelope in handler.envelopes] == [[f"user{n}@example.test"] for n in (3, 4, 5)]
    earlier = [outcome.get("earlier_attempt", False) for outcome in result["recipients"]]
    assert result["sent"] == 5 and earlier == [True] * 2 + [False] * 3
    assert "user1@example.test: sent by an earlier attempt, not sent again" in report.lines
    ids = [message_from_bytes(envelope.content, policy=policy.SMTP)["Message-ID"] for envelope in handler.envelopes]
    assert ids == [f"<task0123abcd.{n}@example.test>" for n in (3, 4, 5)]  # the same at every attempt
    again, _ = await run("email_simulation", tmp_path, smtp_url=f"smtp://{smtp_server(handler)}",
                         recipient_count=5, delay_per_email=0)
    assert again["sent"] == 5 and len(handler.envelopes) == 3, "a third attempt sends nothing"
    artifacts.remove(tmp_path, "task0123abcd")  # as retention and bulk deletes remove a task's files
    assert not journal.exists()


class SlowCollector(Collector):
    """Takes half a second to accept each message, and says when the first one is under way."""

    def __init__(self) -> None:
        super().__init__()
        self.receiving = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.receiving.set()
        await asyncio.sleep(0.5)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.asyncio
async def test_an_attempt_cancelled_mid_delivery_leaves_it_journalled_for_the_next(
        tmp_path: Path, smtp_server: Any) -> None:
    """Cancelled (or out of time) while the server is taking a message: the delivery runs on in its thread;
    the next attempt, started at once on the same worker, sees it in the journal and does not send it again."""
    handler = SlowCollector()
    url = f"smtp://{smtp_server(handler)}"
    first = asyncio.create_task(run("email_simulation", tmp_path, smtp_url=url, recipient_count=2, delay_per_email=0))
    assert await asyncio.to_thread(handler.receiving.wait, 10)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    result, report = await run("email_simulation", tmp_path, smtp_url=url, recipient_count=2, delay_per_email=0)
    assert [envelope.rcpt_tos for envelope in handler.envelopes] == [["user1@example.test"], ["user2@example.test"]]
    assert [outcome.get("earlier_attempt", False) for outcome in result["recipients"]] == [True, False]


@pytest.mark.asyncio
async def test_smtp_logs_in_with_the_url_credentials(tmp_path: Path, smtp_server: Any) -> None:
    handler = Collector()
    address = smtp_server(handler, authenticator=handler.authenticate, auth_require_tls=False)
    result, _ = await run("email_simulation", tmp_path, smtp_url=f"smtp://sender:p%40ss%20word@{address}",
                          recipient_count=2, delay_per_email=0)
    assert result["sent"] == 2 and handler.logins == [(b"sender", b"p@ss word")]
    assert "p@ss" not in json.dumps(result)


@pytest.mark.asyncio
async def test_smtp_reconnects_once_when_the_server_hangs_up(tmp_path: Path, smtp_server: Any) -> None:
    handler = Collector(drops=1)
    result, _ = await run("email_simulation", tmp_path, smtp_url=f"smtp://{smtp_server(handler)}",
                          recipient_count=3, delay_per_email=0)
    assert result["sent"] == 3
    assert [envelope.rcpt_tos for envelope in handler.envelopes] == [[f"user{n}@example.test"] for n in (1, 2, 3)]
    handler = Collector(drops=2)
    with pytest.raises(SmtpError, match="dropped the connection twice: 421 4.3.2 service shutting down"):
        # another data dir: in this one the (same) task id has a journal of these three delivered
        await run("email_simulation", tmp_path / "b", smtp_url=f"smtp://{smtp_server(handler)}", recipient_count=3,
                  delay_per_email=0)


@pytest.mark.asyncio
@pytest.mark.parametrize(("url", "message"), [
    ("smtp://127.0.0.1:{closed}", r"SMTP server 127.0.0.1:\d+: .*refused"),
    ("http://127.0.0.1:{closed}", "SMTP_URL must look like"),
    ("smtp://{server}?starttls=1", "does not offer STARTTLS"),
])
async def test_smtp_problems_fail_with_a_clear_message(url: str, message: str, tmp_path: Path,
                                                       smtp_server: Any) -> None:
    # The closed port stays bound (never listening) until the end: a server started meanwhile (this
    # test's own, on a port the system picks) cannot be handed the same port.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        server = smtp_server(Collector()) if "{server}" in url else ""
        smtp_url = url.format(closed=closed.getsockname()[1], server=server)
        with pytest.raises(SmtpError, match=message):
            await run("email_simulation", tmp_path, smtp_url=smtp_url, recipient_count=1, delay_per_email=0)


@pytest.fixture
def tls_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, trusted by this test's TLS clients (SSL_CERT_FILE)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return cert, key


@pytest.mark.asyncio
@pytest.mark.parametrize(("scheme", "query", "option", "tls"), [
    ("smtp", "?starttls=1", "tls_context", "starttls"), ("smtps", "", "ssl_context", "implicit")])
async def test_smtp_over_tls(scheme: str, query: str, option: str, tls: str, tmp_path: Path, smtp_server: Any,
                             tls_files: tuple[Path, Path]) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    handler = Collector()
    address = smtp_server(handler, **{option: context})
    result, _ = await run("email_simulation", tmp_path, smtp_url=f"{scheme}://{address}{query}", recipient_count=2,
                          delay_per_email=0)
    assert (result["sent"], result["tls"], len(handler.envelopes)) == (2, tls, 2)
