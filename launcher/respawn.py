"""Keep one child process running: `python -m launcher.respawn <command…>`.

Under honcho one process exiting stops them all, so a crashed web or worker would take the other down
with it. This restarts the child with backoff when it dies for any reason, and passes SIGTERM/SIGINT on
to it (then exits with it) so that stopping still works as before. A child that exits with
CONFIG_ERROR (it cannot start with its configuration) is not started again. `Backoff` is the delay
policy, shared with the launcher's watch over the embedded Redis.
"""

import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from app.core.cli import CONFIG_ERROR

FIRST_DELAY = 0.5
MAX_DELAY = 30.0
STABLE_AFTER = 30.0  # seconds a child must live for the delay to start small again


class Backoff:
    """Delays between restarts: doubling from FIRST_DELAY up to MAX_DELAY while a process keeps dying
    soon after its start, small again once it has lived STABLE_AFTER seconds."""

    def __init__(self) -> None:
        self.delay = FIRST_DELAY
        self.started = time.monotonic()

    def next_delay(self) -> float:
        """The delay before the next start, called when the process has just died."""
        if time.monotonic() - self.started > STABLE_AFTER:
            self.delay = FIRST_DELAY
        delay, self.delay = self.delay, min(self.delay * 2, MAX_DELAY)
        return delay

    def restarted(self) -> None:
        self.started = time.monotonic()


class Respawner:
    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def run(self) -> int:
        backoff = Backoff()
        while True:
            backoff.restarted()
            self.child = subprocess.Popen(self.command)
            code = self.child.wait()
            if self.stopping.is_set():
                return code if code > 0 else 0
            if code == CONFIG_ERROR:  # it said why it cannot start; it would only say it again
                print(f"respawn: {' '.join(self.command)} cannot start with this configuration (above); not "
                      "starting it again", file=sys.stderr, flush=True)
                return code
            delay = backoff.next_delay()
            print(f"respawn: {' '.join(self.command)} exited with {code}; starting it again in {delay:.1f} s",
                  file=sys.stderr, flush=True)
            if self.stopping.wait(delay):
                return 0


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m launcher.respawn <command> [args…]", file=sys.stderr)
        return 2
    respawner = Respawner(argv)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, respawner.on_signal)
    return respawner.run()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
