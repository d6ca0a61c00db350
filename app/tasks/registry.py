"""The registry of task types, by name, and its per-deployment limits."""

from collections.abc import Mapping
from dataclasses import replace

from app.core.errors import InvalidParameters
from app.tasks.base import TaskType
from app.tasks.builtin import (
    ai_summarization,
    batch_processing,
    data_processing,
    email_simulation,
    image_processing,
    text_processing,
)

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


def configure(timeouts: Mapping[str, float], max_attempts: Mapping[str, int]) -> dict[str, TaskType]:
    """The registry with the operator's per-type time limits and attempt limits applied
    (TASK_TIMEOUTS, TASK_MAX_ATTEMPTS); a name that is no task type is refused at start-up."""
    for name in [*timeouts, *max_attempts]:
        if name not in TASK_TYPES:
            raise ValueError(f"no task type {name!r} (in TASK_TIMEOUTS or TASK_MAX_ATTEMPTS); known: {', '.join(TASK_TYPES)}")
    return {
        name: replace(kind, timeout=timeouts.get(name, kind.timeout),
                      retry=replace(kind.retry, max_attempts=max_attempts.get(name, kind.retry.max_attempts)))
        for name, kind in TASK_TYPES.items()
    }
