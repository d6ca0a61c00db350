"""The OpenAPI 3.1 document of the REST API: paths from the app's route table (a route without a
description here refuses to start), schemas from web/schemas.py; served at `/openapi.json`."""

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from app.core.priority import Priority
from app.core.status import Status
from app.lifecycle.bulk import MAX_IDS
from app.metrics.series import WINDOWS
from app.store.filters import MAX_TEXT
from app.store.uploads import KINDS, UNTYPED
from app.tasks import TaskType
from app.web.requests import MAX_BODY_BYTES
from app.web.responses import JSONResponse
from app.web.schemas import Schema, components, ref
from app.web.security import SAFE_METHODS, needs_token
from app.web.tasks import MAX_BATCH, MAX_PAGE

# What Python's str.strip() removes: the server trims `q` with it, so the schema must allow exactly that.
SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*"
REASONS = {400: "Malformed JSON", 401: "No valid token (only when API_TOKEN is set)",
           403: "Foreign Origin, cross-site request, or a read-only token", 404: "Not found",
           409: "Conflict with the task's status", 413: "Body too large", 415: "Unsupported media type",
           422: "Invalid input (`field` names it)", 429: "Too many submits: wait Retry-After seconds",
           503: "A dependency is down", 507: "The uploads' quota (UPLOAD_QUOTA_BYTES) is spent"}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "description": "Seconds."}}


def _json(schema: Schema, description: str, **extra: Any) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


def _responses(ok: Schema, *errors: int, code: int = 200) -> Schema:
    return {str(code): ok, **{str(e): _json(ref("Error"), REASONS[e]) for e in errors}}


def _param(name: str, where: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": where, "required": where == "path", "schema": schema, "description": description}


def _caseless(word: str) -> str:
    return "".join(f"[{c}{c.lower()}]" for c in word)


TASK_ID = _param("task_id", "path", {"type": "string", "minLength": 1}, "The task's id.")
# Follow-ups the stateful fuzzer chains after any answer that carries a task.
TASK_LINKS = {"links": {
    name: {"operationId": name, "parameters": {"task_id": "$response.body#/id"}}
    for name in ("getTask", "cancelTask", "retryTask", "rerunTask", "taskLogs", "taskWebhooks")
}}
TASK = _json(ref("Task"), "The task", **TASK_LINKS)
SCHEDULE_ID = _param("schedule_id", "path", {"type": "string", "minLength": 1}, "The schedule's id.")
SCHEDULE = _json(ref("Schedule"), "The schedule", links={
    name: {"operationId": name, "parameters": {"schedule_id": "$response.body#/id"}}
    for name in ("getSchedule", "editSchedule", "deleteSchedule", "runSchedule")})
WHEN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
SEARCH_QUERY = [
    _param("text", "query", {"type": "string", "maxLength": MAX_TEXT},
           "Words in the parameters, result or error: every word must begin a word of the task's text "
           "(letters and digits; any letter case). Empty: all."),
    _param("from", "query", {"type": "string", "pattern": f"^{SPACE}(|{WHEN}){SPACE}$"},
           "Created at or after (ISO 8601 date or date and time; UTC without an offset)."),
    _param("to", "query", {"type": "string", "pattern": f"^{SPACE}(|{WHEN}){SPACE}$"},
           "Created before (ISO 8601 date or date and time; UTC without an offset)."),
    _param("priority", "query", {"type": "string", "enum": ["", *Priority]}, "Only tasks of this priority."),
    _param("schedule_id", "query", {"type": "string", "pattern": f"^{SPACE}[0-9a-f-]{{0,36}}{SPACE}$"},
           "Only the runs of this schedule."),
    _param("source_task_id", "query", {"type": "string", "pattern": f"^{SPACE}[0-9a-f-]{{0,36}}{SPACE}$"},
           "Only re-runs of this task."),
]
FILTER_QUERY = [
    _param("status", "query", {"type": "string", "pattern": f"^(|{'|'.join(_caseless(s) for s in Status)})$"},
           "Only tasks in this status (any letter case); empty: all."),
    _param("task_type", "query", {"type": "string", "maxLength": 64}, (
        "Only tasks of this type (any type's name: the stored tasks of a type no longer served too); empty: all.")),
    _param("q", "query", {"type": "string", "pattern": f"^{SPACE}-*(?:[0-9A-Fa-f]-*){{0,32}}{SPACE}$"},
           "Task id prefix: up to 32 hex digits, dashes and surrounding blanks ignored."),
    *SEARCH_QUERY,
]
LIST_QUERY = [
    *FILTER_QUERY,
    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 50}, "Page size."),
    _param("offset", "query", {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0}, "Tasks skipped."),
    _param("after", "query", {"type": "string", "pattern": r"^(|[0-9]{1,17}\.[0-9A-Za-z_-]{1,36})$"},
           "Keyset cursor: the `next` of the previous page; the page starts after that task (empty: first page)."),
]
FILE = {"type": "string", "format": "binary"}
UPLOADED = {**FILE, "minLength": 1}  # an empty file is refused (422)

