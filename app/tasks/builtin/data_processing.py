"""The `data_processing` task: analyses a CSV, generated from a seed or uploaded, chunk by chunk."""

import asyncio
import csv
import io
import itertools
import random
import time
from collections.abc import Awaitable, Iterator
from functools import partial
from typing import Annotated, Any

from pydantic import Field

from app.tasks import CsvUpload, Reporter, task
from app.tasks.builtin.csvstats import CsvStats, FileLines
from app.tasks.builtin.pacing import Pace, in_thread

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


# Progress: reading the rows is this share of the work; the statistics (sorting each numeric column for
# its quantiles) the rest, column by column. Measured on 1,000,000 rows: the statistics take 7 % of a
# generated run and a quarter of an uploaded one, whose reading is cheaper; a small file's take nothing.
READING = 90.0


async def read_all(stats: CsvStats, lines: GeneratedLines | FileLines, chunk_size: int, pace: Pace,
                   report: Reporter) -> int:
    """Reads every chunk, reporting as the rows are read and paced; returns the number of chunks."""
    chunks = 0
    while True:
        stage = f"reading chunk {chunks + 1}"

        def reading(share: float) -> Awaitable[None]:
            return report(READING * share, stage)

        def read_so_far() -> Awaitable[None]:
            return reading(pace.shown(lines.fraction))

        await read_so_far()
        first = stats.rows + 1
        try:
            count = await in_thread(partial(stats.read_chunk, chunk_size), read_so_far)
        except ValueError:
            await report(READING * lines.fraction, "malformed data")  # where the reading stopped, unpaced
            raise
        chunks += 1 if count else 0
        if count and worth_logging(chunks):
            await report.log(f"chunk {chunks}: rows {first}-{stats.rows}")
        for note in stats.take_notes():
            await report.log(note)
        await pace.wait(lines.fraction, reading)
        if not count:
            return chunks


async def column_summaries(stats: CsvStats, report: Reporter) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for number, column in enumerate(stats.columns):
        await report(READING + (100 - READING) * number / len(stats.columns), f"statistics of {column.name!r}")
        columns[column.name] = await asyncio.to_thread(column.summary)
    return columns


async def analyse(lines: GeneratedLines | FileLines, chunk_size: int, pace_seconds: float,
                  report: Reporter) -> dict[str, Any]:
    start = time.monotonic()
    # processing_time is a minimum pace of the reading: the analysis's own time counts towards it
    pace = Pace(pace_seconds)
    stats = await asyncio.to_thread(CsvStats, lines, report.limits.csv_max_columns)
    await report.log(f"{stats.width} columns: {', '.join(column.name for column in stats.columns)}")
    if skipped := stats.width - len(stats.columns):
        await report.log(f"statistics of the first {len(stats.columns)} columns (CSV_MAX_COLUMNS); {skipped} more "
                         "not analysed")
    chunks = await read_all(stats, lines, chunk_size, pace, report)
    if names := stats.pending_reread():
        await report(READING, "re-reading the first rows of columns that turned categorical")
        await report.log(f"re-reading the rows before column(s) {', '.join(names)} turned categorical")
        await asyncio.to_thread(stats.reread)
    summary = stats.summary(await column_summaries(stats, report))
    kinds = ", ".join(f"{name} ({column['kind']})" for name, column in summary["columns"].items())
    await report.log(f"analysed {stats.rows} rows in {chunks} chunks: {kinds}")
    return {**summary, "chunks": chunks, "chunk_size": chunk_size,
            "elapsed_seconds": round(time.monotonic() - start, 3)}


@task(timeout=1800.0)
async def data_processing(
    report: Reporter,
    rows: Annotated[int, Field(ge=1, le=1_000_000, description="Rows of data to generate and analyse (unused with "
                                                               "an upload).")] = 1000,
    processing_time: Annotated[float, Field(ge=0.0, le=600.0, description="Minimum seconds the run takes (paces "
                                                                          "the chunks).")] = 2.0,
    seed: Annotated[int, Field(ge=0, le=2**31 - 1, description="Seed of the generated data (unused with an "
                                                               "upload).")] = 42,
    chunk_size: Annotated[int, Field(ge=100, le=100_000, description="Rows analysed per chunk.")] = 1000,
    upload: Annotated[list[CsvUpload], Field(max_length=1, description="An uploaded CSV file (UTF-8, header row "
                                                                       "first) to analyse instead of generated "
                                                                       "data.")] = [],
) -> dict[str, Any]:
    """Analyses a CSV, generated from a seed or uploaded, streaming it in chunks: per-column count,
    missing, mean, std, min, max and quantiles, or the top categories."""
    if not upload:
        lines = GeneratedLines(rows, seed, chunk_size)
        result = await analyse(lines, chunk_size, processing_time, report)
        await report(100, "done")
        return {"source": "generated", "seed": seed, **result}
    file = report.upload(upload[0])
    try:
        result = await analyse(FileLines(file.path), chunk_size, processing_time, report)
    except ValueError as exc:
        raise ValueError(f"upload {file.filename!r}, {exc}") from None
    await report(100, "done")
    return {"source": "upload", "file": file.filename, "upload_id": file.id, "bytes": file.size, **result}
