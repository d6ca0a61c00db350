"""Streaming per-column statistics of a CSV: kinds inferred, exact quantiles, errors naming the line."""

import csv
import heapq
import io
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

QUANTILES = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
TOP = 5
BLOCK = 1 << 20  # bytes of a file read and decoded at once
DEFINITIONS = {
    "missing": "a field that is empty or only whitespace",
    "numeric": "every non-missing value of the column parses as a finite number; otherwise it is categorical",
    "std": "sample standard deviation (n - 1)",
    "quantiles": "exact, linear interpolation between closest ranks, as statistics.quantiles(method='inclusive')",
    "top": "the 5 most frequent values, ties in value order; values compared without surrounding whitespace",
}


class FileLines:
    """The lines of a UTF-8 file (a leading BOM allowed), re-readable, counting the bytes consumed.

    Read and decoded a block at a time: per-line decoding would cost as much as the CSV parsing. The
    bytes consumed advance line by line, as the parser takes them, not a block ahead: a file smaller
    than a block would otherwise count as read before its first row.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.consumed = 0.0  # bytes of the lines handed out; within a block, prorated by characters

    def __iter__(self) -> Iterator[str]:
        line, rest = 1, b""
        with self.path.open("rb") as file:
            while block := file.read(BLOCK):
                block = rest + block
                cut = block.rfind(b"\n") + 1  # a UTF-8 character never spans a line break
                rest = block[cut:]
                yield from self._counted(block[:cut], line)
                line += block.count(b"\n", 0, cut)
        yield from self._counted(rest, line)

    def _counted(self, data: bytes, first_line: int) -> Iterator[str]:
        text = _decoded(data, first_line)
        before, per_char = self.consumed, len(data) / len(text) if text else 0.0
        chars = 0
        # only "\n" ends a line, as csv counts them: str.splitlines would also split at \x0c or \u2028
        for text_line in io.StringIO(text, newline="\n"):
            chars += len(text_line)
            self.consumed = before + chars * per_char
            yield text_line
        self.consumed = before + len(data)

    @property
    def fraction(self) -> float:
        # a second pass (see CsvStats.reread) counts on, so cap at the whole file
        return min(1.0, self.consumed / self.size) if self.size else 1.0


def _decoded(data: bytes, first_line: int) -> str:
    try:
        return data.decode("utf-8-sig" if first_line == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ValueError(f"line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column})") from None


class Column:
    """One column: its numbers in a compact array while every value parses, else its values counted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.missing = 0
        self.numbers: array[float] | None = array("d")
        self.texts: Counter[str] = Counter()
        self.reread = 0  # rows read while the column looked numeric, whose values a second pass counts

    def add(self, fields: Sequence[str], rows_before: int) -> str | None:
        """Adds one chunk's fields; returns the value that made a column holding numbers categorical."""
        present = [value for value in map(str.strip, fields) if value]
        self.missing += len(fields) - len(present)
        if self.numbers is None:
            self.texts.update(present)
            return None
        numbers = _numbers(present)
        if numbers is not None:
            self.numbers.extend(numbers)
            return None
        self.texts.update(present)
        had_numbers, self.numbers = bool(self.numbers), None
        if not had_numbers:
            return None
        self.reread = rows_before
        return next(value for value in present if _numbers([value]) is None)

    def summary(self) -> dict[str, Any]:
        if self.numbers is None:
            top = heapq.nsmallest(TOP, self.texts.items(), key=lambda item: (-item[1], item[0]))
            return {"kind": "categorical", "count": self.texts.total(), "missing": self.missing,
                    "distinct": len(self.texts), "top": [{"value": v, "count": c} for v, c in top]}
        return {"kind": "numeric", "count": len(self.numbers), "missing": self.missing,
                **numeric_summary(sorted(self.numbers))}


def _numbers(values: list[str]) -> "array[float] | None":
    try:
        numbers = array("d", map(float, values))
    except ValueError:
        return None
    return numbers if all(map(math.isfinite, numbers)) else None


def numeric_summary(ordered: list[float]) -> dict[str, Any]:
    """Mean, sample std, min, max and quantiles of sorted values; a mean or std beyond float range is None."""
    count = len(ordered)
    if not count:
        return dict.fromkeys(("mean", "std", "min", "max", "quantiles"))
    try:
        mean = math.fsum(ordered) / count
    except OverflowError:  # values near the float limit: their sum does not fit, and neither do mean and std
        mean = math.inf
    # math.dist is the root of the summed squared deviations, computed in C and scaled against overflow
    std = math.dist(ordered, [mean] * count) / math.sqrt(count - 1) if count > 1 else None
    return {"mean": _finite(mean), "std": _finite(std), "min": ordered[0], "max": ordered[-1],
            "quantiles": {name: quantile(ordered, p) for name, p in QUANTILES.items()}}


