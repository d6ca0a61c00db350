"""Memory per idle WebSocket client: N connections held open on one web process, its RSS before and after.

One web process (uvicorn, as the Procfile starts it, and the variants below for comparison), one
client process (`bench/wsclient.py`) that opens N connections to `/ws`, waits for every hello and
then stays idle. The figure is (RSS with N clients − RSS before) / N, read from /proc.
"""

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout import OURS, Clients, start_server  # noqa: E402
from bench.report import Options, Row  # noqa: E402
from bench.stack import running_stack, stop  # noqa: E402
from launcher.redis_server import free_port  # noqa: E402

CLIENTS = 10_000
GOAL_KB = 30.0
SETTLE = 2.0  # s after the last connection, so the figure is the idle state and not the handshakes
VARIANTS = {  # name → extra uvicorn flags
    "FramesProtocol, permessage-deflate off": ["--ws-per-message-deflate", "false"],
    "FramesProtocol, permessage-deflate on (uvicorn's default)": [],
}


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError("no VmRSS")


def measure(env: dict[str, str], n: int, flags: list[str]) -> tuple[float, int]:
    """KB per idle client, and how many connections were open."""
    port = free_port()
    server = start_server([*OURS, *flags], env, port)
    try:
        time.sleep(SETTLE)
        before = rss_kb(server.pid)
        clients = Clients(port, n)  # returns once every connection is upgraded
        try:
            time.sleep(SETTLE)
            after = rss_kb(server.pid)
            opened = int(subprocess.run(["ls", f"/proc/{server.pid}/fd"], capture_output=True, text=True)
                         .stdout.count("\n"))
        finally:
            clients.close()
        return (after - before) / n, opened
    finally:
        stop([server])


def run(options: Options) -> list[Row]:
    n = options.size(CLIENTS)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < n + 1000:
        return [Row(f"memory per idle WebSocket client ({n:,} clients)",
                    f"not run: the file limit is {hard:,} (ulimit -n); {n + 1000:,} needed")]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the server and client processes
    rows = []
    with running_stack(workers=0) as stack:
        env = {**stack.env, "LOG_LEVEL": "WARNING"}
        for name, flags in VARIANTS.items():
            per_client, fds = measure(env, n, flags)
            product = name == next(iter(VARIANTS))
            rows.append(Row(f"memory per idle WebSocket client, {n:,} clients on one web process ({name})",
                            f"{per_client:.1f} KB per client ({fds:,} open files)",
                            f"≤ {GOAL_KB:.0f} KB" if product else "", per_client <= GOAL_KB if product else None))
    return rows


if __name__ == "__main__":
    from bench.report import table

    os.chdir(ROOT)
    print(table(run(Options(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0, None))))