TAGS = {
    "tasks": "Submit tasks, follow them, cancel, retry and re-run them; the task types this server runs.",
    "uploads": "Input files (CSV, images) that tasks read.",
    "schedules": "Recurring tasks, on a cron expression or an interval.",
    "workers": "The worker processes, from their heartbeats.",
    "metrics": "Figures for the dashboard's charts and for Prometheus.",
    "health": "Whether Redis, the database, the workers and the event stream are up.",
    "meta": "This document, and the page that shows it.",
}
TAGGED = (("/api/tasks", "tasks"), ("/api/stats", "tasks"), ("/api/task-types", "tasks"), ("/api/queue", "tasks"),
          ("/api/uploads", "uploads"), ("/api/schedules", "schedules"), ("/api/workers", "workers"),
          ("/api/metrics/", "metrics"), ("/metrics", "metrics"), ("/api/health", "health"), ("/openapi.json", "meta"),
          ("/docs", "meta"))

OPERATIONS: dict[tuple[str, str], Schema] = {
    ("POST", "/api/tasks/submit"): {
        "operationId": "submitTask", "summary": "Submit a task",
        "description": "Stores the task (status PENDING, the type's defaults filled in) and queues it.",
        "parameters": [_param("Idempotency-Key", "header", {"type": "string", "minLength": 1, "maxLength": 200},
                              "A repeat with the same key returns the first task (200); 422 if the body differs.")],
        "requestBody": {"required": True, "description": f"At most {MAX_BODY_BYTES} bytes.",
                        "content": {"application/json": {"schema": ref("Submit")}}},  # + examples, per app
        "responses": {"201": _json(ref("Task"), "Created", **TASK_LINKS),
                      **_responses(_json(ref("Task"), "The first task of this Idempotency-Key", **TASK_LINKS),
                                   400, 413, 415, 422),
                      "429": _json(ref("Error"), REASONS[429], headers=RETRY_AFTER),
                      "503": _json(ref("Error"), "Redis is down, or the queue is full: nothing was stored",
                                   headers=RETRY_AFTER)},
    },
    ("POST", "/api/tasks/batch"): {
        "operationId": "submitBatch", "summary": "Submit many tasks",
        "description": "All stored (one transaction) and queued, or none; each counts against "
                       "the submit rate. An Idempotency-Key header is refused (422).",
        "requestBody": {"required": True, "description": f"At most {MAX_BATCH} tasks and {MAX_BODY_BYTES} bytes; "
                        "a 422 names the first invalid one as `tasks[i].<field>`, and nothing is stored.",
                        "content": {"application/json": {"schema": ref("Batch")}}},
        "responses": {"201": _json(ref("TaskBatch"), "Created, in request order"),
                      **{str(code): _json(ref("Error"), REASONS[code]) for code in (400, 413, 415, 422)},
                      "429": _json(ref("Error"), REASONS[429], headers=RETRY_AFTER),
                      "503": _json(ref("Error"), "Redis is down, or the batch does not fit in the queue: nothing "
                                   "was stored", headers=RETRY_AFTER)},
    },
    ("POST", "/api/tasks/bulk"): {
        "operationId": "bulkAction", "summary": "Cancel, retry or delete many tasks",
        "description": "Cancel, retry or delete a selection (`ids`) or every task matching `filter` (the list's filter "
                       "fields); `dry_run` only counts. Eligible: cancel PENDING/RETRYING/RUNNING, retry FAILED/"
                       "CANCELLED, delete SUCCESS/FAILED/CANCELLED (with logs and artifacts).",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["action"], "additionalProperties": False, "properties": {
                "action": {"enum": ["cancel", "retry", "delete"]},
                "ids": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 36},
                        "minItems": 1, "maxItems": MAX_IDS},
                "filter": {"type": "object", "additionalProperties": False,  # null or "": any
                           "properties": {p["name"]: {"anyOf": [p["schema"], {"type": "null"}]}
                                          for p in FILTER_QUERY}},
                "dry_run": {"type": "boolean", "default": False}},
            "oneOf": [{"required": ["ids"]}, {"required": ["filter"]}]}}}},
        "responses": _responses(_json(ref("BulkOutcome"), "Counted (dry run) or applied"), 400, 422)},
    ("GET", "/api/tasks"): {"operationId": "listTasksNoSlash", "summary": "List tasks (the same as /api/tasks/)",
                            "description": "The list's own path without its trailing slash: the same answer.",
                            "parameters": LIST_QUERY, "responses": _responses(_json(ref("TaskList"), "A page"), 422)},
    ("GET", "/api/tasks/"): {"operationId": "listTasks", "summary": "List tasks",
                             "description": "Tasks, newest first, a page at a time, with counts per status.",
                             "parameters": LIST_QUERY, "responses": _responses(_json(ref("TaskList"), "A page"), 422)},
    ("GET", "/api/tasks/{task_id}"): {"operationId": "getTask", "summary": "Get a task",
                                      "description": "One task, with its queue position while it waits.",
                                      "parameters": [TASK_ID], "responses": _responses(TASK, 404)},
    ("DELETE", "/api/tasks/{task_id}"): {
        "operationId": "cancelTask", "parameters": [TASK_ID], "responses": _responses(TASK, 404, 409),
        "summary": "Cancel a task",
        "description": "CANCELLED at once if queued; a running task is stopped by its worker (the answer may still "
                       "be RUNNING with cancel_requested)."},
    ("POST", "/api/tasks/{task_id}/retry"): {"operationId": "retryTask", "summary": "Retry a task",
                                             "description": "A FAILED or CANCELLED task is queued again: PENDING.",
                                             "parameters": [TASK_ID], "responses": _responses(TASK, 404, 409)},
    ("POST", "/api/tasks/{task_id}/run-now"): {
        "operationId": "runTaskNow", "summary": "Run a waiting task now",
        "description": "A task waiting for a later start (a scheduled PENDING one, or a RETRYING one backing off) "
                       "is queued at once, its status kept; 409 for any other.",
        "parameters": [TASK_ID], "responses": _responses(TASK, 404, 409)},
    ("POST", "/api/tasks/{task_id}/rerun"): {
        "operationId": "rerunTask", "summary": "Re-run a task",
        "description": "A new task from this one, linked by source_task_id: its parameters and options with the "
                       "body's changes (`parameters` replaces them whole; `{}` duplicates it).",
        "parameters": [TASK_ID],
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("Rerun")}}},
        "responses": {"201": _json(ref("Task"), "The new task", **TASK_LINKS),
                      **_responses(TASK, 400, 404, 422),
                      "429": _json(ref("Error"), REASONS[429], headers=RETRY_AFTER),
                      "503": _json(ref("Error"), "Redis is down, or the queue is full: nothing was stored",
                                   headers=RETRY_AFTER)}},
    ("GET", "/api/tasks/{task_id}/logs"): {
        "operationId": "taskLogs", "summary": "A task's log",
        "description": "The task's log lines numbered after `after`, oldest first.",
        "parameters": [TASK_ID,
                       _param("after", "query", {"type": "integer", "minimum": 0, "maximum": 2**62}, "Last n seen."),
                       _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 5000}, "Most lines.")],
        "responses": _responses(_json(ref("Logs"), "Log lines"), 404, 422)},
    ("GET", "/api/tasks/{task_id}/webhooks"): {
        "operationId": "taskWebhooks", "summary": "A task's webhook deliveries",
        "description": "The task's webhook deliveries, oldest first, each with every attempt (the global hook's URL "
                       "only up to its host).",
        "parameters": [TASK_ID], "responses": _responses(_json(ref("Webhooks"), "Deliveries"), 404)},
    ("GET", "/api/tasks/{task_id}/artifacts/{name}"): {
        "operationId": "taskArtifact", "summary": "A task's output file",
        "description": "A file the task produced (listed in result_data.artifacts).",
        "parameters": [TASK_ID, _param("name", "path", {"type": "string", "minLength": 1}, "The file's name.")],
        "responses": _responses({"description": "The file", "content": {
            "image/*": {"schema": FILE}, "application/octet-stream": {"schema": FILE}}}, 404)},
    ("POST", "/api/uploads"): {
        "operationId": "upload", "summary": "Upload an input file",
        "description": "The body is the file: an image (PNG, JPEG, GIF, WebP, BMP) or UTF-8 text (a CSV). Sent as "
                       "application/octet-stream its kind is told from its bytes; a typed Content-Type is "
                       f"accepted too ({', '.join(KINDS)}) and checked against them. A task names the upload's "
                       "id in its parameters.",
        "parameters": [_param("filename", "query", {"type": "string"}, "The file's name (sanitised).")],
        # One media type: generated clients send one (the typed ones are named in the description).
        "requestBody": {"required": True, "content": {UNTYPED: {"schema": UPLOADED}}},
        "responses": {**_responses(_json(ref("Upload"), "Stored", links={"getUpload": {
            "operationId": "getUpload", "parameters": {"upload_id": "$response.body#/id"}}}),
            413, 415, 422, 507, code=201),
            "429": _json(ref("Error"), "Too many upload bytes (UPLOAD_RATE): wait Retry-After seconds",
                         headers=RETRY_AFTER)}},
    ("GET", "/api/uploads/{upload_id}"): {
        "operationId": "getUpload", "summary": "Get an upload",
        "description": "An upload's name, type, size and digest.",
        "parameters": [_param("upload_id", "path", {"type": "string", "minLength": 1}, "The upload's id.")],
        "responses": _responses(_json(ref("Upload"), "The upload"), 404)},
    ("DELETE", "/api/uploads/{upload_id}"): {
        "operationId": "deleteUpload", "summary": "Delete an upload",
        "description": "Removes the file. Refused (409) while an unfinished task or a schedule names it, or "
                       "a submit named it in the last 10 seconds; a finished task that named it keeps its record.",
        "parameters": [_param("upload_id", "path", {"type": "string", "minLength": 1}, "The upload's id.")],
        "responses": {**_responses({"description": "Deleted"}, 404, code=204),
                      "409": _json(ref("Error"), "An unfinished task, a schedule or a submit just now uses the upload")}},
    ("GET", "/api/schedules"): {"operationId": "listSchedules", "summary": "List schedules",
                                "description": "Every schedule, oldest first.",
                                "responses": _responses(_json(ref("ScheduleList"), "The schedules"))},
    ("POST", "/api/schedules"): {
        "operationId": "createSchedule", "summary": "Create a schedule",
        "description": "A recurring task: every tick (cron or interval) runs the task.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("ScheduleCreate")}}},
        "responses": _responses(SCHEDULE, 400, 422, code=201)},
    ("GET", "/api/schedules/{schedule_id}"): {"operationId": "getSchedule", "summary": "Get a schedule",
                                             "description": "One schedule, with its next run.",
                                             "parameters": [SCHEDULE_ID], "responses": _responses(SCHEDULE, 404)},
    ("PATCH", "/api/schedules/{schedule_id}"): {
        "operationId": "editSchedule", "parameters": [SCHEDULE_ID],
        "summary": "Edit a schedule",
        "description": "Change any field (`paused` pauses and resumes); a new timing or a resume moves the next run "
                       "to the first tick ahead.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("ScheduleEdit")}}},
        "responses": _responses(SCHEDULE, 400, 404, 422)},
    ("DELETE", "/api/schedules/{schedule_id}"): {
        "operationId": "deleteSchedule", "summary": "Delete a schedule",
        "description": "The tasks it made stay, with its id.",
        "parameters": [SCHEDULE_ID], "responses": _responses({"description": "Deleted"}, 404, code=204)},
    ("POST", "/api/schedules/{schedule_id}/run"): {
        "operationId": "runSchedule", "summary": "Run a schedule now",
        "description": "Runs the schedule's task now (the next tick stays where it is).",
        "parameters": [SCHEDULE_ID],
        "responses": {**_responses(_json(ref("Task"), "The new task", **TASK_LINKS), 404, code=201),
                      "503": _json(ref("Error"), "Redis is down: nothing was stored", headers=RETRY_AFTER)}},
    ("GET", "/api/stats"): {"operationId": "stats", "summary": "Task counts",
                            "description": "Counts per status and the latest seq.",
                            "responses": _responses(_json(ref("Stats"), "Counts"))},
    ("GET", "/api/task-types"): {"operationId": "taskTypes", "summary": "List task types",
                                 "description": "The task types this server runs, and their parameter schemas.",
                                 "responses": _responses(_json(ref("TaskTypeList"), "The task types"))},
    ("GET", "/api/queue"): {"operationId": "getQueue", "summary": "The queue's state",
                            "description": "Whether the queue is paused, and since when.",
                            "responses": _responses(_json(ref("QueueState"), "The state"), 503)},
    ("POST", "/api/queue/pause"): {
        "operationId": "pauseQueue", "summary": "Pause the queue",
        "description": "New tasks are still accepted and wait; no worker takes a job until it is resumed (running "
                       "tasks finish). Pausing a paused queue keeps its first time.",
        "responses": _responses(_json(ref("QueueState"), "Paused"), 503)},
    ("POST", "/api/queue/resume"): {"operationId": "resumeQueue", "summary": "Resume the queue",
                                    "description": "Workers take its jobs again.",
                                    "responses": _responses(_json(ref("QueueState"), "Resumed"), 503)},
    ("GET", "/api/health"): {"operationId": "health", "summary": "Health",
                             "description": "Redis, database, workers and the event stream; readable without a "
                                            "token.",
                             "responses": {"200": _json(ref("Health"), "All up"),
                                           "503": _json(ref("Health"), "`detail` names what is down")}},
    ("GET", "/api/workers"): {
        "operationId": "listWorkers", "summary": "List workers",
        "description": "Each worker from its last heartbeat (times in unix seconds): live, lost, or stopped lately.",
        "responses": {**_responses(_json(ref("WorkerList"), "The workers, oldest first")),
                      "503": _json(ref("Error"), "Redis is down", headers=RETRY_AFTER)}},
    ("GET", "/api/metrics/series"): {
        "operationId": "metricsSeries", "summary": "Chart figures",
        "description": "Per-minute figures for the charts over the last hour (60 minutes) or day (1440): tasks "
                       "succeeded and failed, wait time p50/p95, sampled queue depth; run time per task type over "
                       "the window.",
        "parameters": [_param("window", "query", {"enum": list(WINDOWS), "default": "hour"}, "The span shown.")],
        "responses": {**_responses(_json(ref("Series"), "The series"), 422),
                      "503": _json(ref("Error"), REASONS[503], headers=RETRY_AFTER)}},
    ("GET", "/metrics"): {
        "operationId": "metrics", "summary": "Prometheus metrics",
        "description": "The text exposition format, the same on every web process: see docs/operations.md, "
                       "Metrics.",
        "responses": {"200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                      "503": _json(ref("Error"), REASONS[503], headers=RETRY_AFTER)}},
    ("GET", "/openapi.json"): {"operationId": "openapi", "summary": "This document",
                               "description": "The OpenAPI 3.1 document of this server (its task types included); "
                                              "readable without a token.",
                               "responses": _responses(_json({"type": "object"}, "OpenAPI 3.1"))},
    ("GET", "/docs"): {"operationId": "apiDocs", "summary": "This document, browsable",
                       "description": "An HTML page (Swagger UI, served from this server) showing this document; "
                                      "readable without a token.",
                       "responses": {"200": {"description": "The page",
                                             "content": {"text/html": {"schema": {"type": "string"}}}}}},
}


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str]]:
    """(method, path) of every HTTP route; the WebSocket and the static mount are not REST routes."""
    for route in routes:
        if isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):  # Starlette adds HEAD to every GET
                yield method, route.path_format


