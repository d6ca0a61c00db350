"""`@task`: a function becomes a task type. Its name is the type's name (or `name=`), its docstring
the description (or `description=`), its parameters after the reporter the schema (app/tasks/schema.py);
`timeout`, `max_attempts` (or a whole `retry` policy) and `executor` are the type's run options."""

import importlib
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Literal, overload

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python

from app.core.wire import dumps
from app.store.tables import TYPE_NAME_MAX
from app.tasks import schema
from app.tasks.executors import in_process, in_thread
from app.tasks.runtime import Reporter, RetryPolicy, SyncReporter
from app.tasks.schema import TaskDefinitionError

Executor = Literal["async", "thread", "process"]


@dataclass(frozen=True)
class TaskType:
    name: str
    description: str
    function: Callable[..., Any]
    parameters: type[BaseModel]
    takes_model: bool = False  # the function takes one pydantic model, not its fields one by one
    timeout: float = 600.0  # seconds one attempt may take before it is stopped and failed
    retry: RetryPolicy = RetryPolicy()
    executor: Executor = "async"  # async: on the worker's loop; thread; process: a child process per attempt

    @property
    def module(self) -> str:
        return str(self.function.__module__)

    def validate(self, raw: object) -> dict[str, Any]:
        """Submitted parameters as stored: JSON values, defaults filled in; InvalidParameters naming the field."""
        return schema.validate(self.parameters, raw)

    def validate_many(self, raws: list[object]) -> list[dict[str, Any]] | None:
        """`validate` for many at once; None if any is invalid (then `validate` each, to name the field)."""
        return schema.validate_many(self.parameters, raws)

    def arguments(self, params: dict[str, Any]) -> dict[str, Any]:
        """The function's keyword arguments from stored parameters (typed again: a `datetime` is one)."""
        model = self.parameters.model_validate_json(dumps(params))
        if self.takes_model:  # the one parameter after the reporter takes the model itself
            return {list(inspect.signature(self.function).parameters)[1]: model}
        return {name: getattr(model, name) for name in self.parameters.model_fields}

    async def run(self, params: dict[str, Any], report: Reporter) -> dict[str, Any]:
        """One attempt: the function called as its executor says, its result as a JSON object."""
        if self.executor == "process":  # the child finds this type again by its module and name
            outcome = await in_process(run_in_child, (self.module, self.name, params), report)
        elif self.executor == "thread":
            outcome = await in_thread(self.function, report, self.arguments(params))
        else:
            outcome = await self.function(report, **self.arguments(params))
        return result_object(self.name, outcome)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "timeout": self.timeout,
                "max_attempts": self.retry.max_attempts, "executor": self.executor, "module": self.module,
                "parameters": schema.describe(self.parameters), "schema": self.parameters.model_json_schema()}

    def limited(self, timeout: float | None, max_attempts: int | None) -> "TaskType":
        """This type with an operator's limits (TASK_TIMEOUTS, TASK_MAX_ATTEMPTS) in place of its own."""
        retry = self.retry if max_attempts is None else replace(self.retry, max_attempts=max_attempts)
        return replace(self, timeout=self.timeout if timeout is None else timeout, retry=retry)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The function itself, as written: a task type stays callable (in the author's own tests)."""
        return self.function(*args, **kwargs)


def types_in(module: ModuleType) -> list[TaskType]:
    """The task types a module defines (its attributes that `@task` made), in definition order."""
    return list({id(value): value for value in vars(module).values() if isinstance(value, TaskType)}.values())


def run_in_child(report: SyncReporter, module: str, name: str, params: dict[str, Any]) -> Any:
    """A process task's function called, in its child process, as in the worker: with its arguments
    typed by its schema."""
    kind = next((kind for kind in types_in(importlib.import_module(module)) if kind.name == name), None)
    if kind is None:
        raise LookupError(f"module {module} defines no task type {name!r} in the task's process")
    return kind.function(report, **kind.arguments(params))


def result_object(name: str, outcome: object) -> dict[str, Any]:
    """A task's return value as its `result_data` (a JSON object): a dict or a pydantic model (values
    pydantic can give as JSON: a datetime, a Path, a dataclass …), or None. Anything else fails the
    attempt here, with a message naming what, rather than when the result is stored (a large one is
    stored as a file: store/artifacts.py kept_result)."""
    if outcome is None:
        return {}
    if not isinstance(outcome, dict | BaseModel):
        raise TypeError(f"task {name} returned {type(outcome).__name__}; return a dict (a JSON object), a pydantic "
                        "model or None")
    try:
        result = to_jsonable_python(outcome, by_alias=True)
    except PydanticSerializationError as exc:
        raise TypeError(f"task {name} returned a value that is not JSON: {exc}") from None
    try:
        json.dumps(result, allow_nan=False)
    except ValueError as exc:  # NaN or an infinity; or an integer longer than Python writes (int_max_str_digits)
        what = (f"an integer of more than {sys.get_int_max_str_digits()} digits, too long to write as JSON"
                if "digits" in str(exc) else "NaN or an infinity, which JSON cannot hold")
        raise TypeError(f"task {name} returned {what}") from None
    return result  # type: ignore[no-any-return]


@overload
def task(function: Callable[..., Any], /) -> TaskType: ...


@overload
def task(*, name: str | None = None, description: str | None = None, timeout: float = 600.0,
         max_attempts: int | None = None, retry: RetryPolicy | None = None,
         executor: Executor | None = None) -> Callable[[Callable[..., Any]], TaskType]: ...


def task(function: Callable[..., Any] | None = None, /, *, name: str | None = None, description: str | None = None,
         timeout: float = 600.0, max_attempts: int | None = None, retry: RetryPolicy | None = None,
         executor: Executor | None = None) -> TaskType | Callable[[Callable[..., Any]], TaskType]:
    """Make a task type of a function: `@task` or `@task(description=…, timeout=…, max_attempts=…)`
    (3 attempts unless said; `retry=RetryPolicy(…)` sets the backoff too, its own max_attempts included).

    An `async def` runs on the worker's event loop and must await between steps (`await report(…)`);
    a plain `def` runs in a thread (`executor="thread"`, the default for it) or, for CPU-heavy work,
    in a child process of its own (`executor="process"`: killed at once on cancel or time limit)."""

    def make(fn: Callable[..., Any]) -> TaskType:
        type_name = name or fn.__name__
        where = f"{fn.__module__}.{fn.__qualname__}"
        if not type_name.isidentifier() or len(type_name) > TYPE_NAME_MAX:
            raise TaskDefinitionError(f"{where}: the type's name {type_name!r} must be an identifier of at most "
                                      f"{TYPE_NAME_MAX} characters")
        is_async = inspect.iscoroutinefunction(fn)
        chosen = executor or ("async" if is_async else "thread")
        if is_async != (chosen == "async"):
            raise TaskDefinitionError(f"{where}: executor={chosen!r} runs a plain function (`def`); an `async def` "
                                      "runs on the worker's loop (leave executor out)" if is_async else
                                      f"{where}: a plain function (`def`) runs in a thread or a process, not on "
                                      "the loop: leave executor out, or say 'thread' or 'process'")
        if chosen == "process" and ("<locals>" in fn.__qualname__ or fn.__module__ == "__main__"):
            raise TaskDefinitionError(f"{where}: executor='process' needs a function its child process can "
                                      "import: define it at the top of an importable module")
        if retry is not None and max_attempts is not None:
            raise TaskDefinitionError(f"{where}: give max_attempts= or retry=RetryPolicy(max_attempts=…), not both")
        policy = retry if retry is not None else RetryPolicy(max_attempts=3 if max_attempts is None else max_attempts)
        if timeout <= 0 or policy.max_attempts < 1:
            raise TaskDefinitionError(f"{where}: timeout must be positive and max_attempts at least 1")
        model, takes_model = schema.parameters_model(fn, type_name)
        text = description if description is not None else inspect.cleandoc(fn.__doc__ or "").split("\n\n")[0]
        return TaskType(name=type_name, description=" ".join(text.split()), function=fn, parameters=model,
                        takes_model=takes_model, timeout=float(timeout), retry=policy, executor=chosen)

    return make(function) if function is not None else make
