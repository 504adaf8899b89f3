"""The scenarios: each returns Figures (one value per repetition) for the table.

Sizes come from ``Plan``; every wait is bounded by ``Plan.timeout_s``.
"""

from __future__ import annotations

import os
import statistics
import time
import timeit
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass

import psutil

from . import harness, marks, raw
from .harness import Figure, Workers
from .systems.base import System


@dataclass(frozen=True)
class Plan:
    repeat: int = 3
    single_calls: int = 5_000
    bulk_jobs: int = 100_000
    e2e: tuple[tuple[int, int], ...] = ((2, 20_000), (8, 20_000), (2, 200_000), (8, 200_000))
    peer_e2e_jobs: int = 2_000
    probes: int = 200
    result_probes: int = 500
    timeout_s: float = 300.0


def enqueue_one(url: str, systems: list[System], plan: Plan) -> list[Figure]:
    """Scenario 1: one call per job, as a web request enqueues."""
    figures = []
    for system in systems + [None]:
        name = system.name if system else "raw: redis-py XADD"
        rate, p50, p99 = (Figure("enqueue one: jobs/s", name, "jobs/s"), Figure("enqueue one: p50", name, "µs"),
                          Figure("enqueue one: p99", name, "µs"))
        for _ in range(plan.repeat):
            harness.flush(url)
            if system is None:
                latencies = raw.xadd_round_trips(url, plan.single_calls)
            else:
                system.enqueue_one()  # connect and load scripts outside the timing
                latencies = []
                for _ in range(plan.single_calls):
                    started = time.perf_counter()
                    system.enqueue_one()
                    latencies.append(time.perf_counter() - started)
            rate.values.append(len(latencies) / sum(latencies))
            p50.values.append(harness.percentile(latencies, 0.50) * 1e6)
            p99.values.append(harness.percentile(latencies, 0.99) * 1e6)
        figures += [rate, p50, p99]
    return figures


def enqueue_bulk(url: str, systems: list[System], plan: Plan) -> list[Figure]:
    """Scenario 2 and the enqueue side of scenario 6."""
    figures = []
    runs: list[tuple[str, Callable[[], float]]] = []
    for system in systems:
        if system.has_bulk:
            runs.append((system.name, lambda system=system: _timed(lambda: system.enqueue_bulk(plan.bulk_jobs))))
    runs.append(("raw: redis-py pipelined XADD", lambda: raw.xadd_pipelined(url, plan.bulk_jobs)))
    runs.append(("raw: server-bound XADD (pre-built RESP)", lambda: raw.xadd_server_bound(url, plan.bulk_jobs)))
    for name, run in runs:
        figure = Figure("bulk enqueue", name, "jobs/s")
        for _ in range(plan.repeat):
            harness.flush(url)
            figure.values.append(plan.bulk_jobs / run())
        figures.append(figure)
    return figures


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _run_workers(url: str, command: list[str], jobs: int, fill: Callable[[], None], timeout_s: float) -> float:
    """Fill the queue, start the workers, return seconds from start to the last mark."""
    with harness.mark_dir() as directory:
        harness.flush(url)
        fill()
        workers = Workers(command, harness.worker_env(url, directory), f"{directory}.log")
        started = time.perf_counter()
        try:
            done = harness.wait_until(lambda: marks.count_done(directory) >= jobs or not workers.alive(), timeout_s)
            elapsed = time.perf_counter() - started
            finished = marks.count_done(directory)
            if not done or finished < jobs:
                raise RuntimeError(f"{command[2:]}: {finished} of {jobs} jobs in {elapsed:.0f}s\n{workers.tail()}")
            return elapsed
        finally:
            workers.stop()


def end_to_end(url: str, systems: list[System], plan: Plan) -> list[Figure]:
    """Scenario 3, and the minimal raw consumer-group runner of scenario 6.

    Peers process a few thousand jobs per second (RQ forks per job: tens), so they run
    ``plan.peer_e2e_jobs`` jobs once per worker count; their rate is shown beside each size.
    """
    figures = []
    peer_rates: dict[tuple[str, int], Figure] = {}
    for workers, jobs in plan.e2e:
        label = f"end to end, {workers} workers, {jobs:,} jobs"
        for system in systems:
            if system.name == "qrun":
                count = jobs
            else:
                count = min(jobs, plan.peer_e2e_jobs)
                measured = peer_rates.get((system.name, workers))
                if measured is not None:
                    figures.append(Figure(label, system.name, "jobs/s", measured.values, measured.note))
                    continue
            figure = Figure(label, system.name, "jobs/s", note=f"{count:,} jobs" if count != jobs else "")
            for _ in range(plan.repeat):
                seconds = _run_workers(url, system.worker_command(workers), count, lambda: system.fill(count), plan.timeout_s)
                figure.values.append(count / seconds)
            figures.append(figure)
            if system.name != "qrun":
                peer_rates[(system.name, workers)] = figure
        for name, decode in (("raw: minimal consumer-group runner", True), ("raw: same, without json.loads", False)):
            figure = Figure(label, name, "jobs/s")
            for _ in range(plan.repeat):
                command = raw.consumer_command(workers, decode=decode)
                seconds = _run_workers(url, command, jobs, lambda: raw.fill_for_consumer(url, jobs), plan.timeout_s)
                figure.values.append(jobs / seconds)
            figures.append(figure)
    return figures


