"""REST handler for a task's webhook deliveries: each with its status and every attempt."""

from starlette.requests import Request
from starlette.responses import JSONResponse

from app.webhook_store import WebhookStore


async def task_webhooks(request: Request) -> JSONResponse:
    task_id = request.path_params["task_id"]
    await request.state.lifecycle.get(task_id)  # 404 for an unknown task
    deliveries = await WebhookStore(request.state.store).for_task(task_id)
    return JSONResponse({"task_id": task_id, "deliveries": deliveries})
