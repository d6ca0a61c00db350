"""The OpenAPI document: valid, complete, and true — schemathesis drives the real server and a real
worker with it (examples, coverage, fuzzing and stateful phases) and checks every answer against it."""

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis.engine import Status, events, from_schema
from schemathesis.engine.recorder import ScenarioRecorder
from starlette.routing import Mount, Route, WebSocketRoute

from app.core.validation import MAX_JSON_DEPTH
from app.core.wire import TaskDict
from app.main import create_app
from app.settings import Settings
from app.tasks import load_task_types
from app.web.openapi import document
from tests.support.servers import make_settings, serve

TASK_TYPES = load_task_types()

MIN_REQUESTS = 1_000
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20261123"))  # fixed so that CI repeats itself; vary it locally
PHASES = ("examples", "coverage", "fuzzing", "stateful")
# Not `positive_data_acceptance`: some valid-looking requests are refused for reasons no schema can
# state (an Idempotency-Key reused with another body, an upload id that names no upload, image bytes).
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    # The per-client submit limit would answer most of the fuzzer's submits with 429, unread.
    return make_settings(redis_url, db_url, tmp_path / "data", SUBMIT_RATE="100000", SUBMIT_BURST="100000")


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """What the `web` fixture serves, with the server at hand: uvicorn counts the requests it answered."""
    server, task, address = await serve(settings)
    yield address, server
    server.should_exit = True
    await task


async def test_the_document_is_valid_and_describes_every_route(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    doc = response.json()
    validate(doc)  # raises naming the offending part
    routes = create_app(settings).routes
    expected = {(method.lower(), route.path) for route in routes if isinstance(route, Route)
                for method in route.methods or () if method != "HEAD"}  # Starlette adds HEAD to each GET
    assert {(method, path) for path, item in doc["paths"].items() for method in item} == expected
    assert ("get", "/openapi.json") in expected and len(expected) >= 13
    # the WebSocket and the static files are no REST routes: mentioned, not described
    assert any(isinstance(route, WebSocketRoute) for route in routes) and "/ws" not in doc["paths"]
    assert any(isinstance(route, Mount) for route in routes) and "/" not in doc["paths"]
    assert "/ws" in doc["info"]["description"]
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert operation["summary"] and operation["operationId"], (method, path)
            for code, answer in operation["responses"].items():
                if code.startswith("4") or (code == "503" and path != "/api/health"):
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


async def test_the_task_schema_has_the_wire_fields(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    task = schemas["Task"]
    assert set(task["properties"]) - {"queue_position"} == set(TaskDict.__annotations__)
    assert set(task["required"]) == set(TaskDict.__annotations__) - {"truncated"} and task["additionalProperties"] is False
    assert task["properties"]["truncated"]["items"]["enum"] == ["parameters", "result_data", "error_message",
                                                                 "error_traceback"]
    assert schemas["Error"]["required"] == ["detail"] and set(schemas["Error"]["properties"]) == {"detail", "field"}
    # one named component per type, told apart by task_type; its parameters a component of their own
    mapping = schemas["Submit"]["discriminator"]["mapping"]
    assert schemas["Submit"]["discriminator"]["propertyName"] == "task_type" and set(mapping) == set(TASK_TYPES)
    assert [variant["$ref"] for variant in schemas["Submit"]["oneOf"]] == list(mapping.values())
    for name, kind in TASK_TYPES.items():
        variant = schemas[mapping[name].rsplit("/", 1)[-1]]
        assert variant["properties"]["task_type"]["const"] == name and "task_type" in variant["required"]
        parameters = schemas[variant["properties"]["parameters"]["$ref"].rsplit("/", 1)[-1]]
        assert set(parameters["properties"]) == set(kind.parameters.model_fields)
    # no component is named as one of its own properties (a generated client would shadow it)
    for component, schema in schemas.items():
        assert not any(component.lower() == name.replace("_", "") for name in schema.get("properties", {})), component


def test_a_route_without_a_description_is_refused() -> None:
    async def secret() -> None: ...

    with pytest.raises(LookupError, match="GET /api/secret"):
        document([Route("/api/secret", secret, methods=["GET"])], TASK_TYPES)


@dataclass
class Outcome:
    answered: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # (phase, operation, status)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    hostile: int = 0  # answers refusing a body that `hostile_bodies` made deep or gave a lone surrogate

    def requests(self, phase: str | None = None) -> int:
        return sum(n for (at, _, _), n in self.answered.items() if phase in (None, at))


def failures(recorder: ScenarioRecorder) -> list[str]:
    """Each failed check as: the check, what it says, the request (curl) and the answer."""
    found = []
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.status != Status.FAILURE or check.failure_info is None:
                continue
            interaction = recorder.interactions.get(case_id)
            answer = interaction.response if interaction else None
            shown = f"→ {answer.status_code} {answer.content[:300]!r}" if answer else "→ no answer"
            info = check.failure_info
            found.append(f"[{check.name}] {info.failure.title}: {info.failure.message}\n"
                         f"{info.code_sample[:1500]}\n{shown}")
    return found


def _nested(value: object, depth: int) -> object:
    for _ in range(depth):
        value = [value]
    return value


def hostile_bodies(context: object, body: object) -> st.SearchStrategy[object]:
    """Some of the generated JSON bodies made hostile (issue 19): one field nested past the depth bound, or
    a lone surrogate in a value or a key. Each must be a 4xx naming it, never a 500."""
    if not isinstance(body, dict) or not body:
        return st.just(body)
    name = sorted(body)[0]
    return st.sampled_from([body, body, body, {**body, name: _nested(body[name], MAX_JSON_DEPTH + 5)},
                            {**body, name: "\ud800" if isinstance(body[name], str) else ["\udfff"]},
                            {**body, "\ud800": 1}])


def run_schemathesis(base: str) -> Outcome:
    """One run of every phase (blocking: it sends real requests, so it runs off the server's loop)."""
    config = schemathesis.Config.from_dict({
        "seed": SEED, "request-timeout": 15, "output": {"sanitization": {"enabled": False}},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS},
                   # the rule: invalid input is refused with a 4xx (a 413 for a huge body too)
                   "negative_data_rejection": {"enabled": True, "expected-statuses": ["4XX"]}},
        "generation": {"mode": "all", "max-examples": 100},
        "phases": {**{name: {"enabled": True} for name in PHASES},
                   "stateful": {"enabled": True, "max-steps": 20, "generation": {"max-examples": 40}}},
    })
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", config=config)
    outcome = Outcome()

    def count(context: object, case: schemathesis.Case, response: schemathesis.Response) -> None:
        phase = case.meta.phase.name.value if case.meta else "?"
        outcome.answered[(phase, case.operation.label, response.status_code)] += 1
        outcome.hostile += b"lone surrogate" in response.content or b"nested deeper" in response.content

    schema.hooks.register_hook_with_name(count, "after_call")
    schema.hooks.register_hook_with_name(hostile_bodies, "flatmap_body")
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            outcome.failures += failures(event.recorder)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            outcome.errors.append(f"{getattr(event, 'label', '')}: {event.info.title}: {event.info.message}"
                                  if isinstance(event, events.NonFatalError) else repr(event.exception))
    return outcome


