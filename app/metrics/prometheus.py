"""GET /metrics: the figures in Prometheus' text format, read per request from Redis (the task
counters and histograms every process records, metrics/tally.py; queue depth; live workers; each
live web process's WebSocket figures) and from the database (tasks by status).

No global registry: each request builds a CollectorRegistry with one collector over what it read.
"""

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from redis.asyncio import Redis

from app.core import keys
from app.metrics.figures import live_webs, queue_depth
from app.metrics.tally import BUCKETS, COUNTERS
from app.store.stores import Stores

HELP = {
    "submitted": "Tasks submitted (stored and queued).",
    "started": "Attempts started (a task moved to RUNNING).",
    "succeeded": "Tasks that ended SUCCESS.",
    "failed": "Tasks that ended FAILED (attempts spent, or an error not worth a retry).",
    "cancelled": "Tasks that ended CANCELLED (queued or running).",
    "retried": "Tasks queued again for a new attempt: automatically after an attempt that failed, was handed "
               "back by a stopping worker or lost with its worker (RUNNING to RETRYING), or by a manual retry.",
}


@dataclass(eq=False)  # registered by identity
class Snapshot:
    counters: dict[str, float]  # the METRICS hash: "<name>|<task type>[|<bucket>]" → value
    task_types: list[str]
    depth: dict[str, dict[Any, int]]
    workers_live: int
    webs: dict[str, dict[str, Any]]
    by_status: dict[str, int]
    paused: dict[str, int]  # queue → 1 while paused

    def collect(self) -> Iterator[Metric]:
        for name in COUNTERS:
            family = CounterMetricFamily(f"tq_tasks_{name}", HELP[name], labels=["task_type"])
            for kind in self.task_types:
                family.add_metric([kind], self.counters.get(f"{name}|{kind}", 0))
            yield family
        yield self._histogram("run", "tq_task_run_seconds",
                              "Run time of attempts that ended after running (final, or RETRYING: failed, handed "
                              "back or lost), seconds.")
        yield self._histogram("wait", "tq_task_wait_seconds",
                              "First attempt's start minus max(created_at, run_at), seconds.")
        yield _gauge("tq_queue_depth", "Jobs due and waiting for a worker, by priority.", "priority",
                     self.depth["queued"])
        yield _gauge("tq_queue_delayed", "Jobs waiting for their time (scheduled start, retry backoff), by priority.",
                     "priority", self.depth["delayed"])
        yield _gauge("tq_tasks", "Tasks stored, by status (from the database).", "status", self.by_status)
        yield _gauge("tq_queue_paused", "1 while the queue is paused (workers take none of its jobs), else 0.",
                     "queue", self.paused)
        workers = GaugeMetricFamily("tq_workers_live", "Workers whose heartbeat is current.")
        workers.add_metric([], self.workers_live)
        yield workers
        yield _gauge("tq_websocket_clients", "WebSocket clients connected, per live web process.", "web",
                     {web: figures["clients"] for web, figures in self.webs.items()})
        fanned = CounterMetricFamily("tq_events_fanned_out", "Task events released to the WebSocket clients, "
                                     "per live web process since it started.", labels=["web"])
        for web, figures in sorted(self.webs.items()):
            fanned.add_metric([web], figures["delivered"])
        yield fanned

    def _histogram(self, name: str, metric: str, doc: str) -> HistogramMetricFamily:
        family = HistogramMetricFamily(metric, doc, labels=["task_type"])
        for kind in self.task_types:
            cumulative, buckets = 0.0, []
            for index, bound in enumerate([*map(str, BUCKETS), "+Inf"]):
                cumulative += self.counters.get(f"{name}|{kind}|{index}", 0)
                buckets.append((bound, cumulative))
            family.add_metric([kind], buckets, sum_value=self.counters.get(f"{name}_sum|{kind}", 0.0))
        return family


def _gauge(metric: str, doc: str, label: str, values: Mapping[Any, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(metric, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([str(key)], value)
    return family


async def read(redis: Redis, stores: Stores, queue: str, task_types: list[str]) -> Snapshot:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.METRICS)
        pipe.zcount(keys.WORKERS, time.time(), "+inf")
        pipe.exists(keys.paused_key(queue))
        found, workers, paused = await pipe.execute()
    counters = {field.decode(): float(value) for field, value in found.items()}
    seen = {field.split("|")[1] for field in counters}
    return Snapshot(counters, sorted(set(task_types) | seen), await queue_depth(redis, stores.tasks, queue),
                    int(workers), await live_webs(redis), await stores.queries.counts(), {queue: int(paused)})

