"""`GET /api/tasks/{id}/webhooks`: a task's webhook deliveries, each with its status and every attempt."""

from starlette.requests import Request

from app.lifecycle.lookup import existing
from app.web.responses import JSONResponse
from app.webhooks.hooks import shown_url


async def task_webhooks(request: Request) -> JSONResponse:
    task_id = request.path_params["task_id"]
    await existing(request.state.stores.tasks, task_id)
    deliveries = await request.state.stores.webhooks.for_task(task_id)
    for delivery in deliveries:
        delivery["url"] = shown_url(delivery["hook"], delivery["url"])
    return JSONResponse({"task_id": task_id, "deliveries": deliveries})