def with_types(path: str, operation: Schema, types: Mapping[str, TaskType]) -> Schema:
    """The parts that name the task types: a registry per app, not module constants."""
    if path in ("/api/tasks/", "/api/tasks"):
        query = [{**p, "schema": {**p["schema"], "examples": ["", *types]}} if p["name"] == "task_type" else p
                 for p in operation["parameters"]]
        return {**operation, "parameters": query}
    if path == "/api/tasks/submit":
        examples = {name: {"summary": f"{name} with {'the defaults left' if value['parameters'] else 'its defaults'}",
                           "value": value}
                    for name, kind in types.items() if (value := example(kind)) is not None}
        return {**operation, "requestBody": {**operation["requestBody"], "content": {
            "application/json": {"schema": ref("Submit"), "examples": examples}}}}
    return operation


def example(kind: TaskType) -> Schema | None:
    """A valid submit of this type: its required parameters from the examples they declare (None when one
    declares none: no example beats an invalid one), the rest left to their defaults."""
    parameters = {}
    for name, field in kind.parameters.model_fields.items():
        if field.is_required():
            if not field.examples:
                return None
            parameters[field.alias or name] = field.examples[0]
    return {"task_type": kind.name, "parameters": parameters}


def tag(path: str) -> str:
    for prefix, name in TAGGED:
        if path.startswith(prefix):
            return name
    raise LookupError(f"no tag in web/openapi.py's TAGGED for {path}")


