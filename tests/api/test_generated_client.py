"""The OpenAPI document as its users meet it: a Python client generated from the served `/openapi.json`
by openapi-python-client drives the real server and a real worker on its own (every task type, built-in
and a user's module, submitted and followed to its end; a list, a get, a cancel, a retry, a 422), and
linters find no error in the document (openapi-spec-validator; Redocly CLI through npx when node is here)."""

import asyncio
import importlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from app.settings import Settings
from tests.support.servers import make_settings

USER_MODULE = "tests.support.user_tasks"
TOKEN = "generated-client-token-0123456789"
FINAL = {"SUCCESS", "FAILED", "CANCELLED"}
# Short runs of each type; a type not named here is submitted with its defaults.
PARAMETERS: dict[str, dict[str, Any]] = {
    "data_processing": {"rows": 300, "processing_time": 0},
    "email_simulation": {"recipient_count": 2, "delay_per_email": 0},
    "image_processing": {"image_count": 1, "target_size": [32, 32]},
    "batch_processing": {"delay_per_item": 0, "data": [1, 2]},
    "word_count": {"text": "one two three"},
    "burn": {"seconds": 0.1},
    "area": {"width": 5, "height": 6, "unit": "m"},
}
EXPECTED = {"explode": "FAILED"}  # always raises; every other type succeeds
GENERATOR_CONFIG = {
    "post_hooks": [],  # no ruff formatting pass: the client is imported, not read
}
REDOCLY = "@redocly/cli@2.77.0"
REDOCLY_CONFIG = Path(__file__).parents[1] / "support" / "redocly.yaml"


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    # a user's task module next to the built-in types, and a token: the generated client must send it
    return make_settings(redis_url, db_url, tmp_path / "data", TASK_MODULES=USER_MODULE, API_TOKEN=TOKEN)


def generate(spec: dict[str, Any], where: Path) -> tuple[str, subprocess.CompletedProcess[str]]:
    """Runs openapi-python-client on the document; the package's name is new each run (no stale import)."""
    package = f"taskqueue_client_{uuid.uuid4().hex[:12]}"
    (where / "openapi.json").write_text(json.dumps(spec))
    (where / "config.json").write_text(json.dumps(
        {**GENERATOR_CONFIG, "project_name_override": package, "package_name_override": package}))
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(where / "openapi.json"),
               "--config", str(where / "config.json"), "--meta", "none", "--output-path", str(where / package),
               "--fail-on-warning"]
    return package, subprocess.run(command, check=False, capture_output=True, text=True, timeout=300,
                                   cwd=where)


@pytest.fixture
def imported() -> Iterator[list[str]]:
    """Import paths and package names added by a test: removed when it ends."""
    added: list[str] = []
    yield added
    for entry in added:
        if entry in sys.path:
            sys.path.remove(entry)
        for name in [m for m in sys.modules if m == entry or m.startswith(f"{entry}.")]:
            del sys.modules[name]


def load(package: str, where: Path, imported: list[str]) -> ModuleType:
    sys.path.insert(0, str(where))
    imported += [str(where), package]
    importlib.invalidate_caches()
    return importlib.import_module(package)


