"""Fan-out to many WebSocket clients: the product's web process against the naive loop, same run.

Synthetic task changes (80 % progress, 20 % status, over 100 tasks) are published on Redis in the
product's wire format with consecutive seqs from the product's own counter, at rising rates, to one
web process with N connected clients (`bench/wsclient.py`, a separate lean process). Each step
publishes for a few seconds, ending with a status change; a rate is sustained when every client
has that last change within `LAG_LIMIT` of its publish. The saturated rate is the highest one
sustained; then a step at half of it measures publish → client latency (a timestamp the publisher
puts in `stage`). The same clients and rates go to `bench/naive_fanout.py` (one subscription,
`for ws in clients: await ws.send_text(msg)`), served by uvicorn with the same flags.
"""

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core import keys  # noqa: E402
from app.core.wire import TaskDict, encode_event  # noqa: E402
from bench.report import Options, Row  # noqa: E402
from bench.stack import BIN, running_stack, stop  # noqa: E402
from launcher.redis_server import free_port  # noqa: E402

CLIENTS = 1000
TASKS = 100
STEP_SECONDS = 3.0
LAG_LIMIT = 0.25  # s: the last change of a step reached every client within this: the rate is sustained
RATE_START = 5.0  # changes/s
RATE_FACTOR = 1.4
RATE_MAX = 20_000.0
P99_GOAL_MS = 50.0
UVICORN_FLAGS = ["--log-level", "warning", "--ws-max-size", "65536"]  # as bench/stack.py and the Procfile
OURS = ["app.main:create_app", "--factory", "--ws", "app.web.live.frames:FramesProtocol"]
NAIVE = ["bench.naive_fanout:create_app", "--factory"]


@dataclass
class Step:
    rate: float
    sustained: bool
    frames_per_s: float  # frames counted at the clients
    lag_s: float  # last change published → every client has it (inf: not within the wait)
    hist: Counter[int]  # publish → receive latency, 0.1 ms buckets
    closed: dict[str, int]
    server_us: float  # the server's CPU time (user + system) per client-change published
    client_cpu: float  # the client process's CPU share during the step (1.0: one core)


def synthetic_task(i: int) -> TaskDict:
    return {"id": f"00000000-0000-4000-8000-{i:012d}", "task_type": "batch_processing", "status": "RUNNING",
            "parameters": {"data": ["a", "b", "c", "d", "e"], "delay_per_item": 0.1, "fail_fast": False},
            "progress": 0.0, "stage": None, "result_data": None, "error_message": None,
            "created_at": "2025-01-01T00:00:00.000000+00:00", "started_at": "2025-01-01T00:00:01.000000+00:00",
            "completed_at": None, "updated_at": "2025-01-01T00:00:01.000000+00:00", "attempts": 1, "dispatch": 1,
            "seq": 0, "cancel_requested": False, "worker": "bench-worker",
            "timeline": [{"status": "PENDING", "at": "2025-01-01T00:00:00.000000+00:00"},
                         {"status": "RUNNING", "at": "2025-01-01T00:00:01.000000+00:00", "attempt": 1}],
            "max_attempts": None, "attempts_base": None, "timeout": None, "next_run_at": None,
            "idempotency_key": None}


class Publisher:
    """Changes at a steady rate, in ticks: one INCRBY reserves the tick's seqs, one pipeline publishes."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.tasks = [synthetic_task(i) for i in range(TASKS)]
        self.count = 0

    async def run(self, rate: float, seconds: float) -> tuple[int, int]:
        """Publishes for `seconds`; returns the last change's seq and its publish time (ns)."""
        total = max(2, round(rate * seconds))
        tick = max(0.002, min(0.02, 1 / rate))
        started = time.monotonic()
        sent = 0
        last = (0, 0)
        while sent < total:
            due = min(total, int((time.monotonic() - started) * rate) + 1)
            if due > sent:
                last = await self._publish(due - sent, final=due == total)
                sent = due
            await asyncio.sleep(tick)
        return last

    async def _publish(self, n: int, *, final: bool) -> tuple[int, int]:
        first = await self.redis.incrby(keys.SEQ, n) - n + 1
        now = time.time_ns()
        pipe = self.redis.pipeline(transaction=False)
        for k in range(n):
            self.count += 1
            task = self.tasks[self.count % TASKS]
            status_change = self.count % 5 == 0 or (final and k == n - 1)
            task["seq"] = first + k
            task["stage"] = f"t{now}"
            task["progress"] = (task["progress"] + 1) % 100
            pipe.publish(keys.EVENTS, encode_event(task, "status" if status_change else "progress"))
        await pipe.execute()
        return first + n - 1, now


class Clients:
    """The client process: N connections to one server, driven over stdin/stdout."""

    def __init__(self, port: int, n: int) -> None:
        self.n = n
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.wsclient", "127.0.0.1", str(port), str(n)],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"clients did not connect: {line!r}")

    def ask(self, **command: object) -> dict:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        try:
            self.proc.stdin.write('{"cmd": "quit"}\n')
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


