"""Where a plain (`def`) task function runs, so that the worker's event loop never waits on it: in a
thread of its own (its reporter calls travel to the loop and back), or in a child process of its own
(its reporter calls travel as messages; the process is killed at once when the attempt is cancelled or
runs out of time, which a thread cannot be). Neither takes a thread from the loop's shared pool, which
the worker's other work needs: a busy worker's tasks would wait on each other there."""

import asyncio
import logging
import multiprocessing
import os
import select
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from app.store.uploads import Upload, stored, uploads_root
from app.tasks.runtime import Limits, Reporter, TaskCancelled, TransientError

log = logging.getLogger(__name__)

EXIT_GRACE = 1.0  # seconds a child that sent its outcome gets to exit by itself before it is killed


class ThreadReporter:
    """The attempt's reporter for a function running in a thread: each call is made on the loop and
    waited for. Once the attempt is abandoned (cancelled, out of time) every call raises TaskCancelled,
    so the thread stops at its next report."""

    def __init__(self, report: Reporter, loop: asyncio.AbstractEventLoop) -> None:
        self._report = report
        self._loop = loop
        self.abandoned = False
        self.task_id, self.data_dir, self.artifacts = report.task_id, report.data_dir, report.artifacts
        self.smtp_url, self.limits = report.smtp_url, report.limits

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
    """The function's outcome, run in a thread of its own (one per attempt: the worker's concurrency
    bounds them)."""
    loop = asyncio.get_running_loop()
    reporter = ThreadReporter(report, loop)
    outcome: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if outcome.done():  # the attempt was abandoned meanwhile
            return
        if error is None:
            outcome.set_result(value)
        else:
            outcome.set_exception(error)

    def work() -> None:
        value, error = None, None
        try:
            value = function(reporter, **arguments)
        except BaseException as exc:  # the attempt decides what it means
            error = exc
        if reporter.abandoned:
            return  # nobody waits for it any more (the loop may even be gone)
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:  # the loop closed in between
            pass

    # daemon: a function that never reports again must not keep the worker from exiting
    thread = threading.Thread(target=work, name=f"task-{report.task_id}", daemon=True)
    thread.start()
    try:
        return await outcome
    finally:
        reporter.abandoned = True
        if not outcome.done() and thread.is_alive():  # cancelled or out of time, the function still busy
            log.warning("task %s: its function runs on in its thread until its next report (a thread cannot be "
                        "stopped from outside; executor='process' stops at once)", report.task_id)


@dataclass(frozen=True)
class ChildContext:
    """What a child process's reporter needs of the attempt (picklable)."""

    task_id: str
    data_dir: Path
    artifacts: Path
    smtp_url: str | None
    limits: Limits


class ChildReporter:
    """The reporter inside a child process: progress and log lines go to the parent as messages."""

    def __init__(self, connection: Connection, context: ChildContext) -> None:
        self._connection = connection
        self.task_id, self.data_dir, self.artifacts = context.task_id, context.data_dir, context.artifacts
        self.smtp_url, self.limits = context.smtp_url, context.limits
        self._uploads = uploads_root(context.data_dir)

    def __call__(self, progress: float, stage: str = "") -> None:
        self._connection.send(("progress", float(progress), str(stage)))

    def log(self, line: str) -> None:
        self._connection.send(("log", str(line)))

    def upload(self, upload_id: str) -> Upload:
        return stored(self._uploads, upload_id)


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


def _die_with_worker(connection: Connection) -> None:
    """The child ends as soon as the worker does (killed with SIGKILL, say): a task must not run on
    behind the back of the worker that will be declared dead and the task run again. The worker holds
    the only reading end of the child's pipe; once it is gone, the writing end reports an error."""
    watch = select.poll()
    watch.register(connection.fileno(), 0)  # no events asked: an error or a hang-up is always reported

    def wait() -> None:
        if any(flags & (select.POLLERR | select.POLLHUP) for _, flags in watch.poll()):
            os.kill(os.getpid(), signal.SIGKILL)  # its own children (a Pool's) see their pipes close

    threading.Thread(target=wait, name="worker-watch", daemon=True).start()


def _child(target: Callable[..., Any], args: tuple[Any, ...], context: ChildContext, connection: Connection) -> None:
    """The child process: run `target(reporter, *args)` and send its outcome."""
    _die_with_worker(connection)
    try:
        outcome = target(ChildReporter(connection, context), *args)
        connection.send(("result", outcome))
    except BaseException as exc:  # everything goes to the parent, which decides what it means
        transient = isinstance(exc, (TransientError, ConnectionError))
        connection.send(("error", type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)), transient))
    finally:
        connection.close()


def _pump(connection: Connection, loop: asyncio.AbstractEventLoop, messages: "asyncio.Queue[Any]") -> None:
    """A child's messages onto the loop, in a thread of the attempt's own; None once the child is gone."""
    with connection:
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):
                message = None
            try:
                loop.call_soon_threadsafe(messages.put_nowait, message)
            except RuntimeError:  # the loop has closed: nobody is listening any more
                return
            if message is None:
                return


async def _ended(process: BaseProcess, timeout: float | None) -> bool:
    """Whether the process ended within `timeout` seconds (None: waits for it), watched by the loop."""
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    loop.add_reader(process.sentinel, lambda: gone.done() or gone.set_result(None))
    try:
        await asyncio.wait_for(gone, timeout)
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(process.sentinel)
    return not process.is_alive()


async def in_process(target: Callable[..., Any], args: tuple[Any, ...], report: Reporter) -> Any:
    """`target(reporter, *args)` run in a child process (`target` importable by name: the child is a
    fresh interpreter); its outcome, or its exception as ChildFailed."""
    context = multiprocessing.get_context("forkserver")  # a clean process, not a fork of this busy one
    receiving, sending = context.Pipe(duplex=False)
    child = ChildContext(report.task_id, report.data_dir, report.artifacts, report.smtp_url, report.limits)
    # not a daemon: the task's function may start processes of its own (a multiprocessing.Pool)
    process = context.Process(target=_child, args=(target, args, child, sending), name=f"task-{report.task_id}")
    process.start()
    sending.close()
    loop = asyncio.get_running_loop()
    messages: asyncio.Queue[Any] = asyncio.Queue()
    threading.Thread(target=_pump, args=(receiving, loop, messages), name=f"task-{report.task_id}-pipe",
                     daemon=True).start()
    answered = False
    try:
        while (message := await messages.get()) is not None:
            match message:
                case ("progress", progress, stage):
                    await report(progress, stage)
                case ("log", line):
                    await report.log(line)
                case ("result", outcome):
                    answered = True
                    return outcome
                case ("error", exc_name, text, remote, transient):
                    answered = True
                    raise (ChildFailedTransiently if transient else ChildFailed)(exc_name, text, remote)
        await _ended(process, 5.0)
        raise RuntimeError(f"the task's process ended without an outcome (exit code {process.exitcode})")
    finally:
        # Cancelled, out of time, or the reporter refused: the work stops at once. A child that
        # answered is only given a moment to exit by itself.
        if not (answered and await asyncio.shield(_ended(process, EXIT_GRACE))) and process.is_alive():
            process.kill()
        await asyncio.shield(_ended(process, None))
        process.close()