@pytest.mark.timeout(240)  # a hang guard: ~6 s on a quiet machine (generating the client: ~2 s)
@pytest.mark.usefixtures("worker")
async def test_a_generated_client_drives_every_task_type(client: httpx.AsyncClient, web: str, tmp_path: Path,
                                                          imported: list[str]) -> None:
    spec = (await client.get("/openapi.json")).json()
    package, run = await asyncio.to_thread(generate, spec, tmp_path)
    output = f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    print(f"openapi-python-client: {output}")
    assert run.returncode == 0, output
    assert "warning" not in (run.stdout + run.stderr).lower(), output
    generated = load(package, tmp_path, imported)
    models = importlib.import_module(f"{package}.models")

    def operation(tag: str, name: str) -> ModuleType:  # the generator's layout: api/<tag>/<operation>.py
        return importlib.import_module(f"{package}.api.{tag}.{name}")

    get_task, submit_task, list_tasks, cancel_task, retry_task, task_types, task_logs = (
        operation("tasks", name)
        for name in ("get_task", "submit_task", "list_tasks", "cancel_task", "retry_task", "task_types", "task_logs"))
    health = operation("health", "health")
    schemas = spec["components"]["schemas"]
    variants = {name: target.rsplit("/", 1)[-1]
                for name, target in schemas["Submit"]["discriminator"]["mapping"].items()}

    async with generated.AuthenticatedClient(base_url=f"http://{web}", token=TOKEN, raise_on_unexpected_status=True,
                                             timeout=httpx.Timeout(10)) as api_client:
        # a public route takes a client without a token
        async with generated.Client(base_url=f"http://{web}", raise_on_unexpected_status=True) as anonymous:
            up = await health.asyncio_detailed(client=anonymous)
            assert up.status_code == 200 and up.parsed.status.value == "ok", up.content

        async def submitted(task_type: str, parameters: dict[str, Any]) -> Any:
            variant = schemas[variants[task_type]]
            body_class = getattr(models, variants[task_type])
            parameters_class = getattr(models, variant["properties"]["parameters"]["$ref"].rsplit("/", 1)[-1])
            return await submit_task.asyncio_detailed(client=api_client, body=body_class(
                task_type=task_type, parameters=parameters_class.from_dict(parameters)))

        async def final(task_id: str, wanted: set[str] = FINAL, timeout: float = 30) -> Any:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                answer = await get_task.asyncio_detailed(task_id, client=api_client)
                assert answer.status_code == 200, answer.content
                if answer.parsed.status.value in wanted:
                    return answer.parsed
                assert asyncio.get_running_loop().time() < deadline, (
                    f"{answer.parsed.task_type} {task_id} stuck in {answer.parsed.status.value}, wanted {wanted}")
                await asyncio.sleep(0.05)

        # every registered type: the built-in ones and the user module's
        listed = await task_types.asyncio_detailed(client=api_client)
        assert listed.status_code == 200, listed.content
        names = [kind.name.value for kind in listed.parsed.task_types]
        assert {"word_count", "area", "slow_sum", "burn", "explode", "data_processing"} <= set(names)
        assert set(names) == set(variants)
        ids = {}
        for name in names:
            answer = await submitted(name, PARAMETERS.get(name, {}))
            assert answer.status_code == 201, (name, answer.content)
            assert answer.parsed.status.value == "PENDING" and answer.parsed.task_type == name
            ids[name] = answer.parsed.id
        done = {name: await final(task_id) for name, task_id in ids.items()}
        outcomes = {name: task.status.value for name, task in done.items()}
        assert outcomes == {name: EXPECTED.get(name, "SUCCESS") for name in names}, {
            name: task.error_message for name, task in done.items()}
        assert "ValueError" in done["explode"].error_traceback
        assert done["word_count"].result_data.to_dict() == {"words": 3}
        assert done["area"].result_data.to_dict()["area"] == 30

        # one task, with its log
        one = await get_task.asyncio_detailed(ids["word_count"], client=api_client)
        assert one.status_code == 200 and one.parsed.id == ids["word_count"]
        assert one.parsed.parameters.to_dict() == {"text": "one two three", "repeat": 1, "pause": 0.0}
        log = await task_logs.asyncio_detailed(ids["word_count"], client=api_client)
        assert log.status_code == 200 and any("3 words" in line.line for line in log.parsed.lines)

        # a list filtered by status
        page = await list_tasks.asyncio_detailed(client=api_client, status="SUCCESS", limit=100)
        assert page.status_code == 200, page.content
        assert {task.status.value for task in page.parsed.tasks} == {"SUCCESS"}
        assert {task.id for task in page.parsed.tasks} == {ids[name] for name in names if name not in EXPECTED}
        assert page.parsed.counts.failed == 1 and page.parsed.total == len(names) - 1
        by_type = await list_tasks.asyncio_detailed(client=api_client, task_type="area")
        assert [task.id for task in by_type.parsed.tasks] == [ids["area"]]

        # a file uploaded as untyped bytes (its kind told from them), then analysed
        upload = operation("uploads", "upload")
        csv_bytes = b"region,amount\n" + b"".join(b"north,%d\n" % i for i in range(12))
        sent = await upload.asyncio_detailed(client=api_client, filename="sales.csv", body=generated.types.File(
            payload=csv_bytes, file_name="sales.csv"))  # bytes: an async client cannot read a file object
        assert sent.status_code == 201 and sent.parsed.kind.value == "csv", sent.content
        analysed = await submitted("data_processing", {"upload": [sent.parsed.id], "processing_time": 0})
        result = (await final(analysed.parsed.id, {"SUCCESS"})).result_data.to_dict()
        assert (result["source"], result["file"], result["rows"]) == ("upload", "sales.csv", 12)

        # cancel a running task
        long = await submitted("word_count", {"text": "a b", "repeat": 100, "pause": 0.2})
        assert long.status_code == 201, long.content
        await final(long.parsed.id, {"RUNNING"})
        cancelled = await cancel_task.asyncio_detailed(long.parsed.id, client=api_client)
        assert cancelled.status_code == 200, cancelled.content
        assert cancelled.parsed.status.value == "CANCELLED" or cancelled.parsed.cancel_requested
        assert (await final(long.parsed.id)).status.value == "CANCELLED"

        # retry a failed one: PENDING, then failed again
        retried = await retry_task.asyncio_detailed(ids["explode"], client=api_client)
        assert retried.status_code == 200, retried.content
        assert retried.parsed.status.value == "PENDING"
        again = await final(ids["explode"])
        assert again.status.value == "FAILED" and again.attempts > done["explode"].attempts
        # a finished task cannot be cancelled: a 409, typed
        refused = await cancel_task.asyncio_detailed(ids["area"], client=api_client)
        assert refused.status_code == 409 and isinstance(refused.parsed, models.Error) and refused.parsed.detail

        # a bad parameter: the 422 read through the typed error model
        bad = await submitted("word_count", {"text": "x", "repeat": 0})
        assert bad.status_code == 422, bad.content
        assert isinstance(bad.parsed, models.Error), bad.parsed
        assert bad.parsed.field == "repeat" and bad.parsed.detail.startswith("repeat: "), bad.parsed.to_dict()

    # the token is what lets it in
    async with generated.AuthenticatedClient(base_url=f"http://{web}", token="wrong",
                                             raise_on_unexpected_status=True) as stranger:
        refused = await get_task.asyncio_detailed(ids["area"], client=stranger)
        assert refused.status_code == 401 and isinstance(refused.parsed, models.Error)


