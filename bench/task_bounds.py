"""Built-in task types at their parameter bounds with the worst inputs found for each: how long a run
takes, and the longest the event loop running it stood still (what a worker's heartbeats, cancels and
time limits would wait for). Runs each type's code in this process, as a worker's loop does, with a
reporter that only counts; nothing here is a test. `python -m bench.task_bounds [name-fragment …]`."""

import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.tasks import TaskType
from app.tasks.builtin import ai_summarization, batch_processing, data_processing, email_simulation, text_processing

MAX_TEXT = 1_000_000
TICK = 0.005  # seconds between the loop-lag probe's wake-ups


@dataclass
class CountingReporter:
    data_dir: Path
    task_id: str = "bench"
    smtp_url: str | None = None
    calls: int = 0
    lines: list[str] = field(default_factory=list)

    @property
    def artifacts(self) -> Path:
        return self.data_dir / "artifacts"

    async def __call__(self, progress: float, stage: str = "") -> None:
        self.calls += 1
        await asyncio.sleep(0)

    async def log(self, line: str) -> None:
        self.lines.append(line)

    def upload(self, upload_id: str) -> Any:
        raise LookupError(upload_id)


def _words(count: int) -> str:
    return " ".join(f"w{number}" for number in range(count))


TEXTS = {
    "filed: a + 60,000 ! + x": "a" + "!" * 60_000 + "x",
    "a + 1M ! + x": "a" + "!" * (MAX_TEXT - 2) + "x",
    "!x repeated (a terminator at every other character)": "!x" * (MAX_TEXT // 2),
    ". + space repeated (empty fragments)": ". " * (MAX_TEXT // 2),
    "one word of 1M letters": "a" * MAX_TEXT,
    "a. repeated (333,333 one-word sentences)": "a. " * (MAX_TEXT // 3),
    "a.a.a… (one dotted word)": "a." * (MAX_TEXT // 2),
    "a-a-a…! (one hyphenated word, then !)": "a-" * (MAX_TEXT // 2 - 1) + "a!",
    "all newlines": "\n" * MAX_TEXT,
    "newline, 1M spaces, no second newline": "\n" + " " * (MAX_TEXT - 1),
    "blank lines with spaces": "\n \n" * (MAX_TEXT // 3),
    "distinct words (130,000)": _words(130_000),
    "distinct one-word sentences": ". ".join(_words(110_000).split()),
    "!)\" runs between words": 'a!!")) ' * (MAX_TEXT // 7),
}


def cases() -> list[tuple[TaskType, str, dict[str, Any]]]:
    found: list[tuple[TaskType, str, dict[str, Any]]] = []
    for label, text in TEXTS.items():
        found.append((text_processing.text_processing, label, {"text": text}))
        found.append((ai_summarization.ai_summarization, label, {"document": text, "max_sentences": 50}))
    found += [
        (data_processing.data_processing, "1M rows, chunks of 100,000", {"rows": 1_000_000, "chunk_size": 100_000,
                                                                         "processing_time": 0}),
        (data_processing.data_processing, "1M rows, chunks of 100", {"rows": 1_000_000, "chunk_size": 100,
                                                                     "processing_time": 0}),
        # a request body holds at most 2 MiB of JSON
        (batch_processing.batch_processing, "190 strings of 10,000 characters (ß: twice as long in upper case)",
         {"data": ["ß" * 10_000] * 95 + ["a" * 10_000] * 95, "delay_per_item": 0}),
        (batch_processing.batch_processing, "10,000 strings of 190 characters",
         {"data": ["a" * 190] * 10_000, "delay_per_item": 0}),
        (batch_processing.batch_processing, "10,000 numbers of 190 digits",
         {"data": [int("9" * 190)] * 10_000, "delay_per_item": 0}),
        (batch_processing.batch_processing, "10,000 floats near the limit",
         {"data": [1.7e308] * 10_000, "delay_per_item": 0}),
        (email_simulation.email_simulation, "10,000 recipients, 200-character subject of one word",
         {"recipient_count": 10_000, "delay_per_email": 0, "subject": "é" * 200}),
        (email_simulation.email_simulation, "100 recipients, 200-character subject of one word",
         {"recipient_count": 100, "delay_per_email": 0, "subject": "é" * 200}),
        (email_simulation.email_simulation, "100 recipients, 200-character ASCII subject",
         {"recipient_count": 100, "delay_per_email": 0, "subject": "a" * 200}),
    ]
    return found


async def measure(kind: TaskType, params: dict[str, Any], data_dir: Path) -> tuple[float, float, str]:
    """Seconds the run took, the loop's longest stall, and how it ended."""
    stalls = [0.0]

    async def probe() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(TICK)
            stalls[0] = max(stalls[0], time.perf_counter() - before - TICK)

    prober = asyncio.create_task(probe())
    await asyncio.sleep(TICK * 2)
    started = time.perf_counter()
    try:
        await kind.run(kind.validate(params), CountingReporter(data_dir))
        outcome = "success"
    except Exception as exc:  # the outcome is what is measured
        outcome = f"{type(exc).__name__}: {str(exc)[:80]}"
    elapsed = time.perf_counter() - started
    prober.cancel()
    return elapsed, stalls[0], outcome


async def main(fragments: list[str]) -> None:
    print("| type | input | run (s) | longest loop stall (s) | outcome |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as data_dir:
        for kind, label, params in cases():
            if fragments and not any(fragment in f"{kind.name} {label}" for fragment in fragments):
                continue
            elapsed, stall, outcome = await measure(kind, params, Path(data_dir))
            print(f"| {kind.name} | {label} | {elapsed:.2f} | {stall:.3f} | {outcome} |", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
