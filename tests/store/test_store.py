"""The stores on SQLite and (with TEST_DATABASE_URL) PostgreSQL: guarded moves, seq, listing, replay."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.clock import utcnow
from app.core.status import (
    CANCEL,
    FINAL,
    MANUAL_RETRY,
    MOVES,
    PROGRESS,
    REQUEUE,
    START,
    STOP,
    SUCCEED,
    Status,
)
from app.core.wire import TaskDict
from app.store.filters import TaskFilter
from app.store.stores import Stores, open_stores
from app.worker.resilient import ResilientWorker
from tests.support.waits import submit, wait_for_status


@pytest.fixture
async def stores(any_db_url: str) -> AsyncIterator[Stores]:
    async with open_stores(any_db_url) as opened:
        yield opened


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """The web process and workers of the tests that start them use the store's database too."""
    return any_db_url


def row(task_id: str, seq: int, status: Status = Status.PENDING, task_type: str = "text_processing",
        **extra: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": task_id, "task_type": task_type, "status": status.value, "parameters": {"text": "hi"},
        "progress": 0.0, "created_at": extra.pop("created_at", now), "updated_at": now, "attempts": 0,
        "dispatch": 1, "seq": seq, "cancel_requested": False, "timeline": [], **extra,
    }


async def test_insert_and_get_round_trip_with_utc_datetimes(stores: Stores) -> None:
    store = stores.tasks
    inserted = await store.insert(row("a", 1))
    fetched = await store.get("a")
    assert fetched == inserted
    assert fetched is not None and fetched["parameters"] == {"text": "hi"}
    created = datetime.fromisoformat(fetched["created_at"])
    assert created.utcoffset() is not None and created.utcoffset().total_seconds() == 0
    assert await store.get("missing") is None


async def test_guarded_update_applies_allowed_move_and_appends_timeline(stores: Stores) -> None:
    store = stores.tasks
    await store.insert(row("a", 1))
    moved = await store.update("a", 2, START, {}, entry={"status": "RUNNING", "at": "now"})
    assert moved is not None and moved["status"] == "RUNNING" and moved["seq"] == 2
    assert moved["timeline"] == [{"status": "RUNNING", "at": "now"}]
    again = await store.update("a", 3, SUCCEED, {}, entry={"status": "SUCCESS", "at": "later"})
    assert again is not None and [e["status"] for e in again["timeline"]] == ["RUNNING", "SUCCESS"]


@pytest.mark.parametrize("final", sorted(FINAL))
async def test_no_backward_move_out_of_a_final_state(stores: Stores, final: str) -> None:
    store = stores.tasks
    await store.insert(row("a", 1, Status(final)))
    for move in MOVES:
        if move != MANUAL_RETRY:
            assert await store.update("a", 10, move, {}) is None, move
    fetched = await store.get("a")
    assert fetched is not None and fetched["status"] == final and fetched["seq"] == 1


async def test_an_older_seq_never_overwrites_a_newer_change(stores: Stores) -> None:
    store = stores.tasks
    await store.insert(row("a", 5, Status.RUNNING))
    assert await store.update("a", 4, PROGRESS, {"progress": 10.0}) is None
    assert await store.update("a", 5, PROGRESS, {"progress": 10.0}) is None
    updated = await store.update("a", 6, PROGRESS, {"progress": 10.0})
    assert updated is not None and updated["progress"] == 10.0


async def test_dispatch_guard_refuses_a_stale_job(stores: Stores) -> None:
    store = stores.tasks
    await store.insert(row("a", 1, dispatch=2))
    assert await store.update("a", 2, START, {}, dispatch=1) is None
    assert await store.update("a", 2, START, {}, dispatch=2)


async def test_racing_final_moves_leave_exactly_one_winner(stores: Stores) -> None:
    store = stores.tasks
    for i in range(20):
        await store.insert(row(f"r{i}", 1, Status.RUNNING))
    for i in range(20):
        results = await asyncio.gather(
            store.update(f"r{i}", 2, SUCCEED, {}),
            store.update(f"r{i}", 3, STOP, {}),
        )
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        fetched = await store.get(f"r{i}")
        assert fetched is not None and fetched["status"] == winners[0]["status"]


