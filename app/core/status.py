"""The task status machine as data: the statuses, their named sets, the allowed transitions, and the
moves (every kind of change the code makes to a task), each checked against the transitions."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


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
ONLY_RUNNING = frozenset({Status.RUNNING})

# The contract's transitions, target → sources: no other change of status may ever be written.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.RUNNING: WAITING,
    Status.SUCCESS: ONLY_RUNNING,
    Status.FAILED: ONLY_RUNNING,
    Status.CANCELLED: CANCELLABLE,
    Status.RETRYING: ONLY_RUNNING,
    Status.PENDING: RETRYABLE,
}

Change = Literal["created", "status", "progress", "replay"]  # what a task event tells its clients


@dataclass(frozen=True)
class Move:
    """One kind of change made to an existing task: the statuses it may find the task in (the store's
    `status IN (…)` guard) and the status it leaves it in (None: unchanged, e.g. progress). A move whose
    sources the transitions do not allow cannot be defined, and the store writes nothing but moves."""

    name: str
    sources: frozenset[Status]
    target: Status | None = None
    change: Change = "status"  # "progress" events may be coalesced on the way to clients

    def __post_init__(self) -> None:
        allowed = self.sources if self.target is None else TRANSITIONS[self.target]
        if not self.sources or not self.sources <= allowed:
            raise ValueError(f"move {self.name!r}: {sorted(self.sources)} → {self.target} is not an allowed transition")


START = Move("start", WAITING, Status.RUNNING)  # a worker claims a queued task
PROGRESS = Move("progress", ONLY_RUNNING, change="progress")  # a running attempt's progress and stage
CANCEL_REQUEST = Move("cancel request", ONLY_RUNNING)  # the flag a running task's worker stops on
SUCCEED = Move("succeed", ONLY_RUNNING, Status.SUCCESS)
FAIL = Move("fail", ONLY_RUNNING, Status.FAILED)  # the attempts are spent, or the error is not worth another
STOP = Move("stop", ONLY_RUNNING, Status.CANCELLED)  # a running attempt stopped because of a cancel
CANCEL = Move("cancel", WAITING, Status.CANCELLED)  # a queued task cancelled before it started
RETRY_LATER = Move("retry later", ONLY_RUNNING, Status.RETRYING)  # an attempt failed or was handed back
REQUEUE = Move("requeue", WAITING)  # a queued task whose arq job was lost gets a new one, its status kept
MANUAL_RETRY = Move("manual retry", RETRYABLE, Status.PENDING)
RUN_NOW = Move("run now", WAITING)  # a task waiting for a later start is queued at once, its status kept

MOVES = (START, PROGRESS, CANCEL_REQUEST, SUCCEED, FAIL, STOP, CANCEL, RETRY_LATER, REQUEUE, MANUAL_RETRY, RUN_NOW)
