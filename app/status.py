"""The task status machine as data: the statuses, their named sets and the allowed moves."""

from enum import StrEnum


class Status(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    RETRYING = "RETRYING"


FINAL = frozenset({Status.SUCCESS, Status.FAILED, Status.CANCELLED})
WAITING = frozenset({Status.PENDING, Status.RETRYING})  # queued; a cancel ends them at once
CANCELLABLE = WAITING | {Status.RUNNING}
RETRYABLE = frozenset({Status.FAILED, Status.CANCELLED})  # a manual retry sends them back to PENDING

# Every allowed move, target → sources. Store updates are guarded with `status IN (sources)`,
# so no process can move a task backwards whatever the interleaving.
MOVES: dict[Status, frozenset[Status]] = {
    Status.RUNNING: WAITING,
    Status.SUCCESS: frozenset({Status.RUNNING}),
    Status.FAILED: frozenset({Status.RUNNING}),
    Status.CANCELLED: CANCELLABLE,
    Status.RETRYING: frozenset({Status.RUNNING}),
    Status.PENDING: RETRYABLE,
}


def sources(target: Status) -> frozenset[Status]:
    return MOVES[target]
