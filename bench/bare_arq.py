"""The bare engine, the baseline of the end-to-end and submit scenarios: a no-op arq function drained
by a plain arq worker (the same concurrency as ours, `poll_delay` tuned down from arq's 0.5 s),
with JSON instead of pickle as our jobs use. Run as `python -m bench.bare_arq` by bench/drain.py."""

import json
import os
from typing import Any

from arq import run_worker
from arq.connections import RedisSettings

QUEUE = "bench:bare"


async def noop(ctx: dict[str, Any]) -> None:
    return None


class WorkerSettings:
    functions = [noop]
    queue_name = QUEUE
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    max_jobs = int(os.environ.get("WORKER_CONCURRENCY", "10"))
    poll_delay = 0.01
    keep_result = 3600
    job_serializer = staticmethod(lambda value: json.dumps(value, default=str).encode())
    job_deserializer = staticmethod(json.loads)


if __name__ == "__main__":
    run_worker(WorkerSettings)  # type: ignore[arg-type]
