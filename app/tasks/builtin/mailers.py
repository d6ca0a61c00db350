"""Where `email_simulation` delivers: a local Maildir, or an SMTP server over one connection per run.

Both are blocking (smtplib, mailbox); the task calls them through `asyncio.to_thread`, one at a time.
"""

import contextlib
import email.policy
import mailbox
import os
import smtplib
import ssl
import threading
import weakref
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from app.tasks.runtime import TransientError

TIMEOUT = 30.0  # seconds for the SMTP connection and each command


class Mailer(Protocol):
    def deliver(self, message: EmailMessage) -> dict[str, Any]:
        """The outcome for the message's one recipient: `status` "sent" or "failed", and details."""

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class MaildirMailer:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)  # Maildir creates its own folder, not its parents
        self.path = path
        self.maildir = mailbox.Maildir(path, create=True)

    def deliver(self, message: EmailMessage) -> dict[str, Any]:
        data = message.as_bytes()
        self.maildir.add(data)
        return {"status": "sent", "bytes": len(data)}

    def close(self) -> None:
        self.maildir.close()

    def describe(self) -> dict[str, Any]:
        return {"transport": "maildir", "maildir": str(self.path)}


class _Held:
    """The lock of one task's journal in this process (an object, so that the registry can hold it weakly)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()


_journals: "weakref.WeakValueDictionary[Path, _Held]" = weakref.WeakValueDictionary()
_journals_lock = threading.Lock()


class SentJournal:
    """The recipients a task's attempts delivered to, one line each (`<number> <bytes>`), appended and
    fsynced right after the server accepted the message: a later attempt of the task (after a worker was
    killed, or a retry) skips them, so nobody gets the message twice.

    An attempt cancelled or out of time may leave a delivery running in its thread: closing the journal
    waits for it to be journalled, and in this process a journal is open for one attempt at a time (the
    next attempt's opening waits for the close), so the next attempt sees it. What is left: a kill between
    the server's answer and the fsync (microseconds), and workers on hosts that do not share DATA_DIR."""

    def __init__(self, path: Path) -> None:
        with _journals_lock:
            self._held = _journals.setdefault(path, _Held())
        self._held.lock.acquire()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = path.read_text(errors="replace") if path.exists() else ""
            self._file = path.open("a")
        except BaseException:
            self._held.lock.release()
            raise
        self.path = path
        self.sent: dict[int, int] = {}
        *lines, torn = text.split("\n")  # a last line without its newline was cut by a kill: no delivery
        for line in lines:
            number, _, size = line.partition(" ")
            if number.isdigit() and size.isdigit():
                self.sent[int(number)] = int(size)
        if torn:
            self._file.write("\n")  # the next line starts on a line of its own
        self.writing = threading.Lock()  # held over a delivery and its record; close waits for it

    def record(self, number: int, size: int) -> None:
        self._file.write(f"{number} {size}\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.sent[number] = size

    def close(self) -> None:
        with self.writing:
            self._file.close()
        self._held.lock.release()


class SmtpError(TransientError):
    """The SMTP server cannot be reached, refuses the login, or keeps dropping the connection: the
    task is tried again with backoff, since mail servers come back."""


class Dropped(Exception):
    """The server answered 421: it is closing the connection."""


# what a connection that went away looks like; worth one new connection
DROPS = (Dropped, smtplib.SMTPServerDisconnected, OSError)


class SmtpMailer:
    """`smtp://[user:pass@]host[:port][?starttls=1]` (STARTTLS then required) or `smtps://…` (implicit TLS).

    One connection for the run, opened at the first message; when it drops, the message is retried on a
    new one, and a second drop in a row fails the run. The password never appears in outcomes.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise SmtpError("SMTP_URL must look like smtp://[user:pass@]host[:port] or smtps://…")
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.starttls = parse_qs(parts.query).get("starttls", ["0"])[-1] in ("1", "true", "yes")
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password or "")
        self._smtp: smtplib.SMTP | None = None
        self._closed = False
        # a delivery a cancel left running in its thread finishes before close() quits the connection
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {"transport": "smtp", "server": f"{self.host}:{self.port}",
                "tls": "implicit" if self.implicit_tls else "starttls" if self.starttls else "none"}

    def _connection(self) -> smtplib.SMTP:
        if self._closed:
            raise SmtpError("the mailer is closed")
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except (OSError, smtplib.SMTPException) as exc:
                raise SmtpError(f"SMTP server {self.host}:{self.port}: {exc}") from None
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=TIMEOUT,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT)
        smtp.ehlo()
        if self.starttls:
            if not smtp.has_extn("starttls"):
                smtp.close()
                # the URL asked for encryption: sending in clear instead would betray it
                raise SmtpError("the server does not offer STARTTLS, which SMTP_URL asks for")
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if self.username:
            smtp.login(self.username, self.password)
        return smtp

    def deliver(self, message: EmailMessage) -> dict[str, Any]:
        with self._lock:
            try:
                return self._transaction(self._connection(), message)
            except DROPS:
                self._hang_up()  # an idle timeout or a per-connection limit: one new connection
            try:
                return self._transaction(self._connection(), message)
            except DROPS as exc:
                self._hang_up()
                raise SmtpError(f"SMTP server {self.host}:{self.port} dropped the connection twice: "
                                f"{exc}") from None

    @staticmethod
    def _transaction(smtp: smtplib.SMTP, message: EmailMessage) -> dict[str, Any]:
        """MAIL, RCPT and DATA for the message's one recipient, each answer checked."""
        # CRLF line ends, as SMTP wants: servers guarding against smuggling refuse bare LFs
        data = message.as_bytes(policy=email.policy.SMTP)
        steps = (("MAIL", lambda: smtp.mail(message["From"].addresses[0].addr_spec)),
                 ("RCPT", lambda: smtp.rcpt(message["To"].addresses[0].addr_spec)),
                 ("DATA", lambda: smtp.data(data)))
        for step, command in steps:
            try:
                code, answer = command()
            except smtplib.SMTPResponseException as exc:  # data() raises when DATA itself is refused
                code, answer = exc.smtp_code, exc.smtp_error
            text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
            if code == 421:
                raise Dropped(f"{code} {text}")
            if code >= 400:
                smtp.rset()  # leave the connection ready for the next message
                return {"status": "failed", "step": step, "code": code, "error": text}
        return {"status": "sent", "code": code, "answer": text, "bytes": len(data)}

    def _hang_up(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            # every message has its answer already: a server that hangs up before QUIT is no failure
            with contextlib.suppress(OSError, smtplib.SMTPException):
                if self._smtp is not None:
                    self._smtp.quit()
            self._hang_up()
