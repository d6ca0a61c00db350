"""What every task type provides, and what it is handed while it runs."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.params import Param


class TaskCancelled(Exception):
    """Raised by the reporter when the user asked to cancel; task code lets it propagate."""


class Reporter(Protocol):
    task_id: str
    data_dir: Path  # shared data directory (var/ by default); e.g. the e-mail maildir lives under it

    async def __call__(self, progress: float, stage: str = "") -> None:
        """Record progress (0..100) and a short stage message; raises TaskCancelled on a cancel."""


Run = Callable[[dict[str, Any], Reporter], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class TaskType:
    name: str
    description: str
    params: Mapping[str, Param]
    run: Run
    timeout: float = 600.0  # seconds one attempt may take before it is stopped and failed

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "timeout": self.timeout,
            "parameters": {name: p.describe() for name, p in self.params.items()},
        }
