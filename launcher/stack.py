"""`make run`: Redis (embedded unless REDIS_URL is set), the database, then web and worker under honcho;
whatever of the three dies is started again (launcher/respawn.py), the others keep running."""

import sys

if sys.version_info < (3, 11):  # checked before the imports below, which need it
    raise SystemExit(f"Python 3.11 or newer is needed; {sys.executable} is Python {sys.version.split()[0]}.")

import asyncio
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import redis
from starlette.config import Config, environ

from app.settings import Settings, load_settings
from app.store.stores import prepare_database
from app.tasks import configured_types
from app.web.security import check_exposure
from launcher.redis_server import RedisServer, free_port
from launcher.respawn import Backoff

PING_TIMEOUT = 2.0
WEB_TIMEOUT = 60.0
WATCH_INTERVAL = 0.5  # seconds between looks at the embedded Redis
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class LaunchError(Exception):
    """A problem the user can fix, reported as one message instead of a traceback."""


def obscure(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":********@", 1)
    return parts._replace(netloc=netloc).geturl()


def check_redis(url: str) -> None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=PING_TIMEOUT, socket_timeout=PING_TIMEOUT)
        with client:
            client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise LaunchError(f"Redis at REDIS_URL={obscure(url)} does not answer ({exc}).") from None


def open_redis(settings: Settings, stack: ExitStack) -> tuple[str, RedisServer | None]:
    """The Redis to use: REDIS_URL when set (checked), else an embedded server that `stack` stops."""
    if "REDIS_URL" in environ:
        url = str(settings.redis_url)
        check_redis(url)
        return url, None
    # A launcher-only setting: nothing else needs to know where the embedded Redis listens.
    port = Config(environ=environ)("EMBEDDED_REDIS_PORT", cast=int, default=0) or free_port()
    try:
        server = RedisServer(port, settings.data_dir / "redis", appendonly=True)
        stack.enter_context(server)
    except RuntimeError as exc:
        raise LaunchError(f"cannot start the embedded Redis: {exc}") from None
    return server.url, server


def keep_running(server: RedisServer, stopping: threading.Event) -> None:
    """Start the embedded Redis again, with backoff, whenever it dies before the stop: web and worker
    ride out the outage and reconnect (nothing accepted is lost: Redis's append-only file, and the
    worker's reconciliation of the database against the queue)."""
    backoff = Backoff()
    while not stopping.wait(WATCH_INTERVAL):
        code = server.exit_code()
        if code is None:
            continue
        print(f"launcher: the embedded Redis exited with code {code}", file=sys.stderr, flush=True)
        while True:  # until it is back: a start that fails (its port taken meanwhile, say) is tried again
            delay = backoff.next_delay()
            print(f"launcher: starting the embedded Redis again in {delay:.1f} s", file=sys.stderr, flush=True)
            if stopping.wait(delay):
                return
            backoff.restarted()
            try:
                server.restart()
                break
            except RuntimeError as exc:  # its log tail says why
                print(f"launcher: the embedded Redis did not start again: {exc}", file=sys.stderr, flush=True)
        print(f"launcher: the embedded Redis is back on {server.url}", file=sys.stderr, flush=True)


def prepare(database_url: str) -> None:
    try:
        asyncio.run(prepare_database(database_url))
    except Exception as exc:  # any driver's error means the same here: the database is not usable
        raise LaunchError(f"cannot prepare the database {obscure(database_url)}: {exc!r}") from None


def child_env(settings: Settings, redis_url: str) -> dict[str, str]:
    # The venv's bin first, so the Procfile's `python` is this venv's.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": str(settings.database_url), "PATH": path}


def announce_when_up(settings: Settings, redis_url: str, stopping: threading.Event) -> None:
    """Print the dashboard's address once the web answers (any HTTP status), or say it never did."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = f"http://{host}:{settings.port}/"
    deadline = time.monotonic() + WEB_TIMEOUT
    while time.monotonic() < deadline:
        if stopping.is_set():
            return
        try:
            urllib.request.urlopen(base + "api/health", timeout=1.0).close()
        except urllib.error.HTTPError:
            pass  # an error status is still an answer: the web is up
        except OSError:
            stopping.wait(0.5)
            continue
        print(
            f"\nDashboard: {base}\n  Redis:    {obscure(redis_url)}\n"
            f"  Database: {obscure(str(settings.database_url))}\n  Ctrl-C stops everything.\n",
            flush=True,
        )
        return
    print(f"\nThe web did not answer on {base} within {WEB_TIMEOUT:.0f} s; see the log above.\n", flush=True)


def supervise(settings: Settings, redis_url: str, server: RedisServer | None) -> int:
    """Run honcho until it exits, forwarding a stop signal as one SIGTERM, and keep the embedded Redis
    (`server`, if any) running meanwhile; 0 after a requested stop."""
    stopping = threading.Event()
    children: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        for child in children:
            child.send_signal(signal.SIGTERM)

    for sig in STOP_SIGNALS:
        signal.signal(sig, forward)
    command = [sys.executable, "-m", "honcho", "start", "-f", "Procfile", "-p", str(settings.port)]
    # Its own session: a terminal's Ctrl-C or hangup reaches only us and becomes one SIGTERM that honcho
    # passes on to web and worker (a hangup sent to honcho itself would kill it and orphan them).
    children.append(subprocess.Popen(command, env=child_env(settings, redis_url), start_new_session=True))
    if stopping.is_set():  # a signal that came while honcho was starting
        children[0].send_signal(signal.SIGTERM)
    watcher = threading.Thread(target=announce_when_up, args=(settings, redis_url, stopping), daemon=True)
    watcher.start()
    keeper = threading.Thread(target=keep_running, args=(server, stopping), daemon=True)
    if server is not None:
        keeper.start()
    code = children[0].wait()
    requested = stopping.is_set()
    stopping.set()
    if server is not None:  # before the stack stops the server, so that it is not started meanwhile
        keeper.join()
    if requested:
        return 0
    print(f"launcher: honcho exited with code {code}; stopping.", file=sys.stderr, flush=True)
    return code


def main() -> int:
    try:
        try:
            settings = load_settings()  # a setting it refuses (LOG_FORMAT=xml) is named in the message
            check_exposure(settings)
            configured_types(settings)  # a task module that cannot be used, before anything starts
        except (ValueError, TypeError, RuntimeError) as exc:
            raise LaunchError(str(exc)) from None
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            redis_url, server = open_redis(settings, stack)
            prepare(str(settings.database_url))
            return supervise(settings, redis_url, server)  # the embedded Redis stops after web and worker
    except LaunchError as exc:
        print(f"launcher: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

