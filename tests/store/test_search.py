"""Text search (store/search.py) on SQLite and PostgreSQL: exactly the tasks a reference matcher finds,
with every other filter, keyset paging, index upkeep on result, delete and an existing database; over
HTTP; and in the dashboard's search box."""

import json
import random
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from app.core.clock import utcnow
from app.core.status import FAIL, MANUAL_RETRY, PROGRESS, SUCCEED, Status
from app.store import search
from app.store.filters import TaskFilter
from app.store.stores import Stores, open_stores
from tests.support.browser import CHROMIUM, ROWS_SHOWN, SKIP_REASON, open_dashboard, row

VOCABULARY = ("alpha", "Alphabet", "beta", "gamma", "zebra", "Zürich", "straße", "naïve", "x1", "x10",
              "data_processing", "foo-bar", "ERROR", "timeout", "42", "4096", "ünïcode", "ÉCOLE")
STATUSES = (Status.SUCCESS, Status.FAILED, Status.CANCELLED, Status.PENDING)
TYPES = ("text_processing", "batch_processing")
PRIORITIES = ("high", "default", "low")


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """The web process of the HTTP tests uses the same database as the store tests."""
    return any_db_url


@pytest.fixture
async def stores(any_db_url: str) -> AsyncIterator[Stores]:
    async with open_stores(any_db_url) as opened:
        yield opened


