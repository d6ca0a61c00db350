"""The contract's status moves under random sequences of submit, cancel, retry and get, against a
real server (uvicorn in a thread) and a real worker process: a hypothesis state machine."""

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from app.core.status import FINAL, RETRYABLE, TRANSITIONS, Status
from app.main import create_app
from app.settings import Settings
from launcher.redis_server import free_port
from tests.support.processes import process_env, workers
from tests.support.servers import WS_PROTOCOL

STATUSES = {status.value for status in Status}
# Moves that happen by themselves; the one left out, FAILED | CANCELLED → PENDING, is a manual retry.
ON_THEIR_OWN = {(source.value, target.value) for target, sources in TRANSITIONS.items() for source in sources
                if target != Status.PENDING}
ITEMS = st.lists(st.text(max_size=8) | st.integers(-1000, 1000), max_size=4)


def reachable(source: str, target: str) -> bool:
    """Whether `target` can follow `source` by the moves a task makes without a manual retry."""
    seen, frontier = {source}, [source]
    while frontier:
        current = frontier.pop()
        for a, b in ON_THEIR_OWN:
            if a == current and b not in seen:
                seen.add(b)
                frontier.append(b)
    return target in seen


class ServerThread:
    """The app under uvicorn in a thread with its own event loop, for a synchronous test."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", ws=WS_PROTOCOL, timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


class TaskMachine(RuleBasedStateMachine):
    http: httpx.Client  # set by the test: one server and one worker for every run of the machine
    seen: Counter[tuple[str, str, int]] = Counter()  # (rule, status before, answer) over all runs

    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[str, dict[str, Any]] = {}  # each task as last seen
        self.retries: dict[str, int] = {}  # manual retries we made per task (nobody else makes any)
        self.retried_since: set[str] = set()  # tasks retried since we last saw them

    def observe(self, task: dict[str, Any]) -> None:
        """Check a task as seen now against how it was seen before and against the contract."""
        assert task["status"] in STATUSES, task
        timeline = [entry["status"] for entry in task["timeline"]]
        assert timeline[0] == "PENDING" and timeline[-1] == task["status"], timeline
        for source, target in zip(timeline, timeline[1:], strict=False):
            assert (source, target) in ON_THEIR_OWN or (source in RETRYABLE and target == "PENDING"), timeline
        manual = [e for e in task["timeline"][1:] if e["status"] == "PENDING"]
        assert len(manual) == self.retries.get(task["id"], 0), (task["timeline"], self.retries)
        assert task["attempts"] == timeline.count("RUNNING"), task  # attempts: starts in the timeline
        if task["status"] in FINAL:
            assert task["completed_at"] is not None, task
        before = self.last.get(task["id"])
        if before is not None:
            assert task["seq"] >= before["seq"] and task["attempts"] >= before["attempts"], (before, task)
            assert task["timeline"][: len(before["timeline"])] == before["timeline"], (before, task)
            if task["id"] not in self.retried_since:
                assert reachable(before["status"], task["status"]), (before["status"], task["status"])
        self.retried_since.discard(task["id"])
        self.last[task["id"]] = task

    @rule(target=tasks, text=st.text(max_size=40))
    def submit_text(self, text: str) -> str:
        return self._submit("text_processing", {"text": text})

    @rule(target=tasks, data=ITEMS, delay=st.sampled_from([0.0, 0.05, 0.2]), fail=st.booleans())
    def submit_batch(self, data: list[object], delay: float, fail: bool) -> str:
        # None is an item batch_processing cannot process: with fail_fast the task ends FAILED
        return self._submit("batch_processing",
                            {"data": [*data, None] if fail else data, "delay_per_item": delay, "fail_fast": fail})

    def _submit(self, kind: str, parameters: dict[str, object]) -> str:
        response = self.http.post("/api/tasks/submit", json={"task_type": kind, "parameters": parameters})
        assert response.status_code == 201, response.text
        task = response.json()
        assert task["status"] == "PENDING" and task["attempts"] == 0 and task["task_type"] == kind
        self.observe(task)
        return task["id"]  # type: ignore[no-any-return]

    @rule(task_id=tasks)
    def get(self, task_id: str) -> None:
        response = self.http.get(f"/api/tasks/{task_id}")
        assert response.status_code == 200, response.text
        self.observe(response.json())

    @rule(task_id=tasks)
    def cancel(self, task_id: str) -> None:
        was = self.last[task_id]["status"]
        response = self.http.delete(f"/api/tasks/{task_id}")
        self.seen[("cancel", was, response.status_code)] += 1
        if was in FINAL:  # final stays final until we retry: the answer is certain
            assert response.status_code == 409, (was, response.status_code, response.text)
        if response.status_code == 409:  # only for a final task: it is still final, as nobody retried it
            now = self.http.get(f"/api/tasks/{task_id}").json()
            assert now["status"] in FINAL, (was, now["status"], response.text)
            self.observe(now)
            return
        assert response.status_code == 200, response.text
        task = response.json()
        # stopped, still stopping, or it finished by itself before the worker got the signal
        assert task["status"] in FINAL or (task["status"] == "RUNNING" and task["cancel_requested"]), task
        self.observe(task)

    @rule(task_id=tasks)
    def retry(self, task_id: str) -> None:
        before = self.last[task_id]
        response = self.http.post(f"/api/tasks/{task_id}/retry")
        self.seen[("retry", before["status"], response.status_code)] += 1
        if before["status"] in RETRYABLE:  # FAILED and CANCELLED only change by a retry: it must work
            assert response.status_code == 200, (before["status"], response.text)
        elif before["status"] == "SUCCESS":
            assert response.status_code == 409, response.text
        if response.status_code == 409:
            now = self.http.get(f"/api/tasks/{task_id}").json()
            self.observe(now)
            return
        assert response.status_code == 200, response.text
        task = response.json()
        self.retries[task_id] = self.retries.get(task_id, 0) + 1
        self.retried_since.add(task_id)
        assert task["status"] == "PENDING" and task["dispatch"] > before["dispatch"], task
        assert task["attempts_base"] == task["attempts"] >= before["attempts"], task
        assert task["result_data"] is None and task["completed_at"] is None, task
        self.observe(task)

    @rule(target=tasks, items=st.integers(2, 8), then_retry=st.booleans())
    def cancel_while_running(self, items: int, then_retry: bool) -> str:
        """The race the contract is most careful about, made common: cancel a task its worker is running."""
        task_id = self._submit("batch_processing", {"data": list(range(items)), "delay_per_item": 0.2})
        self._wait(task_id, lambda status: status != "PENDING")
        self.cancel(task_id)
        if then_retry:
            self._wait(task_id, lambda status: status in FINAL)
            self.retry(task_id)
        return task_id

    @rule(target=tasks)
    def retry_a_failure(self) -> str:
        task_id = self._submit("batch_processing", {"data": [None], "delay_per_item": 0, "fail_fast": True})
        self._wait(task_id, lambda status: status in FINAL)
        assert self.last[task_id]["status"] == "FAILED", self.last[task_id]
        self.retry(task_id)
        return task_id

    def _wait(self, task_id: str, done: Callable[[str], bool]) -> None:
        deadline = time.monotonic() + 10
        while not done(self.last[task_id]["status"]):
            assert time.monotonic() < deadline, f"task {task_id} stuck: {self.last[task_id]['timeline']}"
            time.sleep(0.01)
            self.get(task_id)

    @rule(seconds=st.sampled_from([0.02, 0.1, 0.3]))
    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    @invariant()
    def every_task_moves_as_the_contract_says(self) -> None:
        if not self.last:
            return
        listed = self.http.get("/api/tasks/", params={"limit": 500}).json()["tasks"]
        found = {task["id"]: task for task in listed if task["id"] in self.last}
        for task_id in self.last.keys() - found.keys():  # pushed off the page by later runs' tasks
            found[task_id] = self.http.get(f"/api/tasks/{task_id}").json()
        for task in found.values():
            self.observe(task)

    def teardown(self) -> None:
        """Every task ends in a final state with a timeline that explains it (cancelled, if need be)."""
        for task_id, task in list(self.last.items()):
            if task["status"] not in FINAL:
                self.cancel(task_id)
        deadline = time.monotonic() + 20
        for task_id in list(self.last):
            while True:
                task = self.http.get(f"/api/tasks/{task_id}").json()
                self.observe(task)
                if task["status"] in FINAL:
                    break
                assert time.monotonic() < deadline, f"task stuck in {task['status']}: {task['timeline']}"
                time.sleep(0.05)


@pytest.fixture
def live(settings: Settings, redis_url: str, db_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    env = process_env(redis_url, db_url, settings.data_dir)
    with ServerThread(settings) as base, workers(env, tmp_path) as pool, \
            httpx.Client(base_url=base, timeout=15) as http:
        pool.start()
        deadline = time.monotonic() + 20
        while http.get("/api/health").status_code != 200:  # the worker has beaten its heart
            assert time.monotonic() < deadline, (tmp_path / "worker-0.log").read_text()
            time.sleep(0.05)
        yield http


@pytest.mark.timeout(240)
def test_status_moves_hold_under_random_use(live: httpx.Client) -> None:
    TaskMachine.http = live
    TaskMachine.seen.clear()
    run_state_machine_as_test(TaskMachine, settings=hypothesis_settings(
        max_examples=15, stateful_step_count=25, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    # the runs reached each answer the contract fixes (hypothesis chooses rules at random: check it did)
    answers = {(rule, before in FINAL, code) for rule, before, code in TaskMachine.seen}
    assert {("cancel", False, 200), ("cancel", True, 409), ("retry", True, 200), ("retry", False, 409)} <= answers
    assert {("retry", "FAILED", 200), ("retry", "CANCELLED", 200), ("cancel", "RUNNING", 200)} <= set(TaskMachine.seen)
