"""Group commit of changes: the changes that arrive while one group is being written form the next
group (core/batches.py), which takes its seqs with one INCRBY, is written in one transaction and
published in one script. A lone change goes at once; under load (a worker running ten jobs, a burst of cancels) a
group costs three round trips and one commit instead of three and one per change (on PostgreSQL the
group's transaction first locks the count rows its moves touch, in one order: store/tasks.py). Each
change keeps its own outcome: a group whose transaction fails is written change by change.
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from arq.connections import ArqRedis

from app.core import keys
from app.core.batches import Batches
from app.core.status import FINAL, Move
from app.core.wire import TaskDict, TimelineEntry, encode_event, encode_skip
from app.lifecycle.publish import publish_all
from app.metrics.tally import Tally

LogBatch = tuple[int, list[tuple[datetime, str]]]  # an attempt's log lines (its number, (time, line) each)


@dataclass(frozen=True)
class Change:
    """One change to one task: the move it makes, the columns it writes besides the status, its
    timeline entry, and the attempt (dispatch) it must still belong to."""

    task_id: str
    move: Move
    values: Mapping[str, Any]
    timeline: TimelineEntry | None = None
    dispatch: int | None = None
    logs: LogBatch | None = None  # lines the attempt logged last, written (and published) with the change

    @property
    def ends_task(self) -> bool:
        return self.move.target in FINAL

    @property
    def writes_more(self) -> bool:
        """Whether it writes more than its own row (webhook deliveries, log lines)."""
        return self.ends_task or self.logs is not None


class Written(NamedTuple):
    task: TaskDict | None  # as written; None if its guard refused it
    logs: str | None = None  # the logs frame of the lines written with it


Outcome = Written | Exception
Write = Callable[[Change, int], Awaitable[Written]]  # one change at its seq
WriteAll = Callable[[list[tuple[Change, int]]], Awaitable[list[Written]]]  # a group's, in one transaction


class GroupWriter:
    def __init__(self, redis: ArqRedis, write: Write, write_all: WriteAll) -> None:
        self.redis = redis
        self.write = write
        self.write_all = write_all
        self._groups: Batches[Change, tuple[TaskDict | None, int]] = Batches(self._write, "group-writer")

    async def apply(self, change: Change) -> tuple[TaskDict | None, int]:
        """The task as written (None if the guard refused it) and the seq it was written with."""
        return await self._groups.add(change)

    async def _write(self, group: list[Change]) -> list[tuple[TaskDict | None, int] | Exception]:
        last = int(await self.redis.incrby(keys.SEQ, len(group)))
        seqs = range(last - len(group) + 1, last + 1)
        outcomes = await self._outcomes(group, seqs)
        tally = Tally()
        payloads, logs = [], []
        for change, seq, outcome in zip(group, seqs, outcomes, strict=True):
            if isinstance(outcome, Exception) or outcome.task is None:
                payloads.append(encode_skip(seq))
            else:
                payloads.append(encode_event(outcome.task, change.move.change))
                tally.observe(outcome.task, change.move)
            if not isinstance(outcome, Exception) and outcome.logs is not None:
                logs.append(f"{change.task_id}|{outcome.logs}")
        await publish_all(self.redis, payloads, tally, logs)
        return [outcome if isinstance(outcome, Exception) else (outcome.task, seq)
                for seq, outcome in zip(seqs, outcomes, strict=True)]

    async def _outcomes(self, group: list[Change], seqs: range) -> list[Outcome]:
        if len(group) == 1 and not group[0].writes_more:  # one statement: no transaction to open
            try:
                return [await self.write(group[0], seqs[0])]
            except Exception as exc:
                return [exc]
        try:
            return list(await self.write_all(list(zip(group, seqs, strict=True))))
        except Exception as exc:
            # one change's error must not become the others' (nor a deadlock PostgreSQL ended by failing
            # this group's transaction): then each is written on its own
            return [exc] if len(group) == 1 else await self._each(group, seqs)

    async def _each(self, group: list[Change], seqs: range) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for change, seq in zip(group, seqs, strict=True):
            try:
                outcomes.append(await self.write(change, seq))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