def _json_text(value: Any) -> str:
    """The reference: keys and scalar values of a JSON document, as the module docstring defines."""
    if isinstance(value, dict):
        return " ".join(f"{key} {_json_text(item)}" for key, item in value.items())
    if isinstance(value, list):
        return " ".join(_json_text(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _tokens(task: dict[str, Any]) -> list[str]:
    text = " ".join((_json_text(task["parameters"]), _json_text(task.get("result_data")),
                     task.get("error_message") or ""))
    return re.findall(r"[^\W_]+", text.lower())


def reference(tasks: list[dict[str, Any]], query: str) -> list[str]:
    """Ids of the tasks matching `query`, newest first."""
    wanted = re.findall(r"[^\W_]+", query.lower())
    found = [t for t in tasks if all(any(token.startswith(w) for token in _tokens(t)) for w in wanted)]
    return [t["id"] for t in sorted(found, key=lambda t: (t["created_at"], t["id"]), reverse=True)]


def _words(rnd: random.Random, n: int) -> str:
    return " ".join(rnd.choice(VOCABULARY) for _ in range(n))


def generated(n: int, seed: int = 3) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    start = utcnow() - timedelta(days=1)
    rows = []
    for i in range(n):
        status = rnd.choice(STATUSES)
        params: dict[str, Any] = {"text": _words(rnd, rnd.randint(0, 3)), "rows": rnd.choice((10, 4096)),
                                  "nested": {"items": [_words(rnd, 1), rnd.random() < 0.5, None]}}
        rows.append({
            "id": f"{rnd.getrandbits(128):032x}", "task_type": rnd.choice(TYPES), "status": status.value,
            "priority": rnd.choice(PRIORITIES), "parameters": params, "progress": 0.0,
            "result_data": {"summary": _words(rnd, 2), "count": rnd.randint(0, 99)} if status == Status.SUCCESS else None,
            "error_message": f"{_words(rnd, 1)}: line {i}" if status == Status.FAILED else None,
            "created_at": start + timedelta(seconds=i * 7), "updated_at": start, "attempts": 0, "dispatch": 1,
            "seq": i + 1, "cancel_requested": False, "timeline": [],
        })
    return rows


QUERIES = ("alpha", "ALPHA", "alph", "Alphabet", "zeb", "zürich", "ZÜRICH", "strasse", "straße", "naïve",
           "naive", "x1", "x10", "data", "processing", "data_processing", "foo bar", "foo-bar", "error",
           "42", "409", "4096", "true", "false", "rows", "items", "summary", "count", "line", "école",
           "alpha beta", "beta zebra gamma", "zebra x1", "nothing-like-this", "a", "z", "!!!")


async def _search(stores: Stores, limit: int = 1000, **filters: Any) -> tuple[list[str], int]:
    where = TaskFilter(**filters)
    found, total = await stores.queries.page(where, limit=limit, offset=0)
    return [task["id"] for task in found], total


@pytest.mark.parametrize("windows", [search.WINDOWS, (20, 60)])
async def test_search_finds_exactly_the_matching_tasks(stores: Stores, windows: tuple[int, ...],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # windows smaller than the tasks: SQLite's pages are found among the newest or, failing, among all
    monkeypatch.setattr(search, "WINDOWS", windows)
    monkeypatch.setattr(search, "FEW", 0 if windows != search.WINDOWS else search.FEW)
    rows = generated(400)
    await stores.tasks.insert_many(rows)
    for query in QUERIES:
        expected = reference(rows, query)
        found, total = await _search(stores, text=query)
        assert found == expected, query
        assert total == len(expected), query
        first, _ = await _search(stores, limit=5, text=query)
        assert first == expected[:5], query
    assert (await _search(stores, text="alpha"))[0], "the vocabulary is searched at all"


async def test_search_combines_with_every_other_filter(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "WINDOWS", (20, 60))
    monkeypatch.setattr(search, "FEW", 0)
    rows = generated(300, seed=5)
    await stores.tasks.insert_many(rows)
    middle = rows[150]["created_at"]
    cases = [
        ({"status": "FAILED"}, lambda t: t["status"] == "FAILED"),
        ({"task_type": "batch_processing"}, lambda t: t["task_type"] == "batch_processing"),
        ({"priority": "high"}, lambda t: t["priority"] == "high"),
        ({"created_from": middle}, lambda t: t["created_at"] >= middle),
        ({"created_to": middle}, lambda t: t["created_at"] < middle),
        ({"id_prefix": rows[7]["id"][:1]}, lambda t: t["id"].startswith(rows[7]["id"][:1])),
        ({"status": "SUCCESS", "priority": "low", "created_from": rows[40]["created_at"]},
         lambda t: t["status"] == "SUCCESS" and t["priority"] == "low" and t["created_at"] >= rows[40]["created_at"]),
    ]
    for query in ("alpha", "zeb", "error", "x1 beta", "4096"):
        for filters, keep in cases:
            expected = reference([t for t in rows if keep(t)], query)
            found, total = await _search(stores, text=query, **filters)
            assert (found, total) == (expected, len(expected)), (query, filters)


async def test_keyset_paging_walks_every_match_once_newest_first(stores: Stores,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "WINDOWS", (20, 60))
    monkeypatch.setattr(search, "FEW", 0)
    rows = generated(300, seed=9)
    await stores.tasks.insert_many(rows)
    for query in ("alpha", "zebra x1"):
        seen: list[str] = []
        after = None
        while True:
            shown, _ = await stores.queries.page(TaskFilter(text=query), limit=7, offset=0, after=after)
            seen += [task["id"] for task in shown]
            if len(shown) < 7:
                break
            after = (datetime.fromisoformat(shown[-1]["created_at"]), shown[-1]["id"])
        assert seen == reference(rows, query)


async def test_a_result_arriving_later_becomes_findable_and_a_deleted_task_is_not(stores: Stores) -> None:
    now = utcnow()
    base = {"task_type": "text_processing", "progress": 0.0, "created_at": now, "updated_at": now, "attempts": 0,
            "dispatch": 1, "cancel_requested": False, "timeline": []}
    store = stores.tasks
    await store.insert({**base, "id": "a", "status": "RUNNING", "seq": 1, "parameters": {"text": "hello"}})
    await store.insert({**base, "id": "b", "status": "RUNNING", "seq": 2, "parameters": {"text": "walrus"}})
    assert (await _search(stores, text="quokka"))[0] == []
    await store.update("a", 3, PROGRESS, {"progress": 50.0, "stage": "quokka"})
    assert (await _search(stores, text="quokka"))[0] == [], "the stage is not searched"
    await store.update("a", 4, SUCCEED, {"result_data": {"animal": "Quokka"}})
    assert (await _search(stores, text="quokka"))[0] == ["a"]
    assert (await _search(stores, text="hello quok"))[0] == ["a"], "parameters stay searchable"
    await store.update("b", 5, FAIL, {"error_message": "quokkas bit"})
    assert (await _search(stores, text="quokka"))[0] == ["b", "a"]
    await store.update("b", 6, MANUAL_RETRY, {"error_message": None})
    assert (await _search(stores, text="quokka"))[0] == ["a"], "a retry clears the old error from the index"
    await store.delete("a")
    assert (await _search(stores, text="quokka"))[0] == []
    await store.delete("b")
    assert (await _search(stores, text="walrus"))[0] == []


async def test_an_existing_database_gets_the_index_on_open(any_db_url: str) -> None:
    rows = generated(50, seed=11)
    async with open_stores(any_db_url) as stores:
        await stores.tasks.insert_many(rows)
        db = stores.db
        await db.execute("DROP TRIGGER task_search_insert" + (" ON tasks" if db.dialect == "postgresql" else ""))
        if db.dialect == "postgresql":
            await db.execute("UPDATE tasks SET search = NULL")
    async with open_stores(any_db_url) as stores:
        for query in ("alpha", "zebra", "x1 beta"):
            assert (await _search(stores, text=query))[0] == reference(rows, query)


async def test_search_over_http(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/tasks/submit", json={"task_type": "text_processing",
                                                         "parameters": {"text": "The Marmoset sleeps"}})
    assert answer.status_code in (201, 202), answer.text
    marmoset = answer.json()["id"]
    answer = await client.post("/api/tasks/submit", json={"task_type": "text_processing",
                                                         "parameters": {"text": "a capybara"}})
    capybara = answer.json()["id"]
    for query, expected in (("marmo", [marmoset]), ("MARMOSET sleeps", [marmoset]), ("capybara", [capybara]),
                            ("marmoset capybara", []), ("text", [capybara, marmoset])):
        answer = await client.get("/api/tasks/", params={"text": query})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [t["id"] for t in body["tasks"]] == expected, query
        assert body["total"] == len(expected)
    answer = await client.get("/api/tasks/", params={"text": "marmoset", "status": "FAILED"})
    assert answer.json()["tasks"] == []
    answer = await client.get("/api/tasks/", params={"text": "x" * 201})
    assert answer.status_code == 422 and "text" in answer.json()["detail"]


def test_reference_matcher_reads_json_like_the_databases() -> None:
    task = {"parameters": {"Key_One": ["Ünï", True, None, 2.5]}, "result_data": None, "error_message": "a-b"}
    assert _tokens(task) == ["key", "one", "ünï", "true", "2", "5", "a", "b"]
    assert json.dumps(task)  # plain JSON: what the store is given


@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
async def test_search_box_shows_exactly_the_matching_tasks_and_lives_in_the_url(
    web: str, client: httpx.AsyncClient, page: Page,
) -> None:
    async def submitted(text: str) -> str:
        answer = await client.post("/api/tasks/submit", json={"task_type": "text_processing", "parameters": {"text": text}})
        assert answer.status_code in (201, 202), answer.text
        return answer.json()["id"]

    marmoset = await submitted("The Marmoset sleeps")
    also = await submitted("marmosets everywhere")
    await submitted("a capybara")
    await open_dashboard(page, web)
    await page.wait_for_function(ROWS_SHOWN, arg=3)

    await page.fill("#filters [name=text]", "MARMO")
    await page.wait_for_function(ROWS_SHOWN, arg=2)
    assert await page.locator("tr[data-task-id]").evaluate_all("rows => rows.map(r => r.dataset.taskId)") == [
        also, marmoset]
    assert "text=MARMO" in page.url

    await page.fill("#filters [name=text]", "marmoset sleep")
    await page.wait_for_function(ROWS_SHOWN, arg=1)
    await page.wait_for_selector(row(marmoset))
    await page.reload()
    await page.wait_for_selector(row(marmoset))
    assert await page.locator("tr[data-task-id]").count() == 1
    assert await page.input_value("#filters [name=text]") == "marmoset sleep"

    # live: a new task shows only if it matches (the earlier, non-matching one was handled first)
    await submitted("capybara sleeps")
    newest = await submitted("marmoset sleeps too")
    await page.wait_for_selector(row(newest))
    assert await page.locator("tr[data-task-id]").count() == 2

    await page.select_option("#filters [name=priority]", "low")
    await page.wait_for_selector("#empty:not([hidden])")
    assert "priority=low" in page.url and "text=marmoset+sleep" in page.url
