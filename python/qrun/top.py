"""``qrun top``: a live view of a deployment, refreshed in place.

Each frame compares two snapshots taken ``interval_s`` apart:

- per queue (from its ``:stats`` counters and lengths): ready, in flight, delayed, dead, and
  jobs/s done (succeeded + dead-lettered) and failures/s (retried + dead-lettered);
- per task (from the ``/metrics`` of every supervisor that serves Prometheus metrics and says so
  in its presence record, ``--metrics-port``): jobs/s started, failures/s, and the median
  enqueue-to-start latency over the interval, from the histogram's buckets; without metrics the
  task table says so;
- workers (from presence): supervisors, worker processes, the jobs they run.
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import redis

from .lifecycle.status import queue_names
from .presence import alive
from .queue import Queue

#: Seconds a scrape of one supervisor's /metrics may take before it is left out of a frame.
SCRAPE_TIMEOUT_S = 0.5


@dataclass
class Snapshot:
    at: float
    queues: dict[str, dict[str, int]]
    tasks: dict[tuple[str, str], dict[str, Any]]  # (queue, task) -> counters and latency buckets
    supervisors: list[dict[str, Any]]
    scraped: int = 0  # supervisors whose metrics were read
    unreachable: list[str] = field(default_factory=list)


def snapshot(client: redis.Redis, url: str, prefix: str, names: list[str] | None = None) -> Snapshot:
    """Everything one frame needs, read now."""
    queues = {}
    for name in names or queue_names(client, prefix):
        with Queue(name, url, prefix=prefix) as queue:
            queues[name] = queue.stats()
    supervisors = alive(client, prefix)
    tasks: dict[tuple[str, str], dict[str, Any]] = {}
    scraped, unreachable = 0, []
    try:
        from prometheus_client import parser  # per-task rows read the supervisors' metrics
    except ImportError:
        supervisors_with_metrics: list[dict[str, Any]] = []
    else:
        supervisors_with_metrics = supervisors if parser else []
    for record in supervisors_with_metrics:
        endpoint = record.get("metrics")
        if not isinstance(endpoint, dict):
            continue
        host, port = str(endpoint.get("address") or record.get("host")), endpoint.get("port")
        address = f"[{host}]" if ":" in host else host
        try:
            with urllib.request.urlopen(f"http://{address}:{port}/metrics", timeout=SCRAPE_TIMEOUT_S) as response:
                _add_metrics(tasks, response.read().decode())
            scraped += 1
        except (OSError, ValueError):
            unreachable.append(f"{host}:{port}")
    return Snapshot(time.monotonic(), queues, tasks, supervisors, scraped, unreachable)


def _add_metrics(tasks: dict[tuple[str, str], dict[str, Any]], text: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if "queue" not in labels or "task" not in labels:
                continue
            row = tasks.setdefault((labels["queue"], labels["task"]), {"buckets": {}})
            if sample.name in ("qrun_jobs_started_total", "qrun_jobs_failed_total", "qrun_jobs_succeeded_total"):
                row[sample.name] = row.get(sample.name, 0.0) + sample.value
            elif sample.name == "qrun_job_enqueue_to_start_seconds_bucket":
                bound = float(labels["le"])
                row["buckets"][bound] = row["buckets"].get(bound, 0.0) + sample.value


def rates(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """What a frame shows: per queue and per task rates over the interval between two snapshots."""
    seconds = max(after.at - before.at, 1e-6)
    queues = []
    for name, now in after.queues.items():
        then = before.queues.get(name, now)
        done = (now["succeeded"] + now["dead_lettered"]) - (then["succeeded"] + then["dead_lettered"])
        failed = (now["retried"] + now["dead_lettered"]) - (then["retried"] + then["dead_lettered"])
        queues.append({
            "queue": name, "ready": now["ready"], "in_flight": now["in_flight"], "delayed": now["delayed"],
            "dead": now["dead"], "jobs_per_s": max(0.0, done / seconds), "failures_per_s": max(0.0, failed / seconds),
        })
    tasks = []
    for (queue, task), current in sorted(after.tasks.items()):
        earlier: dict[str, Any] = before.tasks.get((queue, task), {"buckets": {}})
        started = current.get("qrun_jobs_started_total", 0.0) - earlier.get("qrun_jobs_started_total", 0.0)
        failed_jobs = current.get("qrun_jobs_failed_total", 0.0) - earlier.get("qrun_jobs_failed_total", 0.0)
        tasks.append({
            "queue": queue, "task": task, "jobs_per_s": max(0.0, started / seconds),
            "failures_per_s": max(0.0, failed_jobs / seconds),
            "latency_p50_s": _median(current["buckets"], earlier["buckets"]),
        })
    workers = sum(len(record.get("workers") or []) for record in after.supervisors)
    return {"interval_s": seconds, "queues": queues, "tasks": tasks, "supervisors": len(after.supervisors),
            "workers": workers, "metrics_from": after.scraped, "unreachable": after.unreachable}


def _median(now: dict[float, float], then: dict[float, float]) -> float | None:
    """The median of the observations made between two cumulative histograms (the upper bound
    of the bucket it falls in), None if there were none."""
    bounds = sorted(now)
    counts = [now[bound] - then.get(bound, 0.0) for bound in bounds]
    if not counts or counts[-1] <= 0:
        return None
    half = counts[-1] / 2
    for bound, count in zip(bounds, counts):
        if count >= half:
            return bound
    return None


def render(frame: dict[str, Any]) -> Any:
    """The frame as a rich renderable (tables)."""
    from rich.console import Group
    from rich.table import Table

    queues = Table(title=f"queues (rates over {frame['interval_s']:.1f}s)", expand=True)
    for column in ("queue", "ready", "in flight", "delayed", "dead", "jobs/s", "failures/s"):
        queues.add_column(column, justify="left" if column == "queue" else "right")
    for row in frame["queues"]:
        queues.add_row(row["queue"], str(row["ready"]), str(row["in_flight"]), str(row["delayed"]), str(row["dead"]),
                       f"{row['jobs_per_s']:.1f}", f"{row['failures_per_s']:.1f}")
    parts: list[Any] = [queues]
    if frame["tasks"]:
        tasks = Table(title="tasks (from the supervisors' /metrics)", expand=True)
        for column in ("queue", "task", "started/s", "failures/s", "latency p50"):
            tasks.add_column(column, justify="left" if column in ("queue", "task") else "right")
        for row in frame["tasks"]:
            latency = row["latency_p50_s"]
            shown = "-" if latency is None else ("inf" if latency == float("inf") else f"≤{latency * 1000:g} ms")
            tasks.add_row(row["queue"], row["task"], f"{row['jobs_per_s']:.1f}", f"{row['failures_per_s']:.1f}", shown)
        parts.append(tasks)
    else:
        parts.append("tasks: no supervisor serves metrics (run it with --metrics-port to see jobs/s and latency per task)")
    line = f"{frame['supervisors']} supervisor(s), {frame['workers']} worker(s) alive"
    if frame["unreachable"]:
        line += f"; metrics unreachable: {', '.join(frame['unreachable'])}"
    parts.append(line)
    return Group(*parts)
