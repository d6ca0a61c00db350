"""The list's pages against the same filter applied in Python, for every filter field and their
combinations, walked by `after` and by offset, whichever way an id prefix is read (range or walk)."""

import random
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from app.core.clock import utcnow
from app.core.status import Status
from app.store.filters import TaskFilter
from app.store.queries import TaskQueries
from app.store.stores import Stores, open_stores

TYPES = ("text_processing", "batch_processing", "data_processing")
STATUSES = (Status.SUCCESS, Status.FAILED, Status.PENDING, Status.CANCELLED)
PRIORITIES = ("high", "default", "low")
N = 150


@pytest.fixture
async def stores(any_db_url: str) -> AsyncIterator[Stores]:
    async with open_stores(any_db_url) as opened:
        yield opened


def _rows(now: datetime) -> list[dict[str, Any]]:
    """Random ids (lower-case hex, as the app makes them), every second task sharing its creation time
    with the next (the id breaks the tie), a few scheduled ahead and some made by a schedule."""
    rnd = random.Random(5)
    rows = []
    for i in range(N):
        status = rnd.choice(STATUSES)
        scheduled = status == Status.PENDING and i % 3 == 0
        rows.append({
            "id": f"{rnd.getrandbits(128):032x}", "task_type": rnd.choice(TYPES), "status": status.value,
            "priority": rnd.choice(PRIORITIES), "parameters": {"n": i}, "progress": 0.0,
            "created_at": now - timedelta(minutes=N - i // 2), "updated_at": now, "attempts": 0, "dispatch": 1,
            "seq": i + 1, "cancel_requested": False, "timeline": [],
            "next_run_at": now + timedelta(hours=1) if scheduled else None,
            "schedule_id": "s1" if i % 4 == 0 else None,
        })
    return rows


def _matcher(where: TaskFilter, now: datetime) -> Callable[[dict[str, Any]], bool]:
    def matches(row: dict[str, Any]) -> bool:
        return (all(getattr(where, name) in (None, row.get(name))
                    for name in ("status", "task_type", "priority", "schedule_id", "source_task_id"))
                and (where.created_from is None or row["created_at"] >= where.created_from)
                and (where.created_to is None or row["created_at"] < where.created_to)
                and row["id"].startswith(where.id_prefix or "")
                and (not where.scheduled or (row["status"] == "PENDING" and row["next_run_at"] is not None
                                             and row["next_run_at"] > now)))
    return matches


def _filters(rows: list[dict[str, Any]]) -> list[TaskFilter]:
    one, two = rows[40]["id"][:1], rows[40]["id"][:2]
    last = next(row["id"][:1] for row in rows if row["id"][1] == "f")  # its range's last ids are listed
    middle = rows[N // 2]["created_at"]  # two tasks were created then: `from` takes them, `to` does not
    return [
        TaskFilter(), TaskFilter(status="FAILED"), TaskFilter(task_type="batch_processing"),
        TaskFilter(status="SUCCESS", task_type="text_processing"), TaskFilter(priority="high"),
        TaskFilter(id_prefix=one), TaskFilter(id_prefix=two), TaskFilter(id_prefix=rows[40]["id"][:3]),
        TaskFilter(id_prefix="fff"), TaskFilter(id_prefix=last), TaskFilter(status=rows[40]["status"], id_prefix=one),
        TaskFilter(task_type=rows[40]["task_type"], id_prefix=one),
        TaskFilter(status=rows[40]["status"], task_type=rows[40]["task_type"], id_prefix=one),
        TaskFilter(status=rows[40]["status"], task_type=rows[40]["task_type"], id_prefix=two),
        TaskFilter(created_from=middle), TaskFilter(created_to=middle),
        TaskFilter(created_from=middle - timedelta(minutes=20), created_to=middle, id_prefix=one),
        TaskFilter(status="PENDING", created_to=middle, priority="low"),
        TaskFilter(scheduled=True), TaskFilter(scheduled=True, task_type="data_processing"),
        TaskFilter(schedule_id="s1", status="SUCCESS"), TaskFilter(source_task_id="none of them"),
    ]


@pytest.mark.parametrize("walks", [None, True, False], ids=["chosen", "walked", "ranged"])
async def test_every_filter_lists_its_matches_newest_first_by_cursor_and_by_offset(
        stores: Stores, monkeypatch: pytest.MonkeyPatch, walks: bool | None) -> None:
    if walks is not None:  # the same pages whichever way an id prefix is read
        monkeypatch.setattr(TaskQueries, "_walks", staticmethod(lambda *_, **__: walks))
    now = utcnow()
    rows = _rows(now)
    await stores.tasks.insert_many(rows)
    newest_first = sorted(rows, key=lambda row: (row["created_at"], row["id"]), reverse=True)
    for where in _filters(rows):
        expected = [row["id"] for row in newest_first if _matcher(where, now)(row)]
        by_cursor: list[str] = []
        after = None
        while True:
            found, total = await stores.queries.page(where, limit=7, offset=0, after=after)
            assert total == len(expected), where
            by_cursor += [task["id"] for task in found]
            if len(found) < 7:
                break
            after = (datetime.fromisoformat(found[-1]["created_at"]), found[-1]["id"])
        assert by_cursor == expected, where
        by_offset, _ = await stores.queries.page(where, limit=5, offset=3)
        assert [task["id"] for task in by_offset] == expected[3:8], where


async def test_a_listed_task_reads_as_the_task_itself(stores: Stores) -> None:
    rows = _rows(utcnow())
    await stores.tasks.insert_many(rows[:3])
    listed, _ = await stores.queries.page(TaskFilter(), limit=10, offset=0)
    assert listed == [await stores.tasks.get(task["id"]) for task in listed] and len(listed) == 3


def _walks(dialect: str) -> Callable[..., bool]:
    """`TaskQueries._walks` as on a database of that dialect (it reads no table)."""
    queries = TaskQueries.__new__(TaskQueries)
    queries.db = SimpleNamespace(dialect=dialect)  # type: ignore[assignment]
    return queries._walks


def test_an_id_prefix_is_walked_or_ranged_by_what_reading_each_costs() -> None:
    tally = [("a", "SUCCESS", 900_000), ("a", "FAILED", 50_000), ("b", "SUCCESS", 50_000)]
    common = TaskFilter(id_prefix="12", status="SUCCESS", task_type="a")
    for dialect in ("sqlite", "postgresql"):
        walks = _walks(dialect)
        assert walks(TaskFilter(id_prefix="1"), tally, 50)  # a match every 16 tasks: 50 found sooner walking
        assert not walks(TaskFilter(id_prefix="1"), tally, 10_000, reads=False)  # counted: 62,500 ids in an index
        assert not walks(TaskFilter(id_prefix="123"), tally, 50)
        assert not walks(common, tally, 10_000, reads=False)
        assert not walks(TaskFilter(status="FAILED"), tally, 50)
    # 12,800 index entries walked, against 3,906 ids and the rows of their 3,516 matches; PostgreSQL
    # would read the row of each task walked past
    assert _walks("sqlite")(common, tally, 50) and not _walks("postgresql")(common, tally, 50)
