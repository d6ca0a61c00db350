"""`make bench`: every scenario in one invocation, then one table (figures, same-run baselines,
ratios, goals). `python -m bench.run [scenario ...]` runs some; BENCH_SCALE=0.1 shrinks every size
for a quick look (the goals are stated for scale 1); PostgreSQL rows need BENCH_DATABASE_URL (or
TEST_DATABASE_URL) naming a database the benchmark may empty."""

import importlib
import os
import platform
import sys
import time
import traceback

from bench.report import Options, Row, table

SCENARIOS = ("drain", "submit", "latency", "idle", "scheduling", "fanout", "ws_memory", "listing", "search", "dashboard",
             "scaleout")


def main(names: list[str]) -> int:
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        print(f"unknown scenario(s): {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    options = Options(scale=float(os.environ.get("BENCH_SCALE", "1")),
                      postgres_url=os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL"))
    rows: list[Row] = []
    failed = False
    started = time.monotonic()
    for name in names or SCENARIOS:
        print(f"--- {name}", file=sys.stderr, flush=True)
        try:
            rows += importlib.import_module(f"bench.{name}").run(options)
        except Exception:  # one broken scenario must not hide the others' figures
            traceback.print_exc()
            rows.append(Row(name, "**error** (traceback above)"))
            failed = True
    load = os.getloadavg()
    print(f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, scale {options.scale:g}, "
          f"PostgreSQL {'yes' if options.postgres_url else 'no (set BENCH_DATABASE_URL)'}, "
          f"{time.monotonic() - started:.0f} s, load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}\n")
    print(table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
