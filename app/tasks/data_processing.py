"""The `data_processing` task: generates a CSV from a seed and analyses it chunk by chunk."""

import asyncio
import csv
import io
import math
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from app.params import Float, Int
from app.tasks.base import Reporter, TaskType

HEADER = ("id", "amount", "quantity", "category", "region", "score")
NUMERIC = {"id": int, "amount": float, "quantity": int, "score": float}
CATEGORICAL = ("category", "region")
CATEGORIES = ("electronics", "books", "clothing", "garden", "toys", "groceries")
REGIONS = ("north", "south", "east", "west")
TOP = 5


def _row(rng: random.Random, row_id: int) -> list[object]:
    amount = "" if rng.random() < 0.05 else round(rng.lognormvariate(3, 1), 2)
    quantity = "" if rng.random() < 0.03 else rng.randint(1, 100)
    category = "" if rng.random() < 0.04 else rng.choices(CATEGORIES, weights=(5, 4, 3, 2, 2, 1))[0]
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


class NumericColumn:
    """Running count, mean and variance (Welford: stable in one pass), min and max."""

    def __init__(self) -> None:
        self.count = self.missing = 0
        self.mean = self.m2 = 0.0
        self.low = self.high = math.nan

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        self.low = value if self.count == 1 else min(self.low, value)
        self.high = value if self.count == 1 else max(self.high, value)

    def summary(self) -> dict[str, Any]:
        seen = self.count > 0
        return {"count": self.count, "missing": self.missing, "mean": self.mean if seen else None,
                "std": math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else None,
                "min": self.low if seen else None, "max": self.high if seen else None}


class CsvStats:
    """Per-column statistics of CSV text fed in chunks of whole rows, the header first."""

    def __init__(self) -> None:
        self.rows = self.chunks = self.lines = 0
        self.numeric = {name: NumericColumn() for name in NUMERIC}
        self.categorical: dict[str, Counter[str]] = {name: Counter() for name in CATEGORICAL}
        self.missing = dict.fromkeys(CATEGORICAL, 0)

    def feed(self, text: str) -> None:
        reader = csv.reader(io.StringIO(text))
        for row in reader:
            line = self.lines + reader.line_num
            if line == 1:
                if tuple(row) != HEADER:
                    raise ValueError(f"line 1: expected the header {','.join(HEADER)}")
                continue
            self._add_row(line, row)
        self.lines += reader.line_num
        self.chunks += 1

    def _add_row(self, line: int, row: list[str]) -> None:
        if len(row) != len(HEADER):
            raise ValueError(f"line {line}: expected {len(HEADER)} fields, got {len(row)}")
        for name, text in zip(HEADER, row):
            if name in NUMERIC:
                self._add_number(line, name, text)
            elif text:
                self.categorical[name][text] += 1
            else:
                self.missing[name] += 1
        self.rows += 1

    def _add_number(self, line: int, name: str, text: str) -> None:
        column = self.numeric[name]
        if not text:
            column.missing += 1
            return
        try:
            value = NUMERIC[name](text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(f"line {line}: column {name!r} is not a finite number: {text!r}")
        column.add(value)

    def summary(self) -> dict[str, Any]:
        columns: dict[str, Any] = {name: {"kind": "numeric", **column.summary()}
                                   for name, column in self.numeric.items()}
        for name, counts in self.categorical.items():
            top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP]
            columns[name] = {"kind": "categorical", "count": counts.total(), "missing": self.missing[name],
                             "distinct": len(counts), "top": [{"value": v, "count": c} for v, c in top]}
        return {"rows": self.rows, "chunks": self.chunks, "columns": columns}


async def run(params: dict[str, Any], report: Reporter) -> dict[str, Any]:
    rows, chunk_size, pace = params["rows"], params["chunk_size"], params["processing_time"]
    total_chunks = math.ceil(rows / chunk_size)
    chunks = generate_chunks(rows, params["seed"], chunk_size)
    stats = CsvStats()
    size = 0
    start = time.monotonic()
    for done in range(total_chunks):
        await report(100 * done / total_chunks, f"chunk {done + 1}/{total_chunks}")
        text = await asyncio.to_thread(next, chunks)
        await asyncio.to_thread(stats.feed, text)
        size += len(text)
        # processing_time is a minimum pace: sleep only what the analysis has not already taken
        await asyncio.sleep(max(0.0, start + pace * (done + 1) / total_chunks - time.monotonic()))
    await report(100, "done")
    return {**stats.summary(), "seed": params["seed"], "chunk_size": chunk_size, "csv_chars": size,
            "std_kind": "sample (n-1)", "elapsed_seconds": round(time.monotonic() - start, 3)}


TASK_TYPE = TaskType(
    name="data_processing",
    description="Generates a CSV from a seed and computes per-column statistics, streaming it in chunks.",
    params={
        "rows": Int(1000, minimum=1, maximum=1_000_000, description="Rows of data to generate and analyse."),
        "processing_time": Float(2.0, minimum=0.0, maximum=600.0,
                                 description="Minimum seconds the run takes (paces the chunks)."),
        "seed": Int(42, minimum=0, maximum=2**31 - 1, description="Seed of the generated data."),
        "chunk_size": Int(1000, minimum=100, maximum=100_000, description="Rows analysed per chunk."),
    },
    run=run,
    timeout=1800.0,
)