async def test_list_is_newest_first_filtered_and_counted(stores: Stores) -> None:
    store, queries = stores.tasks, stores.queries
    base = utcnow()
    from datetime import timedelta

    for i in range(6):
        status = Status.SUCCESS if i % 2 else Status.PENDING
        kind = "text_processing" if i < 3 else "batch_processing"
        await store.insert(row(f"t{i}", i + 1, status, kind, created_at=base + timedelta(seconds=i)))
    tasks, total = await queries.page(TaskFilter(status=None, task_type=None, id_prefix=None), limit=4, offset=0)
    assert [t["id"] for t in tasks] == ["t5", "t4", "t3", "t2"] and total == 6
    tasks, total = await queries.page(TaskFilter(status=None, task_type=None, id_prefix=None), limit=4, offset=4)
    assert [t["id"] for t in tasks] == ["t1", "t0"]
    tasks, total = await queries.page(TaskFilter(status="SUCCESS", task_type="batch_processing", id_prefix=None),
                                    limit=10, offset=0)
    assert [t["id"] for t in tasks] == ["t5", "t3"] and total == 2
    tasks, total = await queries.page(TaskFilter(status=None, task_type=None, id_prefix="d4"), limit=10, offset=0)
    assert tasks == [] and total == 0
    counts = await queries.counts()
    assert counts["SUCCESS"] == 3 and counts["PENDING"] == 3 and counts["FAILED"] == 0


async def test_changed_between_answers_what_changed_after_a_seq(stores: Stores) -> None:
    store = stores.tasks
    for i in range(5):
        await store.insert(row(f"t{i}", i + 1))
    await store.update("t0", 9, CANCEL, {})
    changed = await store.changed_between(2, 9, 100)
    assert [(t["id"], t["seq"]) for t in changed] == [("t2", 3), ("t3", 4), ("t4", 5), ("t0", 9)]
    assert [t["id"] for t in await store.changed_between(2, 5, 100)] == ["t2", "t3", "t4"]
    assert [t["id"] for t in await store.changed_between(2, 9, 2)] == ["t2", "t3"]
    assert await store.max_seq() == 9


async def test_id_prefix_search_is_a_key_range(stores: Stores) -> None:
    store, queries = stores.tasks, stores.queries
    for i, task_id in enumerate(["ab12", "ab34", "abf0", "ac00", "cd56"]):
        await store.insert(row(task_id, i + 1))
    found, total = await queries.page(TaskFilter(status=None, task_type=None, id_prefix="ab"), limit=10, offset=0)
    assert sorted(t["id"] for t in found) == ["ab12", "ab34", "abf0"] and total == 3
    found, total = await queries.page(TaskFilter(status=None, task_type=None, id_prefix="abf"), limit=10, offset=0)
    assert [t["id"] for t in found] == ["abf0"] and total == 1


async def test_counts_follow_inserts_moves_and_deletes_without_scanning(stores: Stores) -> None:
    store, queries = stores.tasks, stores.queries
    for i in range(4):
        await store.insert(row(f"c{i}", i + 1, task_type="text_processing" if i < 3 else "batch_processing"))
    await store.update("c0", 10, START, {})
    await store.update("c0", 11, PROGRESS, {"progress": 50.0})  # no status move
    await store.update("c1", 12, CANCEL, {})
    assert await store.update("c1", 13, START, {}) is None
    await store.delete("c2")
    counts = await queries.counts()
    assert (counts["PENDING"], counts["RUNNING"], counts["CANCELLED"], sum(counts.values())) == (1, 1, 1, 3)
    _, total = await queries.page(TaskFilter(status="PENDING", task_type="batch_processing", id_prefix=None), limit=1, offset=0)
    assert total == 1
    _, total = await queries.page(TaskFilter(status=None, task_type="text_processing", id_prefix=None), limit=1, offset=0)
    assert total == 2


