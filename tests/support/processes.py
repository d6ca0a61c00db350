"""Real worker processes for the crash tests: started, signalled and always stopped by the test."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def process_env(redis_url: str, db_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ, "REDIS_URL": redis_url, "DATABASE_URL": db_url, "DATA_DIR": str(data_dir),
        "HEARTBEAT_INTERVAL": "0.3", "HEARTBEAT_TTL": "1.5",
        "WATCHDOG_INTERVAL": "0.3", "RECONCILE_INTERVAL": "1", "RECONCILE_GRACE": "2",
        "PROGRESS_INTERVAL": "0.1", "LOG_LEVEL": "WARNING",
        "PYTHONFAULTHANDLER": "1",  # SIGABRT writes every thread's Python stack to the log: see `stopped`
        **extra,
    }


def stopped(proc: subprocess.Popen[bytes], log: Path, timeout: float = 15) -> int:
    """SIGTERM, then the exit status; a process that does not stop within `timeout` is a failure that
    shows where it hangs (its stacks, dumped by faulthandler on SIGABRT, from its log)."""
    proc.terminate()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise AssertionError(f"{' '.join(map(str, proc.args))} did not stop within {timeout:g} s "
                             f"after SIGTERM; its log ends:\n{log.read_text(errors='replace')[-6000:]}") from None


class Workers:
    """`python worker.py` processes; every one still running is stopped when the test ends."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **extra: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env={**self.env, **extra},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def terminate(self, proc: subprocess.Popen[bytes], timeout: float = 20) -> int:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def workers(env: dict[str, str], log_dir: Path) -> Iterator[Workers]:
    pool = Workers(env, log_dir)
    try:
        yield pool
    finally:
        pool.stop_all()
