"""Every Redis key and channel name the product uses (arq's own live under `arq:`)."""

from app.core.priority import Priority

SEQ = "tq:seq"  # INCR gives each change its system-wide sequence number
EVENTS = "tq:events"  # pub/sub: every task change, for the web processes' fan-out
LOGS = "tq:logs"  # pub/sub: task log lines, for detail views watching a task
CONTROL = "tq:control"  # pub/sub: cancel signals and queue pauses, for the workers
QUEUE_STATE = "tq:queue-state"  # pub/sub: a queue paused or resumed, as a ready WebSocket frame for the dashboards
ARQ_JOB_PREFIX = "arq:job:"  # arq.constants.job_key_prefix
ARQ_IN_PROGRESS_PREFIX = "arq:in-progress:"  # arq.constants.in_progress_key_prefix
WORKERS = "tq:workers"  # sorted set: worker id → heartbeat deadline (unix seconds)
WORKER_BEATS = "tq:worker-beats"  # pub/sub: each heartbeat, "<worker id>|<ready WebSocket frame>", for the workers view
METRICS = "tq:metrics"  # hash: task counters and histogram buckets since the start (metrics/tally.py)
MINUTE_PREFIX = "tq:minute:"  # + unix minute: hash of that minute's figures for the charts (metrics/tally.py)
DEPTH_RUNNING = "tq:depth-running"  # jobs of running tasks in arq's queue, as last sampled (metrics/depth.py)
WEBS = "tq:webs"  # sorted set: web process id → deadline of its live figures (metrics/figures.py)


def web_key(web_id: str) -> str:
    return f"tq:web:{web_id}"


def worker_key(worker_id: str) -> str:
    return f"tq:worker:{worker_id}"


def cancel_key(task_id: str) -> str:
    return f"tq:cancel:{task_id}"


def job_id(task_id: str, dispatch: int) -> str:
    return f"{task_id}:{dispatch}"


def delayed_key(queue: str, priority: str) -> str:
    """The sorted set where a priority's jobs wait for their time (a scheduled start, a retry's backoff)."""
    return f"{queue}:delayed:{priority}"


def delayed_keys(queue: str) -> list[str]:
    return [delayed_key(queue, priority) for priority in Priority]


def paused_key(queue: str) -> str:
    """Set (to the time it was paused) while the queue is paused."""
    return f"tq:paused:{queue}"
