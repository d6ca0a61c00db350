"""The task types a process serves: the built-in ones (unless BUILTIN_TASKS=false) and those of the
modules in TASK_MODULES, each imported at start; a module that cannot be imported, a type defined
twice or a parameter that cannot be described refuses the start with a message naming it."""

import importlib
import logging
from collections.abc import Iterator, Mapping, Sequence

from app.core.errors import InvalidParameters
from app.core.validation import shown
from app.settings import Settings
from app.tasks.define import TaskType, types_in
from app.tasks.schema import TaskDefinitionError, camel, upload_fields

log = logging.getLogger(__name__)

BUILTIN_MODULES = tuple(f"app.tasks.builtin.{name}" for name in (
    "data_processing", "email_simulation", "image_processing", "text_processing", "ai_summarization",
    "batch_processing"))


class TaskTypes(Mapping[str, TaskType]):
    """The registry of one process, by name, in the order the modules define the types."""

    def __init__(self, types: Mapping[str, TaskType]) -> None:
        self._types = dict(types)

    def __getitem__(self, name: str) -> TaskType:
        return self._types[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def known(self) -> str:
        return ", ".join(self._types) or "none (TASK_MODULES is empty and BUILTIN_TASKS=false)"

    def upload_fields(self) -> dict[str, list[str]]:
        """Each type that takes uploads, and the names of its parameters that hold upload ids."""
        return {name: list(fields) for name, kind in self._types.items() if (fields := upload_fields(kind.parameters))}

    def named(self, name: object) -> TaskType:
        """The task type called `name`; InvalidParameters naming the known ones otherwise."""
        if isinstance(name, str) and name in self._types:
            return self._types[name]
        raise InvalidParameters("task_type", f"unknown task type {shown(name)}; known: {self.known()}")


def module_types(module_name: str) -> list[TaskType]:
    """The task types a module defines (its attributes that `@task` made), in definition order."""
    try:
        module = importlib.import_module(module_name)
    except TaskDefinitionError as exc:
        raise TaskDefinitionError(f"TASK_MODULES: {module_name}: {exc}") from None
    except Exception as exc:
        raise TaskDefinitionError(f"TASK_MODULES: cannot import {module_name!r}: {exc.__class__.__name__}: "
                                  f"{exc}") from exc
    found = types_in(module)
    if not found:
        raise TaskDefinitionError(f"TASK_MODULES: {module_name!r} defines no task type (decorate a function with "
                                  "`@task` from app.tasks)")
    return found


def load_task_types(modules: Sequence[str] = (), *, builtin: bool = True, timeouts: Mapping[str, float] | None = None,
                    max_attempts: Mapping[str, int] | None = None) -> TaskTypes:
    """The registry, with the operator's per-type limits applied (TASK_TIMEOUTS, TASK_MAX_ATTEMPTS)."""
    types: dict[str, TaskType] = {}
    stems: dict[str, str] = {}
    for module_name in [*(BUILTIN_MODULES if builtin else ()), *modules]:
        for kind in module_types(module_name):
            if (earlier := types.get(kind.name)) is not None and earlier is not kind:
                raise TaskDefinitionError(f"task type {kind.name!r} is defined twice: in {earlier.module} and in "
                                          f"{kind.module}; give one of them another name (`@task(name=…)`)")
            if (other := stems.setdefault(camel(kind.name), kind.name)) != kind.name:
                raise TaskDefinitionError(f"task types {other!r} and {kind.name!r} differ only in case or "
                                          "underscores: their API schemas would share one name")
            types[kind.name] = kind
    timeouts, max_attempts = timeouts or {}, max_attempts or {}
    for name in [*timeouts, *max_attempts]:
        if name not in types:
            raise ValueError(f"no task type {name!r} (in TASK_TIMEOUTS or TASK_MAX_ATTEMPTS); known: "
                             f"{', '.join(types)}")
    return TaskTypes({name: kind.limited(timeouts.get(name), max_attempts.get(name)) for name, kind in types.items()})


def configured_types(settings: Settings) -> TaskTypes:
    """The registry a process serves by its settings (TASK_MODULES, BUILTIN_TASKS, TASK_TIMEOUTS,
    TASK_MAX_ATTEMPTS); its types logged, as the process starts."""
    types = load_task_types(settings.task_modules, builtin=settings.builtin_tasks, timeouts=settings.task_timeouts,
                            max_attempts=settings.task_max_attempts)
    log.info("serving task types %s%s", types.known(),
             f" (TASK_MODULES: {', '.join(settings.task_modules)})" if settings.task_modules else "")
    return types
