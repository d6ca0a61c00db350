"""The task API (what a task type is, its parameters, what it reports through), the registry, and the built-in types."""

from app.tasks.registry import TASK_TYPES, configure, get_task_type

__all__ = ["TASK_TYPES", "configure", "get_task_type"]