def quantile(ordered: Sequence[float], p: float) -> float:
    """The value at rank p * (n - 1) of the sorted values, interpolated linearly between neighbours."""
    position = p * (len(ordered) - 1)
    low = math.floor(position)
    fraction = position - low
    if fraction == 0:
        return ordered[low]
    # weighted, rather than low + fraction * (high - low): that difference can overflow near the float limit
    return ordered[low] * (1 - fraction) + ordered[low + 1] * fraction


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _column_names(header: list[str]) -> list[str]:
    names = [name.strip() or f"column_{number}" for number, name in enumerate(header, 1)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"line 1: the column name {name!r} appears twice in the header")
        seen.add(name)
    return names


class CsvStats:
    """Statistics of CSV lines read a chunk of rows at a time; the first row names the columns.

    Strict parsing: an unclosed quote or a stray character after a closing quote is an error, as is a
    row whose field count differs from the header's. Blank lines are skipped and counted.
    """

    def __init__(self, lines: Iterable[str], max_columns: int) -> None:
        self._lines = lines
        self._reader = csv.reader(iter(lines), strict=True)
        self.rows = self.blank_lines = 0
        self.notes: list[str] = []  # for the task's log: columns that turned categorical midway
        try:
            header = next(self._reader, None)
        except csv.Error as exc:
            raise ValueError(f"line 1: {exc}") from None
        if not header:
            raise ValueError("line 1: no header; the first line must name the columns")
        names = _column_names(header)
        self.width = len(names)
        # statistics of the first columns only: a wide file's every column would make a result of many
        # megabytes (100,000 columns: 19.5 MB) carried by every page and frame showing the task
        self.columns = [Column(name) for name in names[:max_columns]]

    def read_chunk(self, size: int) -> int:
        """Reads up to `size` rows into the columns; returns how many (0 at the end of the data)."""
        rows: list[list[str]] = []
        reader, width, kept = self._reader, self.width, len(self.columns)
        last = reader.line_num  # where the previous row ended: a quoted field may span lines
        try:
            for row in reader:
                if len(row) == width:
                    rows.append(row)
                    if len(rows) == size:
                        break
                elif row:
                    raise ValueError(f"line {last + 1}: expected {width} fields, got {len(row)}")
                else:
                    self.blank_lines += 1
                last = reader.line_num
        except csv.Error as exc:
            raise ValueError(f"line {last + 1}: {exc}") from None
        for column, fields in zip(self.columns, zip(*(row[:kept] for row in rows))):
            culprit = column.add(fields, self.rows)
            if culprit is not None:
                self.notes.append(f"column {column.name!r} is categorical: {culprit!r} in rows {self.rows + 1}-"
                                  f"{self.rows + len(rows)} is not a number")
        self.rows += len(rows)
        return len(rows)

    def take_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes

    def pending_reread(self) -> list[str]:
        return [column.name for column in self.columns if column.reread]

    def reread(self) -> None:
        """Counts the values of the rows read while a now categorical column still looked numeric.

        A second pass over the start of the data, instead of keeping every numeric column's text
        values on the chance that one turns categorical: the array of numbers stays 8 bytes a value.
        """
        pending = [(index, column) for index, column in enumerate(self.columns) if column.reread]
        if not pending:
            return
        data = (row for row in csv.reader(iter(self._lines), strict=True) if row)
        next(data)  # the header
        for number, row in enumerate(islice(data, max(column.reread for _, column in pending))):
            for index, column in pending:
                value = row[index].strip()
                if number < column.reread and value:
                    column.texts[value] += 1
        for _, column in pending:
            column.reread = 0

    def summary(self, columns: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole result; `columns`: the columns' summaries when the caller made them one by one."""
        return {"rows": self.rows, "blank_lines": self.blank_lines, "column_count": self.width,
                "columns_not_analysed": self.width - len(self.columns),
                "column_names": [column.name for column in self.columns],
                "columns": columns or {column.name: column.summary() for column in self.columns},
                "definitions": DEFINITIONS}
