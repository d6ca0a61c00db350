"""REST handlers for files and logs: uploads in, artifacts and log lines out."""

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from app.core.errors import NotFound, PayloadTooLarge
from app.lifecycle.lookup import existing
from app.lifecycle.uploads import delete_upload as remove_upload
from app.store import artifacts
from app.web.requests import int_query, limit_uploads
from app.web.responses import JSONResponse


async def upload(request: Request) -> JSONResponse:
    """The body is the file itself (`Content-Type` its type, `?filename=` its name) → 201 with its id."""
    uploads = request.state.uploads
    length = request.headers.get("content-length", "")
    declared = int(length) if length.isdigit() else None
    if declared is not None and declared > uploads.max_bytes:
        raise PayloadTooLarge(f"upload exceeds {uploads.max_bytes} bytes")
    limit_uploads(request, uploads.max_bytes if declared is None else declared)
    saved = await uploads.save(request.stream(), request.query_params.get("filename", ""),
                               request.headers.get("content-type", ""), declared)
    return JSONResponse(saved.describe(), status_code=201)


async def get_upload(request: Request) -> JSONResponse:
    return JSONResponse(request.state.uploads.get(request.path_params["upload_id"]).describe())


async def delete_upload(request: Request) -> Response:
    await remove_upload(request.state.stores.upload_refs, request.state.uploads, request.path_params["upload_id"])
    return Response(status_code=204)


async def artifact(request: Request) -> Response:
    task_id, name = request.path_params["task_id"], request.path_params["name"]
    await existing(request.state.stores.tasks, task_id)
    path = artifacts.find(request.state.settings.data_dir, task_id, name)
    if path is None:
        raise NotFound(f"task {task_id!r} has no artifact {name!r}")
    return FileResponse(path, media_type=artifacts.content_type(name), filename=name,
                        content_disposition_type="inline", headers={"X-Content-Type-Options": "nosniff"})


async def task_logs(request: Request) -> JSONResponse:
    task_id = request.path_params["task_id"]
    await existing(request.state.stores.tasks, task_id)
    after = int_query(request, "after", 0, 0, 2**62)
    limit = int_query(request, "limit", 1000, 1, 5000)
    lines = await request.state.stores.logs.read(task_id, after=after, limit=limit)
    return JSONResponse({"task_id": task_id, "lines": lines})
