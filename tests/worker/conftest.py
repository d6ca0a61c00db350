"""Fixtures of the worker tests: a real SMTP server for the e-mail task."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.smtp import smtp_servers


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """`smtp_server(handler, **options)` starts a real SMTP server (aiosmtpd) and gives its host:port."""
    yield from smtp_servers()
