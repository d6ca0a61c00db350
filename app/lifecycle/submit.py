"""Submitting tasks: one, a batch, or a re-run of an earlier task; each checked first (422 naming the
field), then written by one pipeline: room in the queue and seqs from Redis in one script, the rows
in one transaction, their arq jobs and "created" events in one Redis script (atomic, one round trip).

Single submits are written in groups: whatever submits arrive while the previous group is being
written form the next one (group commit), so under load a commit (an fsync on SQLite) and each Redis
round trip serve many submits, and an idle server writes a lone submit at once. A group that fails
is written submit by submit, so each keeps its own outcome (an Idempotency-Key met twice fails alone).
Every seq taken is published once, as the event or as a skip.
"""

import asyncio
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from arq.connections import ArqRedis

from app.core import keys
from app.core.errors import OUTAGES, ClientError, InvalidParameters, Unavailable
from app.core.keys import delayed_keys
from app.core.logs import detached, name_task
from app.core.wire import TaskDict, encode_event, encode_skip
from app.lifecycle.jobs import Jobs
from app.lifecycle.lookup import existing
from app.lifecycle.new_task import OPTION_FIELDS, checked_parameters, checked_uploads, task_row
from app.lifecycle.publish import publish_all
from app.metrics.tally import submitted
from app.store.tasks import TaskStore
from app.store.uploads import UploadStore
from app.tasks import TaskTypes
from app.webhooks.hooks import Hooks

MAX_GROUP = 1000  # single submits written together at most (and the batch endpoint's cap)