async def _execute(url: str, *statements: str) -> None:
    """Plain SQL outside the app, as an operator (or an older version of the app) would run it."""
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("///", 1)[1])
        with conn:
            for statement in statements:
                conn.execute(statement)
        conn.close()
        return
    import asyncpg

    pg = await asyncpg.connect(url)
    try:
        for statement in statements:
            await pg.execute(statement)
    finally:
        await pg.close()


async def test_a_database_from_before_the_counts_is_counted_on_open(any_db_url: str) -> None:
    async with open_stores(any_db_url) as stores:
        for i in range(3):
            await stores.tasks.insert(row(f"o{i}", i + 1, Status.SUCCESS if i else Status.FAILED))
    await _execute(any_db_url, "DROP TRIGGER task_counts_insert ON tasks" if "postgres" in any_db_url
                   else "DROP TRIGGER task_counts_insert", "DELETE FROM task_counts")
    async with open_stores(any_db_url) as stores:
        counts = await stores.queries.counts()
        assert (counts["SUCCESS"], counts["FAILED"]) == (2, 1)
        await stores.tasks.insert(row("o3", 4))
        assert (await stores.queries.counts())["PENDING"] == 1


async def test_tasks_dropped_and_made_again_do_not_keep_stale_counts(any_db_url: str) -> None:
    async with open_stores(any_db_url) as stores:
        await stores.tasks.insert(row("d0", 1))
    await _execute(any_db_url, "DROP TABLE tasks")  # as the test and bench resets do: the counts stay
    async with open_stores(any_db_url) as stores:
        assert sum((await stores.queries.counts()).values()) == 0
        await stores.tasks.insert(row("d1", 1))
        assert (await stores.queries.counts())["PENDING"] == 1


