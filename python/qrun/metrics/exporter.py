"""The supervisor's ``/metrics`` endpoint (``qrun run --metrics-port PORT``), for Prometheus.

Everything is read when a scrape arrives, on the HTTP server's thread; nothing is pushed:

- the job counters and histograms: the shared count table (:mod:`qrun.metrics.counts`),
  summed over what reaped workers counted, the live workers' regions and the supervisor's;
- the queue gauges: ``Queue.stats()`` of each queue served, at most once a second whatever
  the scrape rate (a fast scraper cannot hammer the server); a server that does not answer
  leaves them out and sets ``qrun_server_up`` to 0;
- workers alive, restarts by reason and reclaims: counted by the supervisor itself.

Every metric, its type and labels are listed in docs/operations.md ("Prometheus").
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString
from redis.exceptions import RedisError

from . import MetricsError
from .counts import COUNTERS, DURATION_BOUNDS_S, LATENCY_BOUNDS_MS, OTHER_TASK, CountTable, rows

if TYPE_CHECKING:
    from ..queue import Queue

log = logging.getLogger(__name__)

#: Queue gauges are read from the server at most this often, whatever the scrape rate.
STATS_CACHE_S = 1.0

#: The queue gauges, from ``Queue.stats()``: (metric suffix, stats key, help).
_QUEUE_GAUGES = (
    ("ready", "ready", "Jobs waiting in the stream for a worker (the queue's depth)."),
    ("in_flight", "in_flight", "Jobs delivered to a worker and not settled yet."),
    ("delayed", "delayed", "Jobs scheduled for later: enqueue_in/enqueue_at and retries waiting out their backoff."),
    ("dead", "dead", "Dead letters kept in the queue's dead stream."),
)

_COUNTER_HELP = {
    "started": "Jobs a worker started (each attempt counts).",
    "succeeded": "Jobs that returned.",
    "failed": "Attempts that raised (each is then retried or dead-lettered).",
    "retried": "Failed attempts scheduled to run again.",
    "dead": "Jobs moved to the dead stream: out of retries, unknown task, result not kept, or dead-lettered by the claimer.",
    "cancelled": "Jobs cancelled while a worker held them (before they started, or interrupted).",
}


class Exporter:
    """Binds ``host:port`` when made (so a port in use fails before anything starts), serves
    ``/metrics`` from a daemon thread between :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        table: CountTable,
        *,
        queues: Callable[[], Sequence[Queue]],
        workers: Callable[[], tuple[int, int]],
        restarts: Mapping[str, int],
        reclaimed: Mapping[tuple[str, str], int],
        port: int,
        host: str = "0.0.0.0",
    ) -> None:
        self.collector = JobsCollector(table, queues=queues, workers=workers, restarts=restarts, reclaimed=reclaimed)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        server_class: type[ThreadingWSGIServer] = _IPv6Server if ":" in host else ThreadingWSGIServer
        try:
            self._server = make_server(host, port, make_wsgi_app(registry), server_class, handler_class=_QuietHandler)
        except OSError as error:
            why = error.strerror or str(error)
            if error.errno == errno.EADDRINUSE:
                why = "the port is in use"
            raise MetricsError(f"--metrics-port {port}: cannot listen on {host}:{port}: {why}") from None
        self.host = host
        self.port: int = self._server.server_port
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="qrun-metrics", daemon=True)
        self._thread.start()
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        log.info("Prometheus metrics on http://%s:%d/metrics", shown if ":" not in shown else f"[{shown}]", self.port)

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def forget_in_child(self) -> None:
        """In a forked worker: close the inherited listening socket, so a worker that outlives
        its supervisor does not keep the port from the next one."""
        try:
            self._server.socket.close()
        except OSError:
            pass


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """Scrapes are not logged (every 15 s from every Prometheus)."""


