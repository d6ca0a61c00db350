"""Time from `DELETE /api/tasks/{id}` to the task's CANCELLED state, with real processes.

Starts its own redis-server, one web process (uvicorn) and one worker (`python worker.py`) on a
fresh SQLite file, runs N slow tasks one after another, cancels each while it runs and reports the
DELETE round trip (the API answers once the worker has stopped the task) as p50 / p95 / max.
Run: `.venv/bin/python bench/cancel_latency.py [N]`.
"""

import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import running_stack  # noqa: E402


def wait_until(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.01)


def main(samples: int) -> None:
    with running_stack() as stack, httpx.Client(base_url=stack.url, timeout=10) as http:
        times = []
        for _ in range(samples):
            task = http.post("/api/tasks/submit", json={"task_type": "batch_processing", "parameters": {
                "data": list(range(100)), "delay_per_item": 0.1}}).json()
            wait_until(lambda: http.get(f"/api/tasks/{task['id']}").json()["status"] == "RUNNING")
            time.sleep(0.25)
            started = time.perf_counter()
            answer = http.delete(f"/api/tasks/{task['id']}").json()
            times.append((time.perf_counter() - started) * 1000)
            assert answer["status"] == "CANCELLED", answer["status"]
    times.sort()
    print(f"cancel of a running task, DELETE → CANCELLED answered, {samples} samples: "
          f"p50 {statistics.median(times):.1f} ms, p95 {times[int(len(times) * 0.95) - 1]:.1f} ms, "
          f"max {times[-1]:.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
