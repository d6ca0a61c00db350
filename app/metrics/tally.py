"""Task figures, recorded in Redis by the process that makes each change, in the same round trip
that publishes the change's event: counters and histograms for GET /metrics, per-minute buckets for
the dashboard's charts (with the longest run per type and the longest wait of each minute, so that
a percentile read from the buckets never exceeds what was observed: metrics/series.py).

Every web and worker process adds to the same Redis hashes (HINCRBY, HINCRBYFLOAT), so any web
process reads the same global totals, however many processes run. A change is counted where its
event is published (lifecycle/groups.py, lifecycle/submit.py, lifecycle/jobs.py), hence once: a change refused by the
status machine publishes a skip and counts nothing.
"""

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from app.core import keys
from app.core.status import CANCEL, FAIL, MANUAL_RETRY, RETRY_LATER, START, STOP, SUCCEED, Move
from app.core.wire import TaskDict

# Upper bounds (seconds) of the run-time and wait-time buckets, log-spaced; a last bucket, +Inf, follows.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, 120.0, 300.0, 600.0,
           1800.0, 3600.0)
MINUTE_TTL = 25 * 3600  # seconds a minute's figures are kept: the day chart reads 24 hours back

# What each move counts as (counters by task type); the moves left out (progress, a cancel request, a
# lost job queued again) count nothing.
COUNTED = {START: "started", SUCCEED: "succeeded", FAIL: "failed", STOP: "cancelled", CANCEL: "cancelled",
           RETRY_LATER: "retried", MANUAL_RETRY: "retried"}
RUN_ENDS = frozenset({SUCCEED, FAIL, STOP, RETRY_LATER})  # the moves that end a run: its time is observed
COUNTERS = ("submitted", "started", "succeeded", "failed", "cancelled", "retried")


def bucket(seconds: float) -> int:
    """The index of the bucket an observation falls in (`le` semantics: a value on a bound is in it)."""
    return bisect_left(BUCKETS, seconds)


def minute_key(minute: int) -> str:
    return f"{keys.MINUTE_PREFIX}{minute}"


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


class Tally:
    """The increments a group of changes records, merged per field, written on the pipeline that
    publishes the group's events."""

    def __init__(self) -> None:
        self.counts: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.sums: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.maxima: dict[tuple[str, str], float] = {}  # (minute hash, field) → the longest time observed

    def __bool__(self) -> bool:
        return bool(self.counts)

    def observe(self, task: TaskDict, move: Move | None = None) -> None:
        """Count one change as written: a new task (no move), or `move`."""
        kind = task["task_type"]
        if move is None:
            self.counts[keys.METRICS, f"submitted|{kind}"] += 1
            return
        if move not in COUNTED:
            return
        self.counts[keys.METRICS, f"{COUNTED[move]}|{kind}"] += 1
        if move == START and task["attempts"] == 1 and task["started_at"]:
            start = _seconds(task["started_at"])
            ready = max(_seconds(task["created_at"]), _seconds(task["run_at"]) if task["run_at"] else 0.0)
            self._histogram("wait", kind, max(start - ready, 0.0), start)
        if move in RUN_ENDS and task["started_at"]:
            end = _seconds(task["completed_at"] or task["updated_at"])
            self._histogram("run", kind, max(end - _seconds(task["started_at"]), 0.0), end)
            if move in (SUCCEED, FAIL):
                self.counts[minute_key(int(end // 60)), COUNTED[move]] += 1

    def _histogram(self, name: str, kind: str, seconds: float, at: float) -> None:
        index = bucket(seconds)
        self.counts[keys.METRICS, f"{name}|{kind}|{index}"] += 1
        self.sums[keys.METRICS, f"{name}_sum|{kind}"] += seconds
        # The charts: wait times of all types together, run times per type.
        minute = minute_key(int(at // 60))
        field = f"wait|{index}" if name == "wait" else f"run|{kind}|{index}"
        self.counts[minute, field] += 1
        longest = (minute, "wait_max" if name == "wait" else f"run_max|{kind}")
        self.maxima[longest] = max(self.maxima.get(longest, 0.0), seconds)

    def increments(self) -> list[tuple[str, str, int]]:
        """(hash, field, amount) of each count, for a script that adds them itself (lifecycle/jobs.py);
        only counts: new tasks observe no histogram."""
        assert not self.sums and all(key == keys.METRICS for key, _ in self.counts), "counts of tq:metrics only"
        return [(key, field, n) for (key, field), n in self.counts.items()]

    def figures(self) -> list[str | int | float]:
        """The figures as (op, hash, field, value) quadruples for the publishing script
        (lifecycle/publish.py): `i` adds a count, `f` a sum, `m` keeps the greater value (Redis has no
        HSET-if-greater: the script compares and sets in one step, whoever else writes), `e` sets a
        minute's expiry (its field unused)."""
        found: list[str | int | float] = []
        for (key, field), n in self.counts.items():
            found += ["i", key, field, n]
        for (key, field), amount in self.sums.items():
            found += ["f", key, field, amount]
        for (key, field), most in self.maxima.items():
            found += ["m", key, field, repr(most)]
        for key in {key for key, _ in self.counts if key != keys.METRICS}:
            found += ["e", key, "", MINUTE_TTL]
        return found


def submitted(tasks: Iterable[TaskDict]) -> Tally:
    """The figures of new tasks, recorded with their "created" events."""
    tally = Tally()
    for task in tasks:
        tally.observe(task)
    return tally
