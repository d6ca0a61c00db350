"""What an idle system costs, and how fast it still picks up: one web process, one worker and their
Redis, with nothing to do, measured in CPU over IDLE_SECONDS (utime + stime from /proc, as a share of
one core); then, in the same run, the pickup of tasks submitted to that idle system (submit → RUNNING
seen on /ws). A laptop running `make run` all day should not spin a fan, and idling must not be
bought with a slow start."""

import asyncio
import os
import time
from pathlib import Path

from bench.latency import PICKUP_GOAL_MS, latency_row, measure_pickups
from bench.report import Options, Row
from bench.stack import running_stack

IDLE_SECONDS = 30.0
SETTLE_SECONDS = 5.0  # start-up work (schema, first beats) is not idling
SAMPLES = 100
IDLE_GOAL = 1.0  # % of one core, all three processes together
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """The CPU a process has used so far (its threads included; children it waited for too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(value) for value in fields[11:15]) / TICKS  # utime, stime, cutime, cstime


def idle_cpu(pids: tuple[tuple[str, int], ...], seconds: float) -> dict[str, float]:
    """% of one core each kind of process used over `seconds` of wall time."""
    before = {pid: cpu_seconds(pid) for _, pid in pids}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    used: dict[str, float] = {}
    for kind, pid in pids:
        used[kind] = used.get(kind, 0.0) + (cpu_seconds(pid) - before[pid]) / elapsed * 100
    return used


def run(options: Options) -> list[Row]:
    with running_stack() as stack:
        time.sleep(SETTLE_SECONDS)
        used = idle_cpu(stack.pids, max(5.0, IDLE_SECONDS * min(options.scale, 1.0)))
        pickups = asyncio.run(measure_pickups(stack.url, options.size(SAMPLES)))
    total = sum(used.values())
    parts = ", ".join(f"{kind} {share:.2f} %" for kind, share in used.items())
    return [Row("idle CPU: web + worker + Redis, nothing to do", f"{total:.2f} % of a core ({parts})",
                goal=f"≤ {IDLE_GOAL:g} %", met=total <= IDLE_GOAL),
            latency_row("pickup, in the same run: submit → RUNNING on /ws", pickups, PICKUP_GOAL_MS)]
