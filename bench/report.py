"""What every benchmark scenario returns, and the one table `make bench` prints."""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    scale: float  # 1.0: the sizes the goals are stated for; less for a quick look (BENCH_SCALE)
    postgres_url: str | None  # PostgreSQL runs happen only with one (BENCH_DATABASE_URL / TEST_DATABASE_URL)

    def size(self, n: int) -> int:
        return max(1, round(n * self.scale))


@dataclass(frozen=True)
class Row:
    scenario: str  # e.g. "end-to-end, SQLite, 1 worker"
    measured: str  # the figure, with its unit: "1,102 tasks/s", "p95 12.1 ms"
    goal: str = ""  # e.g. "≥ 0.8× baseline", "p95 ≤ 20 ms"; empty: reported, no goal
    met: bool | None = None  # None: no goal
    baseline: str = ""  # the baseline's figure from the same run, e.g. "bare arq 1,363 jobs/s"
    ratio: float | None = None  # measured / baseline


def table(rows: list[Row]) -> str:
    """A Markdown table: pasted as it is into bench/README.md and the closing note."""
    lines = ["| scenario | measured | baseline (same run) | ratio | goal | met |", "|---|---|---|---|---|---|"]
    for row in rows:
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None else ""
        met = {True: "yes", False: "**no**", None: ""}[row.met]
        lines.append(f"| {row.scenario} | {row.measured} | {row.baseline} | {ratio} | {row.goal} | {met} |")
    return "\n".join(lines)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0–100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
