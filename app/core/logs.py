"""Log lines of the web and worker processes: one set-up, readable text or JSON lines, and the task
each line is about (its id and attempt, carried by a context variable)."""

import asyncio
import contextvars
import json
import logging
import logging.config
import socket
import sys
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

from app.settings import Settings

Role = Literal["web", "worker"]
T = TypeVar("T")

# Attributes every LogRecord has; anything else on a record came as `extra=` and is shown as a field.
STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


@dataclass
class TaskScope:
    task_id: str
    attempt: int | None = None


_scope: contextvars.ContextVar[TaskScope | None] = contextvars.ContextVar("log_task_scope", default=None)


@contextmanager
def about_task(task_id: str, attempt: int | None = None) -> Iterator[TaskScope]:
    """Lines logged inside, in this asyncio task and the tasks it creates, name this task. A scope
    already open for the same task is reused, so an attempt number learnt deeper down (once the
    attempt is claimed) shows on the enclosing lines too: arq's own line for the job's end."""
    current = _scope.get()
    if current is not None and current.task_id == task_id:
        if attempt is not None:
            current.attempt = attempt
        yield current
        return
    scope = TaskScope(task_id, attempt)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def set_attempt(attempt: int) -> None:
    """The attempt number of the task being logged about, once it is known."""
    if (scope := _scope.get()) is not None:
        scope.attempt = attempt


def name_task(task_id: str) -> None:
    """The rest of the current asyncio task is about this task. For a web request, whose lines
    continue after its handler returns (uvicorn logs the access line when the response starts);
    each request runs in its own asyncio task, so the name goes no further."""
    _scope.set(TaskScope(task_id))


def detached(coro: Coroutine[Any, Any, T], *, name: str) -> "asyncio.Task[T]":
    """A background task serving many tasks (a group writer): asyncio would hand it a copy of the
    context of whichever caller started it, and its lines would name that caller's task."""
    return asyncio.create_task(coro, name=name, context=contextvars.Context())


def scope_of(record: logging.LogRecord) -> TaskScope | None:
    """The task a line is about: the context's, else the job an arq line names in its first argument
    (its poll loop's `job %s already running elsewhere`; job ids are <task_id>:<dispatch>)."""
    if (scope := _scope.get()) is not None:
        return scope
    if record.name == "arq.worker" and isinstance(record.args, tuple) and record.args:
        task_id, colon, dispatch = str(record.args[0]).rpartition(":")
        if colon and task_id and dispatch.isdigit():
            return TaskScope(task_id)
    return None


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """`2026-12-01 23:34:18.123Z INFO app.runner [task 3f2c… #2] message`, tracebacks below."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso(record.created).replace("T", " ")

    def formatMessage(self, record: logging.LogRecord) -> str:
        scope = scope_of(record)
        about = ""
        if scope is not None:
            about = f"[task {scope.task_id}{'' if scope.attempt is None else f' #{scope.attempt}'}] "
        return f"{record.asctime} {record.levelname} {record.name}: {about}{record.message}"

    def usesTime(self) -> bool:
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, role, pid, host, task_id and attempt
    when known, exc_info and stack_info as strings, then the record's `extra` fields."""

    def __init__(self, role: Role) -> None:
        super().__init__()
        self.role = role
        self.host = socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _iso(record.created), "level": record.levelname, "logger": record.name,
            "message": record.getMessage(), "role": self.role, "pid": record.process, "host": self.host,
        }
        if (scope := scope_of(record)) is not None:
            line["task_id"] = scope.task_id
            if scope.attempt is not None:
                line["attempt"] = scope.attempt
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _, status = record.args
            line.update(client=client, method=method, path=path, status=status)
        line.update((key, value) for key, value in record.__dict__.items() if key not in STANDARD)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_config(settings: Settings, role: Role) -> dict[str, Any]:
    """The `logging.config.dictConfig` of a process: everything, uvicorn's loggers included, goes
    through the root logger's one handler on stderr."""
    formatter = {"()": JsonFormatter, "role": role} if settings.log_format == "json" else {"()": TextFormatter}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"app": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "app", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": settings.log_level},
        # uvicorn's own set-up gives these loggers handlers that stop propagation: undo that.
        "loggers": {name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }


def configure_logging(settings: Settings, role: Role) -> None:
    """Set up logging for a whole process (its entry point calls this once): warnings and an
    uncaught exception become log lines too, so that with LOG_FORMAT=json every line is JSON."""
    logging.config.dictConfig(log_config(settings, role))
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("app").critical("uncaught %s", kind.__name__, exc_info=(kind, exc, tb))
