"""The registry of task types, by name."""

from app.errors import InvalidParameters
from app.tasks import (
    ai_summarization,
    batch_processing,
    data_processing,
    email_simulation,
    image_processing,
    text_processing,
)
from app.tasks.base import TaskType

TASK_TYPES: dict[str, TaskType] = {
    module.TASK_TYPE.name: module.TASK_TYPE
    for module in (data_processing, email_simulation, image_processing, text_processing, ai_summarization,
                   batch_processing)
}


def get_task_type(name: object) -> TaskType:
    """The task type called `name`; InvalidParameters naming the known ones otherwise."""
    if isinstance(name, str) and name in TASK_TYPES:
        return TASK_TYPES[name]
    shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
    raise InvalidParameters("task_type", f"unknown task type {shown}; known: {', '.join(TASK_TYPES)}")
