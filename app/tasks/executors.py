"""Where a plain (`def`) task function runs, so that the worker's event loop never waits on it: in a
thread (its reporter calls travel to the loop and back), or in a child process of its own (its reporter
calls travel as messages; the process is killed at once when the attempt is cancelled or runs out of
time, which a thread cannot be)."""

import asyncio
import importlib
import multiprocessing
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from app.store.uploads import Upload, UploadStore, uploads_root
from app.tasks.runtime import Reporter, TaskCancelled, TransientError

MAX_TRACEBACK = 20_000  # characters of a child's traceback sent back


class ThreadReporter:
    """The attempt's reporter for a function running in a thread: each call is made on the loop and
    waited for. Once the attempt is abandoned (cancelled, out of time) every call raises TaskCancelled,
    so the thread stops at its next report."""

    def __init__(self, report: Reporter, loop: asyncio.AbstractEventLoop) -> None:
        self._report = report
        self._loop = loop
        self.abandoned = False
        self.task_id, self.data_dir, self.artifacts = report.task_id, report.data_dir, report.artifacts
        self.smtp_url = report.smtp_url

    def __call__(self, progress: float, stage: str = "") -> None:
        if self.abandoned:
            raise TaskCancelled()
        asyncio.run_coroutine_threadsafe(self._report(progress, stage), self._loop).result()

    def log(self, line: str) -> None:
        if self.abandoned:
            raise TaskCancelled()
        asyncio.run_coroutine_threadsafe(self._report.log(line), self._loop).result()

    def upload(self, upload_id: str) -> Any:
        return self._report.upload(upload_id)


async def in_thread(function: Callable[..., Any], report: Reporter, arguments: dict[str, Any]) -> Any:
    reporter = ThreadReporter(report, asyncio.get_running_loop())
    try:
        return await asyncio.to_thread(function, reporter, **arguments)
    finally:
        reporter.abandoned = True


@dataclass(frozen=True)
class ChildContext:
    """What a child process's reporter needs of the attempt (picklable)."""

    task_id: str
    data_dir: Path
    artifacts: Path
    smtp_url: str | None


class ChildReporter:
    """The reporter inside a child process: progress and log lines go to the parent as messages."""

    def __init__(self, connection: Connection, context: ChildContext) -> None:
        self._connection = connection
        self.task_id, self.data_dir, self.artifacts = context.task_id, context.data_dir, context.artifacts
        self.smtp_url = context.smtp_url
        self._uploads = UploadStore(uploads_root(context.data_dir), 0)

    def __call__(self, progress: float, stage: str = "") -> None:
        self._connection.send(("progress", float(progress), str(stage)))

    def log(self, line: str) -> None:
        self._connection.send(("log", str(line)))

    def upload(self, upload_id: str) -> Upload:
        return self._uploads.get(upload_id)


class ChildFailed(Exception):
    """The task's function raised in its child process: its exception's name and message, and the
    traceback as the child printed it."""

    def __init__(self, name: str, message: str, remote_traceback: str) -> None:
        super().__init__(message)
        self.name = name
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        return f"{self.name}: {self.args[0]}" if self.args[0] else self.name


class ChildFailedTransiently(ChildFailed, TransientError):
    """As ChildFailed, for a TransientError or a ConnectionError: worth another attempt."""


def _child(module: str, name: str, params: dict[str, Any], context: ChildContext, connection: Connection) -> None:
    """The child process: find the task type in its module, run the function, send its outcome."""
    try:
        kind = next(value for value in vars(importlib.import_module(module)).values()
                    if getattr(value, "name", None) == name and hasattr(value, "arguments"))
        outcome = kind.function(ChildReporter(connection, context), **kind.arguments(params))
        connection.send(("result", outcome))
    except BaseException as exc:  # everything goes to the parent, which decides what it means
        transient = isinstance(exc, (TransientError, ConnectionError))
        text = "".join(traceback.format_exception(exc))[-MAX_TRACEBACK:]
        connection.send(("error", type(exc).__name__, str(exc), text, transient))
    finally:
        connection.close()


def _receive(connection: Connection) -> Any:
    try:
        return connection.recv()
    except (EOFError, OSError):
        return None


async def in_process(module: str, name: str, params: dict[str, Any], report: Reporter) -> Any:
    """Run the task's function in a child process; its outcome, or its exception as ChildFailed."""
    context = multiprocessing.get_context("forkserver")  # a clean process, not a fork of this busy one
    receiving, sending = context.Pipe(duplex=False)
    child = ChildContext(report.task_id, report.data_dir, report.artifacts, report.smtp_url)
    process = context.Process(target=_child, args=(module, name, params, child, sending), daemon=True,
                              name=f"task-{report.task_id}")
    process.start()
    sending.close()
    try:
        while (message := await asyncio.to_thread(_receive, receiving)) is not None:
            match message:
                case ("progress", progress, stage):
                    await report(progress, stage)
                case ("log", line):
                    await report.log(line)
                case ("result", outcome):
                    return outcome
                case ("error", exc_name, text, remote, transient):
                    raise (ChildFailedTransiently if transient else ChildFailed)(exc_name, text, remote)
        await asyncio.to_thread(process.join, 5.0)
        raise RuntimeError(f"the task's process ended without an outcome (exit code {process.exitcode})")
    finally:
        if process.is_alive():
            process.kill()  # cancelled, out of time, or the reporter refused: stop the work at once
        await asyncio.to_thread(process.join)
        receiving.close()