@pytest.mark.timeout(420)  # npx may first download Redocly CLI (~5 s once it is in npm's cache)
async def test_linters_find_no_error_in_the_document(client: httpx.AsyncClient, tmp_path: Path) -> None:
    spec = (await client.get("/openapi.json")).json()
    validate(spec)  # openapi-spec-validator: raises naming the first error
    if shutil.which("npx") is None:
        pytest.skip("Redocly CLI runs through npx: node is not installed")
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(spec))
    env = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true", "NO_COLOR": "1"}

    def npx(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["npx", "--yes", REDOCLY, *args], check=False, capture_output=True, text=True,
                              timeout=timeout, cwd=tmp_path, env={**os.environ, **env})

    try:  # the download, if npm's cache lacks it
        fetched = await asyncio.to_thread(npx, "--version", timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip(f"{REDOCLY} could not be fetched within 300 s (offline?)")
    if fetched.returncode != 0:
        pytest.skip(f"{REDOCLY} could not be fetched or started (offline?): {fetched.stderr.strip()[-500:]}")
    run = await asyncio.to_thread(npx, "lint", str(path), "--format=json", f"--config={REDOCLY_CONFIG}", timeout=90)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"{REDOCLY} lint gave no JSON report (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    problems = [f"{p['severity']} {p['ruleId']}: {p['message']} at "
                f"{', '.join(str(at.get('pointer')) for at in p['location'])}" for p in report["problems"]]
    print(f"{REDOCLY} lint: {report['totals']}\n" + "\n".join(problems))
    assert report["totals"]["errors"] == 0, "\n".join(problems)
    assert run.returncode == 0, run.stderr
