"""Group commit of changes: the changes that arrive while one group is being written form the next
group, which takes its seqs with one INCRBY, is written in one transaction and published in one
pipeline. A lone change goes at once; under load (a worker running ten jobs, a burst of cancels) a
group costs three round trips and one commit instead of three and one per change (on PostgreSQL the
group's transaction first locks the count rows its moves touch, in one order: store/tasks.py). Each
change keeps its own outcome: a group whose transaction fails is written change by change.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from arq.connections import ArqRedis

from app.core import keys
from app.core.logs import detached
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


class Waiting(NamedTuple):
    change: Change
    done: "asyncio.Future[tuple[TaskDict | None, int]]"


class GroupWriter:
    def __init__(self, redis: ArqRedis, write: Write, write_all: WriteAll) -> None:
        self.redis = redis
        self.write = write
        self.write_all = write_all
        self._waiting: list[Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def apply(self, change: Change) -> tuple[TaskDict | None, int]:
        """The task as written (None if the guard refused it) and the seq it was written with."""
        done: asyncio.Future[tuple[TaskDict | None, int]] = asyncio.get_running_loop().create_future()
        self._waiting.append(Waiting(change, done))
        if self._writer is None or self._writer.done():
            self._writer = detached(self._write_groups(), name="group-writer")  # a group is many tasks' changes
        return await done

    async def _write_groups(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                await self._write(group)
            except BaseException as exc:
                for waiting in group:
                    if not waiting.done.done():
                        waiting.done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise

    async def _write(self, group: list[Waiting]) -> None:
        last = int(await self.redis.incrby(keys.SEQ, len(group)))
        seqs = range(last - len(group) + 1, last + 1)
        outcomes = await self._outcomes(group, seqs)
        tally = Tally()
        payloads, logs = [], []
        for waiting, seq, outcome in zip(group, seqs, outcomes, strict=True):
            if isinstance(outcome, Exception) or outcome.task is None:
                payloads.append(encode_skip(seq))
            else:
                payloads.append(encode_event(outcome.task, waiting.change.move.change))
                tally.observe(outcome.task, waiting.change.move)
            if not isinstance(outcome, Exception) and outcome.logs is not None:
                logs.append(f"{waiting.change.task_id}|{outcome.logs}")
        await publish_all(self.redis, payloads, tally, logs)
        for waiting, seq, outcome in zip(group, seqs, outcomes, strict=True):
            if waiting.done.done():
                continue
            if isinstance(outcome, Exception):
                waiting.done.set_exception(outcome)
            else:
                waiting.done.set_result((outcome.task, seq))

    async def _outcomes(self, group: list[Waiting], seqs: range) -> list[Outcome]:
        if len(group) == 1 and not group[0].change.writes_more:  # one statement: no transaction to open
            try:
                return [await self.write(group[0].change, seqs[0])]
            except Exception as exc:
                return [exc]
        try:
            return list(await self.write_all([(waiting.change, seq) for waiting, seq in zip(group, seqs, strict=True)]))
        except Exception as exc:
            # one change's error must not become the others' (nor a deadlock PostgreSQL ended by failing
            # this group's transaction): then each is written on its own
            return [exc] if len(group) == 1 else await self._each(group, seqs)

    async def _each(self, group: list[Waiting], seqs: range) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for waiting, seq in zip(group, seqs, strict=True):
            try:
                outcomes.append(await self.write(waiting.change, seq))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