def guarded(method: str, path: str, operation: Schema) -> Schema:
    """What the security middleware adds in front of every handler (web/security.py)."""
    responses = dict(operation["responses"])
    extra = []
    if needs_token(path):
        operation = {**operation, "security": [{}, {"bearer": []}]}  # a token only when API_TOKEN is set
        extra.append(401)
    else:
        operation = {**operation, "security": []}  # public: said outright, not left to a default
    if method not in SAFE_METHODS:  # a foreign Origin or a read-only token; a body too big or not JSON
        extra += [403, 413, 415]  # (an upload's body is the file: its handler answers its own 415)
    for code in extra:
        responses.setdefault(str(code), _json(ref("Error"), REASONS[code]))
    return {**operation, "responses": responses}


def document(routes: Iterable[BaseRoute], types: Mapping[str, TaskType]) -> Schema:
    found = list(api_routes(routes))
    if missing := [f"{m} {p}" for m, p in found if (m, p) not in OPERATIONS]:
        raise LookupError(f"routes without an OpenAPI description in web/openapi.py: {', '.join(missing)}")
    if stale := [f"{m} {p}" for m, p in OPERATIONS if (m, p) not in found]:
        raise LookupError(f"OpenAPI descriptions of routes that do not exist: {', '.join(stale)}")
    paths: Schema = {}
    for method, path in found:
        operation = OPERATIONS[(method, path)]
        operation = with_types(path, operation, types)
        paths.setdefault(path, {})[method.lower()] = {"tags": [tag(path)], **guarded(method, path, operation)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Task queue", "version": "1", "description": (
            "Submit background tasks and follow them. Errors are `{\"detail\"}` (422s add `field`). Live "
            "changes arrive over the WebSocket `/ws?since=S`, described in docs/api.md, not here.")},
        "servers": [{"url": "/", "description": "This server (the document is served by the API it describes)"}],
        "tags": [{"name": name, "description": description} for name, description in TAGS.items()],
        "paths": paths,
        "components": {**components(types), "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "API_TOKEN (everything) or READ_TOKEN (reads only), when the server sets them; "
                           "without them no token is asked for."}}},
    }


async def openapi_json(request: Request) -> JSONResponse:
    spec, prefix = request.state.openapi, request.scope.get("root_path", "")
    if prefix:  # served under ROOT_PATH: clients (and /docs' "Try it out") must call the API there
        spec = {**spec, "servers": [{"url": prefix, "description": "This server, under its path prefix"}]}
    return JSONResponse(spec)
