"""Scheduling accuracy: 100 tasks submitted with `run_at` spread over a few seconds, half of them
high priority; lateness = the start the worker recorded − the time asked for (never negative: a
task must not start early). One web process, one worker, SQLite."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from bench.report import Options, Row, percentile
from bench.stack import running_stack

SAMPLES = 100
SPREAD = 0.05  # seconds between two scheduled starts
LEAD = 2.0  # seconds from submitting the first to its start: every submit lands before its time
GOAL_S = 1.0


async def _measure(url: str, samples: int) -> tuple[list[float], int]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        first = datetime.now(UTC) + timedelta(seconds=LEAD)
        submitted = []
        for i in range(samples):
            at = first + timedelta(seconds=i * SPREAD)
            body = {"task_type": "batch_processing", "parameters": {"data": [1], "delay_per_item": 0},
                    "run_at": at.isoformat(), "priority": "high" if i % 2 else "default"}
            submitted.append((await http.post("/api/tasks/submit", json=body)).json())
        lateness, early = [], 0
        for task in submitted:
            while (done := (await http.get(f"/api/tasks/{task['id']}")).json())["status"] != "SUCCESS":
                await asyncio.sleep(0.05)
            late = (datetime.fromisoformat(done["started_at"]) - datetime.fromisoformat(task["run_at"]))
            lateness.append(late.total_seconds())
            early += late.total_seconds() < 0
    return lateness, early


def run(options: Options) -> list[Row]:
    with running_stack() as stack:
        lateness, early = asyncio.run(_measure(stack.url, options.size(SAMPLES)))
    ms = [value * 1000 for value in lateness]
    return [Row(f"scheduled start: lateness over {len(ms)} tasks (run_at → started)",
                f"p50 {percentile(ms, 50):.1f} ms, max {max(ms):.1f} ms, {early} early",
                goal=f"none early, max ≤ {GOAL_S:g} s", met=early == 0 and max(lateness) <= GOAL_S)]
