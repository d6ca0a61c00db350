"""A task by id, for a request about it: NotFound (404) when there is none."""

from app.core.errors import NotFound
from app.core.logs import name_task
from app.core.wire import TaskDict
from app.store.tasks import TaskStore


async def existing(store: TaskStore, task_id: str) -> TaskDict:
    # Every request about one task (its routes take `task_id`) looks it up here first, so its log
    # lines name the task.
    name_task(task_id)
    task = await store.get(task_id)
    if task is None:
        raise NotFound(f"task {task_id!r} not found")
    return task
