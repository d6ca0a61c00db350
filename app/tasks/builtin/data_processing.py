"""The `data_processing` task: analyses a CSV, generated from a seed or uploaded, chunk by chunk."""

import asyncio
import csv
import io
import itertools
import random
import time
from collections.abc import Iterator
from typing import Any

from app.tasks.base import Reporter, TaskType
from app.tasks.builtin.csvstats import CsvStats, FileLines
from app.tasks.params import Float, Int, Uploads

HEADER = ("id", "amount", "quantity", "category", "region", "score")
CATEGORIES = ("electronics", "books", "clothing", "garden", "toys", "groceries")
# cumulative weights: choices() would otherwise add them up again for every row
CATEGORY_WEIGHTS = tuple(itertools.accumulate((5, 4, 3, 2, 2, 1)))
REGIONS = ("north", "south", "east", "west")


def _row(rng: random.Random, row_id: int) -> list[object]:
    amount = "" if rng.random() < 0.05 else round(rng.lognormvariate(3, 1), 2)
    quantity = "" if rng.random() < 0.03 else rng.randint(1, 100)
    category = "" if rng.random() < 0.04 else rng.choices(CATEGORIES, cum_weights=CATEGORY_WEIGHTS)[0]
    return [row_id, amount, quantity, category, rng.choice(REGIONS), round(rng.gauss(50, 15), 3)]


def generate_chunks(rows: int, seed: int, chunk_size: int) -> Iterator[str]:
    """The CSV as text chunks of whole rows, the header first; the same text for any chunk size."""
    rng = random.Random(seed)
    for first in range(0, rows, chunk_size):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if first == 0:
            writer.writerow(HEADER)
        writer.writerows(_row(rng, row_id) for row_id in range(first + 1, min(first + chunk_size, rows) + 1))
        yield buffer.getvalue()


def generate_csv(rows: int, seed: int) -> str:
    return "".join(generate_chunks(rows, seed, chunk_size=10_000))


class GeneratedLines:
    """The generated CSV's lines, re-readable, counting the lines read."""

    def __init__(self, rows: int, seed: int, chunk_size: int) -> None:
        self.rows, self.seed, self.chunk_size = rows, seed, chunk_size
        self.lines_read = 0

    def __iter__(self) -> Iterator[str]:
        for chunk in generate_chunks(self.rows, self.seed, self.chunk_size):
            for line in chunk.splitlines(keepends=True):
                self.lines_read += 1
                yield line

    @property
    def fraction(self) -> float:
        # a second pass (see CsvStats.reread) counts on, so cap at the whole text
        return min(1.0, self.lines_read / (self.rows + 1))


def worth_logging(chunk: int) -> bool:
    """Chunks 1-10, then every 10th up to 100, every 100th up to 1000…: a few log lines per decade."""
    return chunk % 10 ** (len(str(chunk)) - 1) == 0


async def read_all(stats: CsvStats, lines: GeneratedLines | FileLines, params: dict[str, Any],
                   report: Reporter) -> int:
    """Reads every chunk, reporting and pacing; returns the number of chunks."""
    pace, chunks = params["processing_time"], 0
    start = time.monotonic()
    while True:
        await report(100 * lines.fraction, f"reading chunk {chunks + 1}")
        first = stats.rows + 1
        count = await asyncio.to_thread(stats.read_chunk, params["chunk_size"])
        chunks += 1 if count else 0
        if count and worth_logging(chunks):
            await report.log(f"chunk {chunks}: rows {first}-{stats.rows}")
        for note in stats.take_notes():
            await report.log(note)
        # processing_time is a minimum pace: sleep only what the analysis has not already taken
        await asyncio.sleep(max(0.0, start + pace * lines.fraction - time.monotonic()))
        if not count:
            return chunks


async def analyse(lines: GeneratedLines | FileLines, params: dict[str, Any], report: Reporter) -> dict[str, Any]:
    start = time.monotonic()
    stats = await asyncio.to_thread(CsvStats, lines)
    await report.log(f"{len(stats.columns)} columns: {', '.join(column.name for column in stats.columns)}")
    chunks = await read_all(stats, lines, params, report)
    if names := stats.pending_reread():
        await report(100 * lines.fraction, "re-reading the first rows of columns that turned categorical")
        await report.log(f"re-reading the rows before column(s) {', '.join(names)} turned categorical")
        await asyncio.to_thread(stats.reread)
    await report(100 * lines.fraction, "computing statistics")
    summary = await asyncio.to_thread(stats.summary)
    kinds = ", ".join(f"{name} ({column['kind']})" for name, column in summary["columns"].items())
    await report.log(f"analysed {stats.rows} rows in {chunks} chunks: {kinds}")
    return {**summary, "chunks": chunks, "chunk_size": params["chunk_size"],
            "elapsed_seconds": round(time.monotonic() - start, 3)}


async def run(params: dict[str, Any], report: Reporter) -> dict[str, Any]:
    if not params["upload"]:
        lines = GeneratedLines(params["rows"], params["seed"], params["chunk_size"])
        result = await analyse(lines, params, report)
        await report(100, "done")
        return {"source": "generated", "seed": params["seed"], **result}
    upload = report.upload(params["upload"][0])
    try:
        result = await analyse(FileLines(upload.path), params, report)
    except ValueError as exc:
        raise ValueError(f"upload {upload.filename!r}, {exc}") from None
    await report(100, "done")
    return {"source": "upload", "file": upload.filename, "upload_id": upload.id, "bytes": upload.size, **result}


TASK_TYPE = TaskType(
    name="data_processing",
    description="Analyses a CSV, generated from a seed or uploaded, streaming it in chunks: per-column "
                "count, missing, mean, std, min, max and quantiles, or the top categories.",
    params={
        "rows": Int(1000, minimum=1, maximum=1_000_000,
                    description="Rows of data to generate and analyse (unused with an upload)."),
        "processing_time": Float(2.0, minimum=0.0, maximum=600.0,
                                 description="Minimum seconds the run takes (paces the chunks)."),
        "seed": Int(42, minimum=0, maximum=2**31 - 1,
                    description="Seed of the generated data (unused with an upload)."),
        "chunk_size": Int(1000, minimum=100, maximum=100_000, description="Rows analysed per chunk."),
        "upload": Uploads((), kind="csv", max_items=1,
                          description="An uploaded CSV file (UTF-8, header row first) to analyse instead of "
                                      "generated data."),
    },
    run=run,
    timeout=1800.0,
)
