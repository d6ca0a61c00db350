"""A real SMTP server (aiosmtpd, in its own thread) on 127.0.0.1, with a handler that keeps what it
accepts and refuses or drops as a test asks."""

from collections.abc import Iterator
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from launcher.redis_server import free_port


class Collector:
    """An aiosmtpd handler keeping the envelopes it accepts; it refuses `refuse` at RCPT (every
    recipient with `refuse_all`, its answer) and answers 421 (closing) to the first `drops` DATA commands."""

    def __init__(self, refuse: tuple[str, ...] = (), drops: int = 0, refuse_all: str | None = None) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse = refuse
        self.refuse_all = refuse_all
        self.drops = drops
        self.logins: list[tuple[bytes, bytes]] = []
        self.recipients_asked = 0

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        self.recipients_asked += 1
        if self.refuse_all:
            return self.refuse_all
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.drops:
            self.drops -= 1
            return "421 4.3.2 service shutting down"
        self.envelopes.append(envelope)
        return "250 2.0.0 queued"

    def authenticate(self, server: Any, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: LoginPassword) -> AuthResult:
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"p@ss word")


def smtp_servers() -> Iterator[Any]:
    """For a fixture: `start(handler, **options)` starts a server and gives its host:port; all stop after."""
    started: list[Controller] = []

    def start(handler: Collector, **options: Any) -> str:
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
        controller.start()
        started.append(controller)
        return f"127.0.0.1:{controller.port}"

    yield start
    for controller in started:
        controller.stop()
