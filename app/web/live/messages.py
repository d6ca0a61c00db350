"""What a `/ws` client may send, checked: anything else is refused with a reason the client can act on."""

import json
from typing import Any

from app.core.errors import InvalidParameters
from app.core.validation import check_json

MAX_CLIENT_MESSAGE = 1024  # characters; clients only ever send small control messages
KNOWN = ('the server knows {"type": "ping"}, {"type": "logs", "task_id": <id or null>, "after": <line n, optional>} '
         'and {"type": "workers", "follow": <true or false>}')


def parse(text: str) -> dict[str, Any]:
    """The message, with its fields checked (and `after` defaulted); ValueError saying what is wrong."""
    if len(text) > MAX_CLIENT_MESSAGE:
        raise ValueError(f"message over {MAX_CLIENT_MESSAGE} characters; {KNOWN}")
    try:
        message = json.loads(text)
    except ValueError:
        raise ValueError(f"message is not JSON; {KNOWN}") from None
    try:  # a lone surrogate would crash what encodes it later (the log read a `logs` asks for)
        check_json(message, root="message")
    except InvalidParameters as exc:
        where = "message" if exc.field == "message" else f'"{exc.field}"'
        raise ValueError(f"{where} {exc.message}") from None
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "ping":
        return message  # type: ignore[no-any-return]
    if kind == "logs":
        return _logs(message)
    if kind == "workers":
        if not isinstance(message.get("follow", True), bool):
            raise ValueError('"follow" must be true or false')
        return {"type": "workers", "follow": message.get("follow", True)}
    raise ValueError(f"unknown message type {str(kind)[:40]!r}; {KNOWN}" if kind is not None
                     else f"a message is a JSON object with a \"type\"; {KNOWN}")


def _logs(message: dict[str, Any]) -> dict[str, Any]:
    task_id, after = message.get("task_id", ""), message.get("after", 0)
    if not (task_id is None or (isinstance(task_id, str) and 0 < len(task_id) <= 36)):
        raise ValueError('logs needs "task_id": a task id (a string of up to 36 characters), or null to stop')
    if not (isinstance(after, int) and not isinstance(after, bool) and 0 <= after < 2**62):
        raise ValueError('"after" must be a line number n (a non-negative integer)')
    return {"type": "logs", "task_id": task_id, "after": after}
