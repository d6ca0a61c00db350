"""The processes' command line: configuration comes from the environment, so a command takes no
arguments; `--help` says so (and where the settings are listed) instead of starting anything. A
process that cannot start with its configuration says why in one line and exits with CONFIG_ERROR."""

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

CONFIG_ERROR = 78  # sysexits' EX_CONFIG: the launcher does not start such a process again (it would fail again)

SETTINGS_HELP = ("Configured from the environment (REDIS_URL, DATABASE_URL, TASK_MODULES, HOST, PORT, …): "
                 "see docs/configuration.md. A module of TASK_MODULES is imported from the working directory "
                 "or PYTHONPATH.")


def parse_command_line(program: str, description: str, argv: Sequence[str] | None = None) -> None:
    """Exits with the usage for `--help` (or with an error for any argument), before anything starts.
    The working directory goes on the import path (as uvicorn's and celery's commands do it): an
    installed command finds a TASK_MODULES module next to the user, as `python worker.py` does."""
    parser = argparse.ArgumentParser(prog=program, description=description, epilog=SETTINGS_HELP)
    parser.parse_args(argv)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


@contextmanager
def refused_start(program: str) -> Iterator[None]:
    """Around reading the configuration (settings, task modules): what it refuses (a bad setting, a
    task module that cannot be used: ValueError, TypeError, RuntimeError) ends the process with its
    message alone, no traceback to read past."""
    try:
        yield
    except (ValueError, TypeError, RuntimeError) as exc:
        print(f"{program}: cannot start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(CONFIG_ERROR) from None
