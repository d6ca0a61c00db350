"""Every Redis key and channel name the product uses (arq's own live under `arq:`)."""

SEQ = "tq:seq"  # INCR gives each change its system-wide sequence number
EVENTS = "tq:events"  # pub/sub: every task change, for the web processes' fan-out
CONTROL = "tq:control"  # pub/sub: cancel signals, for the workers
WORKERS = "tq:workers"  # sorted set: worker id → heartbeat deadline (unix seconds)


def worker_key(worker_id: str) -> str:
    return f"tq:worker:{worker_id}"


def cancel_key(task_id: str) -> str:
    return f"tq:cancel:{task_id}"


def job_id(task_id: str, dispatch: int) -> str:
    return f"{task_id}:{dispatch}"