async def run_step(publisher: Publisher, clients: Clients, server: psutil.Process, rate: float,
                   seconds: float) -> Step:
    clients.ask(cmd="step")
    client = psutil.Process(clients.proc.pid)
    cpu_before, client_before = cpu_seconds(server), cpu_seconds(client)
    started = time.time_ns()
    seq, published_ns = await publisher.run(rate, seconds)
    result = await asyncio.to_thread(clients.ask, cmd="wait", seq=seq, timeout=max(5.0, seconds))
    done = result["done_ns"]
    lag = (done - published_ns) / 1e9 if done else float("inf")
    elapsed = ((done or time.time_ns()) - started) / 1e9
    hist = Counter({int(k): v for k, v in result["hist"].items()})
    changes = round(rate * seconds) * clients.n
    return Step(rate, lag <= LAG_LIMIT and not result["closed"], result["frames"] / elapsed, lag, hist,
                result["closed"], (cpu_seconds(server) - cpu_before) * 1e6 / changes,
                (cpu_seconds(client) - client_before) / elapsed)


def listening(port: int) -> psutil.Process:
    """The server process that listens on `port`."""
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    raise LookupError(f"no process listens on {port}")


async def climb(redis_url: str, port: int, n: int, seconds: float) -> list[Step]:
    """Rising rates until two in a row are not sustained (or the client connections start closing)."""
    server = listening(port)
    redis = Redis.from_url(redis_url)
    clients = await asyncio.to_thread(Clients, port, n)
    try:
        publisher = Publisher(redis)
        await run_step(publisher, clients, server, RATE_START, 1.0)  # warm-up
        steps: list[Step] = []
        rate = RATE_START
        while rate <= RATE_MAX:
            steps.append(await run_step(publisher, clients, server, rate, seconds))
            if (len(steps) > 1 and not any(s.sustained for s in steps[-2:])) or steps[-1].closed:
                break  # two in a row not sustained: one alone may be another process's burst on this machine
            rate *= RATE_FACTOR
        return steps
    finally:
        await asyncio.to_thread(clients.close)
        await redis.aclose()


async def latency_at(redis_url: str, port: int, n: int, rate: float, seconds: float) -> Step:
    server = listening(port)
    redis = Redis.from_url(redis_url)
    clients = await asyncio.to_thread(Clients, port, n)
    try:
        publisher = Publisher(redis)
        await run_step(publisher, clients, server, rate, 1.0)
        return await run_step(publisher, clients, server, rate, seconds)
    finally:
        await asyncio.to_thread(clients.close)
        await redis.aclose()


def percentile_ms(hist: Counter[int], p: float) -> float:
    total = sum(hist.values())
    rank = max(1, round(p / 100 * total))
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return (bucket + 1) / 10
    return float("nan")


def saturated(steps: list[Step]) -> Step | None:
    kept = [s for s in steps if s.sustained]
    return kept[-1] if kept else None


def describe(step: Step | None, n: int) -> str:
    if step is None:
        return "no rate sustained"
    return (f"{step.rate:,.0f} changes/s × {n:,} clients = {step.rate * n:,.0f} client-changes/s "
            f"({step.frames_per_s:,.0f} frames/s counted)")


def start_server(app: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([str(BIN / "uvicorn"), *app, "--port", str(port), *UVICORN_FLAGS], cwd=ROOT, env=env)
    wait_port(port)
    return proc


def wait_port(port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


def run(options: Options) -> list[Row]:
    n = options.size(CLIENTS)
    seconds = max(1.0, STEP_SECONDS * min(1.0, options.scale * 2))
    with running_stack(workers=0) as stack:
        naive_port = free_port()
        naive_proc = start_server(NAIVE, stack.env, naive_port)
        try:
            naive = asyncio.run(climb(stack.redis_url, naive_port, n, seconds))
        finally:
            stop([naive_proc])
        port = free_port()
        ours_proc = start_server(OURS, stack.env, port)
        try:
            ours = asyncio.run(climb(stack.redis_url, port, n, seconds))
            best, base = saturated(ours), saturated(naive)
            half = asyncio.run(latency_at(stack.redis_url, port, n, best.rate / 2, seconds * 2)) if best else None
        finally:
            stop([ours_proc])
    for name, steps in (("ours", ours), ("naive", naive)):
        for s in steps:
            print(f"  fan-out {name}: {s.rate:8,.0f}/s sustained={s.sustained} lag={s.lag_s:.3f}s "
                  f"frames/s={s.frames_per_s:,.0f} p99={percentile_ms(s.hist, 99):.1f}ms closed={s.closed} "
                  f"server {s.server_us:.1f} µs/client-change, client CPU {s.client_cpu:.0%}",
                  file=sys.stderr)
    ratio = best.rate / base.rate if best and base else None
    rows = [Row(f"fan-out to {n:,} WebSocket clients, saturated rate", describe(best, n), "≥ 2× naive loop",
                ratio is not None and ratio >= 2, f"naive loop {describe(base, n)}", ratio)]
    if half is not None:
        p99 = percentile_ms(half.hist, 99)
        rows.append(Row(f"fan-out publish → client latency at half the saturated rate ({half.rate:,.0f} changes/s)",
                        f"p50 {percentile_ms(half.hist, 50):.1f} ms, p99 {p99:.1f} ms over "
                        f"{sum(half.hist.values()):,} deliveries", f"p99 ≤ {P99_GOAL_MS:.0f} ms",
                        p99 <= P99_GOAL_MS and half.sustained))
    return rows


if __name__ == "__main__":
    from bench.report import table

    print(table(run(Options(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0, None))))