async def test_keyset_pages_match_offset_pages_even_when_created_at_ties(stores: Stores) -> None:
    store, queries = stores.tasks, stores.queries
    from datetime import timedelta

    base = utcnow()
    for i in range(7):
        # pairs share a creation time: the id breaks the tie, in the same order for both ways of paging
        await store.insert(row(f"k{i}", i + 1, created_at=base + timedelta(seconds=i // 2)))
    by_offset = []
    for offset in range(0, 7, 3):
        found, _ = await queries.page(TaskFilter(status=None, task_type=None, id_prefix=None), limit=3, offset=offset)
        by_offset += [t["id"] for t in found]
    by_cursor: list[str] = []
    after = None
    while True:
        found, total = await queries.page(TaskFilter(status=None, task_type=None, id_prefix=None), limit=3, offset=0, after=after)
        by_cursor += [t["id"] for t in found]
        if len(found) < 3:
            break
        after = (datetime.fromisoformat(found[-1]["created_at"]), found[-1]["id"])
    assert by_cursor == by_offset == ["k6", "k5", "k4", "k3", "k2", "k1", "k0"] and total == 7


async def test_an_id_prefix_search_counts_up_to_a_cap(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> None:
    store, queries = stores.tasks, stores.queries
    monkeypatch.setattr("app.store.queries.COUNT_CAP", 3)
    for i in range(5):
        await store.insert(row(f"a{i}", i + 1))
    found, total = await queries.page(TaskFilter(status=None, task_type=None, id_prefix="a"), limit=10, offset=0)
    assert len(found) == 5 and total == 3


async def _count_by_type_and_status(url: str) -> dict[tuple[str, str], int]:
    query = "SELECT task_type, status, count(*) FROM tasks GROUP BY task_type, status"
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("///", 1)[1])
        found = conn.execute(query).fetchall()
        conn.close()
    else:
        import asyncpg

        pg = await asyncpg.connect(url)
        found = await pg.fetch(query)
        await pg.close()
    return {(kind, status): int(n) for kind, status, n in found}


async def test_counts_equal_a_real_count_after_a_burst_through_two_workers(
    any_db_url: str, client: httpx.AsyncClient, start_worker: Callable[..., Awaitable[ResilientWorker]],
) -> None:
    await start_worker()
    await start_worker()
    slow = {"data": list(range(20)), "delay_per_item": 0.02}
    tasks = []
    for i in range(48):
        match i % 4:
            case 0:
                tasks.append(await submit(client, "text_processing"))
            case 1:
                tasks.append(await submit(client, "batch_processing", data=[1, 2], delay_per_item=0))
            case 2:
                tasks.append(await submit(client, "batch_processing", data=["ok", True], fail_fast=True,
                                          delay_per_item=0))
            case 3:
                tasks.append(await submit(client, "batch_processing", **slow))
                if i % 8 == 3:  # cancel some while queued or running, racing the workers
                    assert (await client.delete(f"/api/tasks/{tasks[-1]['id']}")).status_code == 200
    for task in tasks:
        done = await wait_for_status(client, task["id"], set(FINAL), timeout=60)
        if done["status"] in ("FAILED", "CANCELLED") and task["id"][-1] in "01234567":
            assert (await client.post(f"/api/tasks/{task['id']}/retry")).status_code == 200
    for task in tasks:
        await wait_for_status(client, task["id"], set(FINAL), timeout=60)
    real = await _count_by_type_and_status(any_db_url)
    stats = (await client.get("/api/stats")).json()["counts"]
    assert stats == {s.value: sum(n for (_, status), n in real.items() if status == s) for s in Status}
    assert sum(stats.values()) == len(tasks)
    for (kind, status), n in real.items():
        listing = (await client.get("/api/tasks/", params={"task_type": kind, "status": status, "limit": 1})).json()
        assert listing["total"] == n and listing["counts"] == stats


async def test_a_short_id_prefix_finds_the_same_tasks_whichever_plan_serves_it(stores: Stores) -> None:
    store, queries = stores.tasks, stores.queries
    from datetime import timedelta

    base = utcnow()
    for i in range(300):  # beyond limit × 16² tasks a one-digit prefix walks the list in order instead
        await store.insert(row(f"{(i * 2654435761) % 16**8:08x}", i + 1, created_at=base + timedelta(seconds=i)))
    walked, total = await queries.page(TaskFilter(status=None, task_type=None, id_prefix="a"), limit=1, offset=0)
    ranged, _ = await queries.page(TaskFilter(status=None, task_type=None, id_prefix="a"), limit=50, offset=0)
    assert [t["id"] for t in walked] == [t["id"] for t in ranged[:1]] and walked[0]["id"].startswith("a")
    assert total == len(ranged) == sum(t["id"].startswith("a") for t in ranged) > 3


async def test_processes_opening_a_new_database_together_create_one_schema(any_db_url: str) -> None:
    """Web and workers often start at the same moment against an empty database (on PostgreSQL,
    concurrent CREATE … IF NOT EXISTS collide in its catalog unless they take turns)."""
    async def open_and_insert(name: str) -> dict[str, Any]:
        async with open_stores(any_db_url) as opened:
            return await opened.tasks.insert(row(name, 1))

    created = await asyncio.gather(*(open_and_insert(f"t{i}") for i in range(6)))
    async with open_stores(any_db_url) as opened:
        listed, total = await opened.queries.page(TaskFilter(status=None, task_type=None, id_prefix=None), limit=10, offset=0)
        assert {task["id"] for task in created} == {task["id"] for task in listed} and total == 6
        assert (await opened.queries.counts())["PENDING"] == 6


async def test_processes_switching_a_new_sqlite_file_to_wal_together_wait_their_turn(tmp_path: Path) -> None:
    """Switching to WAL does not wait in SQLite's busy handler: it failed ~1 round in 100 of six
    opening together (CI saw it), so the rounds here are many."""
    for round_ in range(40):
        url = f"sqlite:///{tmp_path / f'tasks{round_}.db'}"

        async def open_and_count() -> int:
            async with open_stores(url) as opened:
                return sum((await opened.queries.counts()).values())

        assert await asyncio.gather(*(open_and_count() for _ in range(6))) == [0] * 6


async def test_many_tasks_move_in_one_transaction_each_with_its_own_seq(stores: Stores) -> None:
    store, queries = stores.tasks, stores.queries
    await store.insert(row("a", 1, Status.FAILED, "text_processing", attempts=2))
    await store.insert(row("b", 2, Status.CANCELLED, "batch_processing", attempts=1))
    await store.insert(row("c", 3, Status.RUNNING, "text_processing"))
    await store.insert(row("d", 4, Status.FAILED, "batch_processing", attempts=3))
    await store.insert(row("e", 40, Status.FAILED))  # changed after the batch took its seqs: left as it is
    values = {"dispatch": store.incremented("dispatch"), "attempts_base": store.current("attempts"),
              "error_message": None}
    moved = await store.update_many(["d", "a", "c", "b", "e"], 10, MANUAL_RETRY, values,
                                    entry={"status": "PENDING", "at": utcnow().isoformat()})
    assert [(t["id"], t["seq"]) for t in moved] == [("d", 10), ("a", 11), ("b", 13)]  # c was not FAILED/CANCELLED
    assert all(t["status"] == "PENDING" and t["dispatch"] == 2 and t["timeline"][-1]["status"] == "PENDING"
               for t in moved)
    assert {t["id"]: t["attempts_base"] for t in moved} == {"a": 2, "b": 1, "d": 3}
    unchanged = await store.get("c")
    assert unchanged is not None and (unchanged["status"], unchanged["seq"]) == ("RUNNING", 3)
    newer = await store.get("e")
    assert newer is not None and (newer["status"], newer["seq"]) == ("FAILED", 40)
    assert (await queries.counts())["PENDING"] == 3 and (await queries.counts())["FAILED"] == 1


async def test_a_transaction_that_reads_first_waits_for_another_process_instead_of_failing(db_url: str) -> None:
    """SQLite: a transaction reading before it writes, while another process commits in between, must
    take its turn (the write lock at BEGIN), not fail at once with "database is locked"."""
    async with open_stores(db_url) as first, open_stores(db_url) as second:
        await first.tasks.insert(row("a", 1))
        have_read = asyncio.Event()

        async def read_then_write() -> TaskDict | None:
            await first.tasks.get("a")
            have_read.set()
            await asyncio.sleep(0.3)  # the other process tries to write meanwhile
            return await first.tasks.update("a", 3, REQUEUE, {"stage": "moved"})

        writing = asyncio.create_task(first.db.atomically(read_then_write))
        await have_read.wait()
        await second.tasks.insert(row("b", 2))
        moved = await writing
        assert moved is not None and moved["stage"] == "moved" and await second.tasks.get("b") is not None


async def test_a_group_of_changes_writes_what_the_same_changes_write_one_by_one(stores: Stores) -> None:
    """`update_all` (on PostgreSQL one statement per shape, a task's later change in a later statement)
    against `update` change by change on twin tasks: the same rows, the same refusals, the same counts."""
    store, queries = stores.tasks, stores.queries
    now = utcnow().isoformat()
    changes: list[tuple[str, int, Any, dict[str, Any], dict[str, Any]]] = [  # task, seq, move, values, options
        ("a", 10, START, {"attempts": store.incremented("attempts"), "started_at": utcnow(), "worker": "w1"},
         {"entry": {"status": "RUNNING", "at": now}, "dispatch": 1}),
        ("b", 11, START, {"attempts": store.incremented("attempts"), "started_at": utcnow(), "worker": "w2"},
         {"entry": {"status": "RUNNING", "at": now}, "dispatch": 1}),
        ("c", 12, START, {"attempts": store.incremented("attempts"), "started_at": None, "worker": "w3"},
         {"entry": {"status": "RUNNING", "at": now}, "dispatch": 1}),  # a stale job: c is at dispatch 2
        ("a", 13, PROGRESS, {"progress": 50.0, "stage": "half"}, {}),
        ("d", 14, PROGRESS, {"progress": 20.0, "stage": None}, {}),
        ("a", 15, SUCCEED, {"progress": 100.0, "result_data": {"n": [1, 2], "s": "é"}, "completed_at": utcnow()},
         {"entry": {"status": "SUCCESS", "at": now}, "dispatch": 1}),
        ("d", 16, SUCCEED, {"progress": 100.0, "result_data": None, "completed_at": utcnow()},
         {"entry": {"status": "SUCCESS", "at": now}, "dispatch": 1}),
        ("e", 3, SUCCEED, {"progress": 100.0, "result_data": {}, "completed_at": utcnow()},
         {"entry": {"status": "SUCCESS", "at": now}, "dispatch": 1}),  # older than e's stored seq
        ("b", 17, STOP, {"error_message": "cancelled"}, {"entry": {"status": "CANCELLED", "at": now}}),
        ("b", 18, PROGRESS, {"progress": 5.0, "stage": "late"}, {}),  # b is no longer running
    ]
    created = utcnow()
    for prefix in ("one-", "all-"):
        await store.insert(row(prefix + "a", 1, created_at=created))
        await store.insert(row(prefix + "b", 2, task_type="batch_processing", created_at=created))
        await store.insert(row(prefix + "c", 3, dispatch=2, created_at=created))
        await store.insert(row(prefix + "d", 4, Status.RUNNING, created_at=created))
        await store.insert(row(prefix + "e", 5, Status.RUNNING, created_at=created))
    one_by_one = [await store.update("one-" + task, seq, move, values, **options)
                  for task, seq, move, values, options in changes]
    seen: list[Any] = []

    async def then(written: list[TaskDict | None], others: list[Any]) -> None:
        seen.append((list(written), others))

    steps = [store.update_step("all-" + task, seq, move, values, **options)
             for task, seq, move, values, options in changes]
    together = await store.update_all(steps, [move for _, _, move, _, _ in changes], then)
    assert seen == [(together, [])]

    def alike(task: TaskDict | None) -> Any:
        return task and {**task, "id": task["id"][4:], "updated_at": None}

    assert [alike(task) for task in together] == [alike(task) for task in one_by_one]
    assert [task is None for task in together] == [False, False, True, False, False, False, False, True, False, True]
    for task in "abcde":
        assert alike(await store.get("all-" + task)) == alike(await store.get("one-" + task))
    assert await queries.counts() == {**{status: 0 for status in (await queries.counts())},
                                      "SUCCESS": 4, "CANCELLED": 2, "PENDING": 2, "RUNNING": 2}


async def test_log_lines_written_with_a_group_are_numbered_in_order_for_each_task(stores: Stores) -> None:
    """A group's lines of several tasks (on PostgreSQL one statement, on SQLite one per 50 lines of a task)
    come back to the task that wrote them, in the order written, as the log pages read them."""
    store, logs = stores.tasks, stores.logs
    for task in ("a", "b", "c"):
        await store.insert(row(task, 1, Status.RUNNING))
    at = utcnow()
    batches = [("a", 1, [(at, f"a{i}") for i in range(120)]), ("b", 1, []), ("c", 2, [(at, "c0"), (at, "c1")])]
    stored: list[Any] = []

    async def then(written: list[TaskDict | None], found: list[Any]) -> None:
        stored.extend(logs.stored(batches, found))

    steps = [store.update_step(task, 2, SUCCEED, {"progress": 100.0}) for task in "abc"]
    await store.update_all(steps, [SUCCEED] * 3, then, logs.steps(batches))
    assert [[line["line"] for line in lines] for lines in stored] == [[f"a{i}" for i in range(120)], [], ["c0", "c1"]]
    assert [line["attempt"] for line in stored[2]] == [2, 2]
    assert await logs.read("a", after=0, limit=500) == stored[0]
    assert await logs.read("c", after=0, limit=500) == stored[2]
    assert (await logs.append("b", 1, [(at, "b0")]))[0]["n"] > stored[2][-1]["n"]