def latency_and_memory(url: str, systems: list[System], plan: Plan, workers: int = 2) -> list[Figure]:
    """Scenarios 4 and 5: enqueue-to-start with idle workers, then their memory."""
    figures = []
    probes: list[Any] = [*systems, raw.RawProbe(url)]
    for system in probes:
        p50 = Figure("enqueue-to-start p50 (idle)", system.name, "ms")
        p99 = Figure("enqueue-to-start p99 (idle)", system.name, "ms")
        rss = Figure("RSS per worker", system.name, "MiB")
        uss = Figure("USS per worker", system.name, "MiB")
        root = Figure("RSS of supervisor/master", system.name, "MiB")
        for _ in range(plan.repeat):
            with harness.mark_dir() as directory:
                harness.flush(url)
                if isinstance(system, raw.RawProbe):
                    system.prepare()
                running = Workers(system.worker_command(workers), harness.worker_env(url, directory), f"{directory}.log")
                try:
                    _warm_up(system, directory, plan.timeout_s, running)
                    latencies = _probe(system, directory, plan)
                    p50.values.append(statistics.median(latencies) * 1e3)
                    p99.values.append(harness.percentile(latencies, 0.99) * 1e3)
                    tree = running.tree()
                    worker_memory = [_memory(p) for p in tree[1:]] or [_memory(tree[0])]
                    rss.values.append(statistics.median(m[0] for m in worker_memory))
                    uss.values.append(statistics.median(m[1] for m in worker_memory))
                    root.values.append(_memory(tree[0])[0])
                finally:
                    running.stop()
        figures += [p50, p99, rss, uss, root]
    probes[-1].close()
    return figures


def _warm_up(system: Any, directory: str, timeout_s: float, running: Workers) -> None:
    """Probe until one comes back, so every worker process has started; then let them idle."""
    deadline = time.monotonic() + timeout_s
    while not marks.read_latencies(directory):
        if time.monotonic() > deadline or not running.alive():
            raise RuntimeError(f"{system.name}: workers never picked up a probe\n{running.tail()}")
        system.enqueue_probe(time.time())
        time.sleep(0.5)
    time.sleep(2.0)  # every worker has booted and is blocked waiting for work
    for entry in os.scandir(directory):
        if entry.name.startswith("latency."):
            os.truncate(entry.path, 0)


def _probe(system: Any, directory: str, plan: Plan) -> list[float]:
    for index in range(plan.probes):
        system.enqueue_probe(time.time())
        harness.wait_until(lambda: len(marks.read_latencies(directory)) > index, 10.0, poll_s=0.001)
        time.sleep(0.01)  # low load: the next probe finds idle workers
    return marks.read_latencies(directory)


def _memory(process: psutil.Process) -> tuple[float, float]:
    info = process.memory_full_info()
    return info.rss / 2**20, info.uss / 2**20


RESULT_WAIT_S = 10.0  #: the most one round trip may take before the run fails
#: Pauses between round trips: 10 ms, as between latency probes (every process has gone
#: idle when the next job comes), and none (back to back: the next job follows the result).
RESULT_GAPS_S = ((0.01, "idle, 10 ms apart"), (0.0, "back to back"))


