"""The task API — `@task` makes a task type of a function, `Reporter` is what it reports through, and
parameter types for text and uploads — with the registry of a process's types and the built-in ones."""

from app.tasks.define import TaskType, task
from app.tasks.registry import TaskTypes, configured_types, load_task_types
from app.tasks.runtime import Reporter, RetryPolicy, SyncReporter, TaskCancelled, TransientError, UploadFile
from app.tasks.schema import TaskDefinitionError
from app.tasks.types import CsvUpload, ImageUpload, Line, Text

__all__ = ["CsvUpload", "ImageUpload", "Line", "Reporter", "RetryPolicy", "SyncReporter", "TaskCancelled",
           "TaskDefinitionError", "TaskType", "TaskTypes", "Text", "TransientError", "UploadFile", "configured_types",
           "load_task_types", "task"]
