"""TaskStore on SQLite and (with TEST_DATABASE_URL) PostgreSQL: guarded moves, seq, listing, replay."""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from app.status import FINAL, MOVES, Status
from app.store import TaskStore, utcnow


@pytest.fixture
async def store(any_db_url: str) -> AsyncIterator[TaskStore]:
    async with TaskStore.open(any_db_url) as opened:
        yield opened


def row(task_id: str, seq: int, status: Status = Status.PENDING, task_type: str = "text_processing",
        **extra: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": task_id, "task_type": task_type, "status": status.value, "parameters": {"text": "hi"},
        "progress": 0.0, "created_at": extra.pop("created_at", now), "updated_at": now, "attempts": 0,
        "dispatch": 1, "seq": seq, "cancel_requested": False, "timeline": [], **extra,
    }


async def test_insert_and_get_round_trip_with_utc_datetimes(store: TaskStore) -> None:
    inserted = await store.insert(row("a", 1))
    fetched = await store.get("a")
    assert fetched == inserted
    assert fetched is not None and fetched["parameters"] == {"text": "hi"}
    created = datetime.fromisoformat(fetched["created_at"])
    assert created.utcoffset() is not None and created.utcoffset().total_seconds() == 0
    assert await store.get("missing") is None


async def test_guarded_update_applies_allowed_move_and_appends_timeline(store: TaskStore) -> None:
    await store.insert(row("a", 1))
    moved = await store.update("a", 2, statuses=MOVES[Status.RUNNING], values={"status": "RUNNING"},
                               entry={"status": "RUNNING", "at": "now"})
    assert moved is not None and moved["status"] == "RUNNING" and moved["seq"] == 2
    assert moved["timeline"] == [{"status": "RUNNING", "at": "now"}]
    again = await store.update("a", 3, statuses=MOVES[Status.SUCCESS], values={"status": "SUCCESS"},
                               entry={"status": "SUCCESS", "at": "later"})
    assert again is not None and [e["status"] for e in again["timeline"]] == ["RUNNING", "SUCCESS"]


@pytest.mark.parametrize("final", sorted(FINAL))
async def test_no_backward_move_out_of_a_final_state(store: TaskStore, final: str) -> None:
    await store.insert(row("a", 1, Status(final)))
    for target in (Status.RUNNING, Status.RETRYING, Status.SUCCESS, Status.FAILED, Status.CANCELLED):
        assert await store.update("a", 10, statuses=MOVES[target], values={"status": target.value}) is None
    fetched = await store.get("a")
    assert fetched is not None and fetched["status"] == final and fetched["seq"] == 1


async def test_an_older_seq_never_overwrites_a_newer_change(store: TaskStore) -> None:
    await store.insert(row("a", 5, Status.RUNNING))
    assert await store.update("a", 4, statuses={Status.RUNNING}, values={"progress": 10.0}) is None
    assert await store.update("a", 5, statuses={Status.RUNNING}, values={"progress": 10.0}) is None
    updated = await store.update("a", 6, statuses={Status.RUNNING}, values={"progress": 10.0})
    assert updated is not None and updated["progress"] == 10.0


async def test_dispatch_guard_refuses_a_stale_job(store: TaskStore) -> None:
    await store.insert(row("a", 1, dispatch=2))
    assert await store.update("a", 2, statuses={Status.PENDING}, values={"status": "RUNNING"}, dispatch=1) is None
    assert await store.update("a", 2, statuses={Status.PENDING}, values={"status": "RUNNING"}, dispatch=2)


async def test_racing_final_moves_leave_exactly_one_winner(store: TaskStore) -> None:
    for i in range(20):
        await store.insert(row(f"r{i}", 1, Status.RUNNING))
    for i in range(20):
        results = await asyncio.gather(
            store.update(f"r{i}", 2, statuses={Status.RUNNING}, values={"status": "SUCCESS"}),
            store.update(f"r{i}", 3, statuses={Status.RUNNING}, values={"status": "CANCELLED"}),
        )
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        fetched = await store.get(f"r{i}")
        assert fetched is not None and fetched["status"] == winners[0]["status"]


async def test_list_is_newest_first_filtered_and_counted(store: TaskStore) -> None:
    base = utcnow()
    from datetime import timedelta

    for i in range(6):
        status = Status.SUCCESS if i % 2 else Status.PENDING
        kind = "text_processing" if i < 3 else "batch_processing"
        await store.insert(row(f"t{i}", i + 1, status, kind, created_at=base + timedelta(seconds=i)))
    tasks, total = await store.page(status=None, task_type=None, id_prefix=None, limit=4, offset=0)
    assert [t["id"] for t in tasks] == ["t5", "t4", "t3", "t2"] and total == 6
    tasks, total = await store.page(status=None, task_type=None, id_prefix=None, limit=4, offset=4)
    assert [t["id"] for t in tasks] == ["t1", "t0"]
    tasks, total = await store.page(status="SUCCESS", task_type="batch_processing", id_prefix=None,
                                    limit=10, offset=0)
    assert [t["id"] for t in tasks] == ["t5", "t3"] and total == 2
    tasks, total = await store.page(status=None, task_type=None, id_prefix="d4", limit=10, offset=0)
    assert tasks == [] and total == 0
    counts = await store.counts()
    assert counts["SUCCESS"] == 3 and counts["PENDING"] == 3 and counts["FAILED"] == 0


async def test_changed_between_answers_what_changed_after_a_seq(store: TaskStore) -> None:
    for i in range(5):
        await store.insert(row(f"t{i}", i + 1))
    await store.update("t0", 9, statuses={Status.PENDING}, values={"status": "CANCELLED"})
    changed = await store.changed_between(2, 9, 100)
    assert [(t["id"], t["seq"]) for t in changed] == [("t2", 3), ("t3", 4), ("t4", 5), ("t0", 9)]
    assert [t["id"] for t in await store.changed_between(2, 5, 100)] == ["t2", "t3", "t4"]
    assert [t["id"] for t in await store.changed_between(2, 9, 2)] == ["t2", "t3"]
    assert await store.max_seq() == 9


async def test_id_prefix_search_is_a_key_range(store: TaskStore) -> None:
    for i, task_id in enumerate(["ab12", "ab34", "abf0", "ac00", "cd56"]):
        await store.insert(row(task_id, i + 1))
    found, total = await store.page(status=None, task_type=None, id_prefix="ab", limit=10, offset=0)
    assert sorted(t["id"] for t in found) == ["ab12", "ab34", "abf0"] and total == 3
    found, total = await store.page(status=None, task_type=None, id_prefix="abf", limit=10, offset=0)
    assert [t["id"] for t in found] == ["abf0"] and total == 1