# Room for ARGV[2] more jobs below ARGV[1] waiting ones (all of them, or as many as fit when ARGV[3]
# is "0"), and that many seqs: returns {jobs waiting, admitted, last seq taken}. One round trip, and
# no seq is taken for a submit refused for room. KEYS: the seq counter, then the queue and the
# delayed sets (lifecycle/jobs.py).
ADMIT = """
local queued = 0
for i = 2, #KEYS do queued = queued + redis.call('ZCARD', KEYS[i]) end
local wanted = tonumber(ARGV[2])
local admitted = math.max(0, math.min(wanted, tonumber(ARGV[1]) - queued))
if ARGV[3] == '1' and admitted < wanted then admitted = 0 end
if admitted == 0 then return {queued, 0, 0} end
return {queued, admitted, redis.call('INCRBY', KEYS[1], admitted)}
"""


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class Submissions:
    def __init__(self, store: TaskStore, redis: ArqRedis, types: TaskTypes, uploads: UploadStore, max_queued: int,
                 hooks: Hooks = Hooks()) -> None:
        self.store = store
        self.types = types
        self.redis = redis
        self.uploads = uploads
        self.max_queued = max_queued
        self.hooks = hooks
        self.jobs = Jobs(redis)
        self._admit = redis.register_script(ADMIT)
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[TaskDict]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(
        self, task_type: object, parameters: object, options: Mapping[str, Any] | None = None, *,
        idempotency_key: str | None = None, source_task_id: str | None = None,
    ) -> tuple[TaskDict, bool]:
        """The new task and True; or, for an Idempotency-Key seen before, the first task and False.
        `options`: max_attempts, timeout, priority, run_at or delay, callback_url (lifecycle/new_task.py)."""
        values = self._new(task_type, parameters, options or {}, source_task_id=source_task_id)
        name_task(values["id"])  # the rest of the request is about the new task (a replayed key: see _replayed)
        if idempotency_key:
            request_hash = _fingerprint(values["task_type"], values["parameters"],
                                        _options_fingerprinted(values, options))
            if earlier := await self._replayed(idempotency_key, request_hash):
                return earlier, False
            values.update(idempotency_key=idempotency_key, request_hash=request_hash)
        try:
            return await self._one(values), True
        except Exception:
            # Two submits with one Idempotency-Key raced: the unique index let one through.
            if idempotency_key and (earlier := await self._replayed(idempotency_key, values["request_hash"])):
                return earlier, False
            raise

    async def submit_many(self, items: list[dict[str, Any]]) -> list[TaskDict]:
        """New tasks, all or none: every item is checked first (422 naming `tasks[i].<field>`), then
        they are stored in one transaction and queued in one Redis script (503 if they do not all fit
        under the queue cap, or Redis fails)."""
        validated = self._validated_together(items)
        rows = []
        for index, item in enumerate(items):
            try:
                rows.append(self._new(item.get("task_type"), item.get("parameters", {}), item, nested=True,
                                      validated=validated.get(index)))
            except InvalidParameters as exc:
                raise InvalidParameters(f"tasks[{index}].{exc.field}", exc.message) from None
        return await self._many(rows, whole=True)

    def _validated_together(self, items: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """The items' parameters checked a type at a time (one pydantic call for all the items of a type):
        item index → parameters. A type with an invalid item is left out: its items are checked one
        by one, to name the field."""
        of_type: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            if isinstance(name := item.get("task_type"), str) and name in self.types:
                of_type.setdefault(name, []).append(index)
        validated: dict[int, dict[str, Any]] = {}
        for name, indexes in of_type.items():
            params = self.types[name].validate_many([items[index].get("parameters", {}) for index in indexes])
            if params is not None:
                validated.update(zip(indexes, params, strict=True))
        return validated

    async def rerun(self, task_id: str, changes: Mapping[str, Any]) -> TaskDict:
        """A new task from an earlier one, linked to it: its parameters and options, with `changes`
        (any of parameters, priority, max_attempts, timeout, run_at, delay, callback_url) applied; the
        earlier task is left as it is. Only a `callback_url` in `changes` is checked (422): one inherited
        is kept while this server would still take it (WEBHOOK_SECRET set, the address allowed), and
        dropped otherwise, since the caller never sent it."""
        source = await existing(self.store, task_id)
        options = {"priority": source["priority"], "max_attempts": source["max_attempts"],
                   "timeout": source["timeout"]}
        if source["callback_url"] and self.hooks.accepts(source["callback_url"]):
            options["callback_url"] = source["callback_url"]
        options.update({name: value for name, value in changes.items() if name != "parameters"})
        parameters = changes.get("parameters", source["parameters"])
        task, _ = await self.submit(source["task_type"], parameters, options, source_task_id=source["id"])
        return task

    def _new(self, task_type: object, parameters: object, options: Mapping[str, Any], *, nested: bool = False,
             source_task_id: str | None = None, validated: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new task's row, checked (its parameters already `validated` by their schema, or not yet);
        `nested` names parameters as `parameters.<name>` in a 422."""
        kind = self.types.named(task_type)
        try:
            params = checked_parameters(kind, parameters, self.uploads) if validated is None \
                else checked_uploads(kind, validated, self.uploads)
        except InvalidParameters as exc:
            if not nested or exc.field == "parameters":
                raise
            raise InvalidParameters(f"parameters.{exc.field}", exc.message) from None
        return task_row(kind.name, params, {k: v for k, v in options.items() if k in OPTION_FIELDS},
                        source_task_id=source_task_id, signed=self.hooks.signed,
                        allow_private=self.hooks.allow_private)

    async def _replayed(self, key: str, request_hash: str) -> TaskDict | None:
        found = await self.store.by_idempotency_key(key)
        if found is None:
            return None
        if found[1] != request_hash:
            raise InvalidParameters("Idempotency-Key", "was already used for a different request")
        name_task(found[0]["id"])
        return found[0]

    async def _one(self, values: dict[str, Any]) -> TaskDict:
        """Store and queue one task, written with whatever other submits are waiting."""
        done: asyncio.Future[TaskDict] = asyncio.get_running_loop().create_future()
        self._waiting.append((values, done))
        if self._writer is None or self._writer.done():
            self._writer = detached(self._write_groups(), name="submit-groups")  # a group is many submits
        return await done

    async def _write_groups(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            try:
                await self._write_group(group)
            except BaseException:  # the writer itself is being cancelled (shutdown): so are its waiters
                for _, done in group:
                    if not done.done():
                        done.cancel()
                raise

    async def _write_group(self, group: list[tuple[dict[str, Any], asyncio.Future[TaskDict]]]) -> None:
        try:
            created: list[TaskDict | BaseException] = list(await self._many([values for values, _ in group],
                                                                          whole=False))
        except ClientError as exc:  # Redis is down, or the queue is full: the same for every submit
            created = [exc] * len(group)
        except Exception as exc:
            created = [exc] if len(group) == 1 else [await self._alone(values) for values, _ in group]
        for index, (_, done) in enumerate(group):
            if done.done():  # its caller went away; the task stands, like any accepted submit
                continue
            outcome = created[index] if index < len(created) else Unavailable.queue_full()
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)

    async def _alone(self, values: dict[str, Any]) -> TaskDict | Exception:
        try:
            [task] = await self._many([values], whole=True)
        except Exception as exc:
            return exc
        return task

    async def _many(self, rows: list[Mapping[str, Any]], *, whole: bool) -> list[TaskDict]:
        """Store and queue new tasks, in order. `whole`: all of them or none (503 if they do not all
        fit under the queue cap); else as many as fit, the first ones. Nothing is kept if Redis
        fails (503); a database failure raises as it is."""
        try:
            queued, admitted, last = await self._admit(
                keys=[keys.SEQ, self.jobs.queue, *delayed_keys(self.jobs.queue)],
                args=[self.max_queued, len(rows), int(whole)])
        except OUTAGES as exc:
            raise Unavailable.redis_down(exc) from exc
        if not admitted:
            raise Unavailable.queue_full(queued)
        first = last - admitted + 1
        try:
            created = await self.store.insert_many([{**row, "seq": first + i} for i, row in enumerate(rows[:admitted])])
        except BaseException:
            await self._skip(range(first, last + 1))
            raise
        try:
            # The jobs, then the events, in one script. arq's WATCH/EXISTS guard against a job id
            # already in use is left out: these ids are new (a fresh uuid4 task id, dispatch 1).
            await self.jobs.write(created, events=[encode_event(task, "created") for task in created],
                                  tally=submitted(created))
        except BaseException as exc:
            # Not accepted: leave nothing behind. Should the delete fail too, the rows stay PENDING
            # without jobs, and the workers' reconciler queues them (worker/watchdog.py).
            await self.store.delete_many([task["id"] for task in created])
            await self._skip(range(first, last + 1))
            if isinstance(exc, OUTAGES):
                raise Unavailable.redis_down(exc) from exc
            raise
        return created

    async def _skip(self, seqs: range) -> None:
        await publish_all(self.redis, [encode_skip(seq) for seq in seqs])


def _options_fingerprinted(values: Mapping[str, Any], options: Mapping[str, Any] | None) -> dict[str, Any]:
    """What of a submit's options an Idempotency-Key's request must repeat: the limits as checked
    (an omitted limit and its default are different requests), a priority and start as given (a
    `delay` is not yet a time). Options left out keep the fingerprint of keys used before them."""
    shown: dict[str, Any] = {"max_attempts": values["max_attempts"], "timeout": values["timeout"]}
    for name in ("priority", "run_at", "delay", "callback_url"):
        if options and options.get(name) is not None:
            shown[name] = options[name]
    return shown