@pytest.mark.timeout(900)  # a hang guard: ~80 s on a quiet machine, over 300 s on a loaded one
@pytest.mark.slow  # two minutes of fuzzing
@pytest.mark.usefixtures("worker")
# Raised inside schemathesis' own strategies (turned into errors by `filterwarnings = error`), not ours.
@pytest.mark.filterwarnings("ignore:Generating overly large repr", "ignore:Do not use the `random` module")
async def test_schemathesis_finds_nothing(served: tuple[str, uvicorn.Server]) -> None:
    address, server = served
    outcome = await asyncio.to_thread(run_schemathesis, f"http://{address}")
    unique = sorted(set(outcome.failures))
    assert not unique, f"{len(unique)} distinct failures:\n\n" + "\n\n".join(unique[:20])
    assert not outcome.errors, outcome.errors
    by_phase = {phase: outcome.requests(phase) for phase in PHASES}
    codes = Counter(status for (_, _, status) in outcome.answered.elements())
    print(f"schemathesis: {outcome.requests()} requests {by_phase}, answers {dict(sorted(codes.items()))}")
    assert all(by_phase.values()), by_phase
    assert outcome.hostile > 0, "no hostile body was refused: the flatmap_body hook did not apply"
    # counted twice: by schemathesis as it got answers, by uvicorn as it served them
    assert outcome.requests() >= MIN_REQUESTS, by_phase
    assert server.server_state.total_requests >= MIN_REQUESTS
    # the fuzzer reached real tasks through the links: cancelled or retried some that it submitted
    moved = {("DELETE /api/tasks/{task_id}", 200), ("POST /api/tasks/{task_id}/retry", 200)}
    assert moved & {(op, status) for (phase, op, status) in outcome.answered if phase == "stateful"}, outcome.answered