def results(url: str, systems: list[System], plan: Plan, workers: int = 2) -> list[Figure]:
    """Issue 9: what keeping results costs and how fast a caller gets a return value.

    - **result round trip**, one job at a time on idle workers: ``plan.result_probes`` jobs
      10 ms apart, then as many back to back, each timed from before the enqueue to having the
      return value in this process, through each system's own result API (benches/systems:
      ``result_clients``), and the raw floor;
    - **end to end with results on** (qrun): the rows of ``end_to_end`` (same sizes, same
      workers), on a queue that keeps every job's result, as "qrun, results on".
    """
    figures = []
    clients: list[Any] = [client for system in systems for client in system.result_clients()]
    clients.append(raw.RawResults(url))
    for client in clients:
        rows = [
            (Figure(f"result round trip p50 ({how})", client.name, "ms", note=client.note),
             Figure(f"result round trip p99 ({how})", client.name, "ms", note=client.note))
            for _gap, how in RESULT_GAPS_S
        ]
        for _ in range(plan.repeat):
            for (p50, p99), latencies in zip(rows, _round_trips(url, client, plan, workers)):
                p50.values.append(statistics.median(latencies) * 1e3)
                p99.values.append(harness.percentile(latencies, 0.99) * 1e3)
        figures += [figure for pair in rows for figure in pair]
    qrun_results = next((c for c in clients if c.name == "qrun"), None)
    if qrun_results is not None:
        for worker_count, jobs in plan.e2e:
            figure = Figure(f"end to end, {worker_count} workers, {jobs:,} jobs", "qrun, results on", "jobs/s")
            for _ in range(plan.repeat):
                command = qrun_results.worker_command(worker_count)
                seconds = _run_workers(url, command, jobs, lambda: qrun_results.fill(jobs), plan.timeout_s)
                figure.values.append(jobs / seconds)
            figures.append(figure)
    for client in clients:
        client.close()
    return figures


def _round_trips(url: str, client: Any, plan: Plan, workers: int) -> list[list[float]]:
    """Start the client's workers, warm them up, then time ``plan.result_probes`` round trips
    per pause of RESULT_GAPS_S (seconds each, one list per pause)."""
    with harness.mark_dir() as directory:
        harness.flush(url)
        if isinstance(client, raw.RawResults):
            client.prepare()
        running = Workers(client.worker_command(workers), harness.worker_env(url, directory), f"{directory}.log")
        try:
            deadline = time.monotonic() + plan.timeout_s
            last_error: Exception | None = None
            while True:  # the first round trip that comes back: the workers are up
                if time.monotonic() > deadline or not running.alive():
                    raise RuntimeError(f"{client.name}: no result came back ({last_error!r})\n{running.tail()}")
                try:
                    if client.round_trip(-1, 1.0) == -1:
                        break
                except Exception as error:  # noqa: BLE001 - each system raises its own timeout
                    last_error = error
                    time.sleep(0.1)
            time.sleep(2.0)  # every worker process has booted and is blocked waiting for work
            measured = []
            for gap_s, _how in RESULT_GAPS_S:
                latencies: list[float] = []
                for index in range(-4 * workers, plan.result_probes):  # a few unmeasured ones first
                    if time.monotonic() > deadline or not running.alive():
                        raise RuntimeError(
                            f"{client.name}: {len(latencies)} of {plan.result_probes} round trips\n{running.tail()}"
                        )
                    started = time.perf_counter()
                    value = client.round_trip(index, RESULT_WAIT_S)
                    elapsed = time.perf_counter() - started
                    if value != index:
                        raise RuntimeError(f"{client.name}: round trip {index} returned {value!r}")
                    if index >= 0:
                        latencies.append(elapsed)
                    if gap_s:
                        time.sleep(gap_s)
                measured.append(latencies)
            return measured
        finally:
            running.stop()


def codec(_url: str, _systems: list[System], plan: Plan) -> list[Figure]:
    """Scenario 8: what the Rust codec buys, per job."""
    from qrun import reference_codec

    try:
        from qrun import _codec as native
    except ImportError:
        return []
    args, kwargs = (["user@example.com", 12345, 3.25, {"tags": ["a", "b"]}], {"subject": "hello", "retry": True})
    jobs = [(f"{n:032x}", "app.send_email", args, kwargs) for n in range(1000)]
    fields = [b"id", b"0" * 32, b"task", b"app.send_email", b"args", b'["user@example.com",12345,3.25,{"tags":["a","b"]}]',
              b"kwargs", b'{"subject":"hello","retry":true}', b"attempt", b"1", b"enqueued_at", b"1764125000000"]
    reply = [[b"{qrun:bench}:stream", [[b"%d-0" % n, fields] for n in range(500)]]]
    cases: list[tuple[str, int, Callable[[object], object]]] = [
        ("codec: encode payload", 1, lambda m: m.encode_payload(args, kwargs)),
        ("codec: pack enqueue (per job, batch of 1000)", 1000, lambda m: m.pack_enqueue(b"0" * 40, [b"s", b"t"], jobs, 1, 0)),
        ("codec: decode read (per entry, batch of 500)", 500, lambda m: m.decode_read_reply(reply)),
    ]
    figures = []
    for scenario, per_call, action in cases:
        for name, module in (("qrun (Rust)", native), ("qrun (reference)", reference_codec)):
            figure = Figure(scenario, name, "µs/job")
            for _ in range(plan.repeat):
                loops = max(1, 20_000 // per_call)
                seconds = min(timeit.repeat(lambda: action(module), number=loops, repeat=3))
                figure.values.append(seconds / loops / per_call * 1e6)
            figures.append(figure)
    return figures