class _IPv6Server(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class JobsCollector(Collector):
    """Builds every metric family at scrape time."""

    def __init__(
        self,
        table: CountTable,
        *,
        queues: Callable[[], Sequence[Queue]],
        workers: Callable[[], tuple[int, int]],
        restarts: Mapping[str, int],
        reclaimed: Mapping[tuple[str, str], int],
    ) -> None:
        self.table = table
        self._queues = queues
        self._workers = workers
        self._restarts = restarts
        self._reclaimed = reclaimed
        self._stats_lock = threading.Lock()
        self._stats_at = float("-inf")
        self._stats: list[tuple[str, dict[str, int]]] | None = None
        self._server_failing = False

    def collect(self) -> Iterator[Metric]:
        yield from self._jobs()
        yield from self._queue_gauges()
        alive, desired = self._workers()
        yield GaugeMetricFamily("qrun_workers_alive", "Worker processes of this supervisor that are alive and booted.", alive)
        yield GaugeMetricFamily("qrun_workers_desired", "Worker processes this supervisor keeps running (--workers, TTIN/TTOU).", desired)
        restarts = CounterMetricFamily(
            "qrun_worker_restarts", "Workers this supervisor replaced, by reason: exit_<status>, a signal name, "
            "oom, time_limit, hung, cancel_grace or recycled.", labels=["reason"],
        )
        for reason, count in sorted(dict(self._restarts).items()):
            restarts.add_metric([reason], count)
        yield restarts
        reclaimed = CounterMetricFamily(
            "qrun_reclaimed", "Jobs of dead or stalled workers this supervisor's claimer took back: redelivered, "
            "or dead_lettered past max deliveries.", labels=["queue", "outcome"],
        )
        for (queue, outcome), count in sorted(dict(self._reclaimed).items()):
            reclaimed.add_metric([queue, outcome], count)
        yield reclaimed

    def _jobs(self) -> Iterator[Metric]:
        counters = {
            name: CounterMetricFamily(f"qrun_jobs_{name}", _COUNTER_HELP[name], labels=["queue", "task"])
            for name in COUNTERS
        }
        duration = HistogramMetricFamily(
            "qrun_job_duration_seconds", "How long tasks ran (each attempt that ran in a worker).", labels=["queue", "task"]
        )
        latency = HistogramMetricFamily(
            "qrun_job_enqueue_to_start_seconds",
            "From enqueue to the start of each attempt (includes the delay of scheduled jobs and retries' backoff).",
            labels=["queue", "task"],
        )
        for row in rows(self.table.layout, self.table.totals()):
            if row.task == OTHER_TASK and row.empty:
                continue
            labels = [row.queue, row.task]
            for name, value in row.counters.items():
                counters[name].add_metric(labels, value)
            duration.add_metric(labels, _cumulative(DURATION_BOUNDS_S, row.duration_buckets), row.duration_sum_s)
            latency.add_metric(
                labels, _cumulative([bound / 1000 for bound in LATENCY_BOUNDS_MS], row.latency_buckets), row.latency_sum_s
            )
        yield from counters.values()
        yield duration
        yield latency

    def _queue_gauges(self) -> Iterator[Metric]:
        stats = self.queue_stats()
        yield GaugeMetricFamily(
            "qrun_server_up", "1 if the server answered this supervisor's last read of the queue gauges.",
            0 if stats is None else 1,
        )
        if stats is None:
            return
        for suffix, key, help_text in _QUEUE_GAUGES:
            gauge = GaugeMetricFamily(f"qrun_queue_{suffix}", help_text, labels=["queue"])
            for name, counts in stats:
                gauge.add_metric([name], counts.get(key, 0))
            yield gauge

    def queue_stats(self) -> list[tuple[str, dict[str, int]]] | None:
        """(queue label, ``Queue.stats()``) of every queue served, read at most once per
        STATS_CACHE_S; None while the server does not answer."""
        with self._stats_lock:  # concurrent scrapes wait for one read
            now = time.monotonic()
            if now - self._stats_at < STATS_CACHE_S:
                return self._stats
            self._stats_at = now
            queues = list(self._queues())
            names = [queue.name for queue in queues]
            try:
                self._stats = [
                    (queue.name if names.count(queue.name) == 1 else f"{queue.prefix}:{queue.name}", queue.stats())
                    for queue in queues
                ]
                self._server_failing = False
            except RedisError as error:
                if not self._server_failing:
                    log.warning("metrics: cannot read the queues' stats (%s); queue gauges left out", error)
                self._server_failing = True
                self._stats = None
            return self._stats


def _cumulative(bounds: Sequence[float], buckets: Sequence[int]) -> list[tuple[str, float]]:
    """Prometheus buckets (``le``, count of observations <= le) from per-bucket counts."""
    total = 0
    result: list[tuple[str, float]] = []
    for bound, count in zip([*bounds, float("inf")], buckets):
        total += count
        result.append((floatToGoString(bound), total))
    return result
