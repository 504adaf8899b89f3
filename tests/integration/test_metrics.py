"""Prometheus metrics of a real `qrun run --metrics-port` subprocess, scraped over HTTP and parsed
with prometheus_client's parser; and the one-line errors when metrics cannot be served."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from qrun.presence import alive

from .. import tasks
from ..supervisors import ROOT, Supervisors, lines, wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

NOOP = "tests.tasks.noop"
FAILS = "tests.tasks.always_fails"
SLEEPS = "tests.tasks.sleep_then_record"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def job(samples: Samples, name: str, task: str) -> float:
    return value(samples, name, queue="tests", task=task)


def test_a_scrape_counts_jobs_per_task_and_keeps_a_killed_workers_counts(
    subprocess_env: dict[str, str], tmp_path: Path, client: redis.Redis
) -> None:
    port = free_port()
    supervisors = Supervisors(subprocess_env, tmp_path, "tests.tasks:queue")
    try:
        process = supervisors.start("--workers", "2", "--metrics-port", str(port), "--metrics-host", "127.0.0.1")
        first = supervisors.wait_for_count(process, 2)
        wait_until(lambda: _answers(port), 20, "the metrics endpoint", supervisors.log)
        for _ in range(20):
            tasks.noop.enqueue()
        wait_until(lambda: job(scrape(port), "qrun_jobs_succeeded_total", NOOP) == 20, 20, "20 no-op jobs", supervisors.log)

        # A worker killed after it counted: its counts are folded in, not lost; the restart is counted.
        first[0].send_signal(signal.SIGKILL)
        supervisors.wait_for_workers(process, lambda pids: len(pids) == 2 and first[0].pid not in pids, 20, "a replacement")
        samples = scrape(port)
        assert job(samples, "qrun_jobs_succeeded_total", NOOP) == 20
        assert job(samples, "qrun_jobs_started_total", NOOP) == 20
        wait_until(lambda: value(scrape(port), "qrun_worker_restarts_total", reason="SIGKILL") == 1, 10, "the restart")

        tasks.always_fails.enqueue("boom")  # retries=2: three attempts, two retries, then dead
        wait_until(lambda: job(scrape(port), "qrun_jobs_dead_total", FAILS) == 1, 30, "the dead letter", supervisors.log)

        running = tasks.sleep_then_record.enqueue(30, 1)
        wait_until(lambda: lines(tmp_path / "started.txt") == ["1"], 20, "the slow job to start")
        running.cancel()
        wait_until(lambda: job(scrape(port), "qrun_jobs_cancelled_total", SLEEPS) == 1, 30, "the cancel", supervisors.log)

        samples = scrape(port)
        assert job(samples, "qrun_jobs_started_total", FAILS) == 3
        assert job(samples, "qrun_jobs_failed_total", FAILS) == 3
        assert job(samples, "qrun_jobs_retried_total", FAILS) == 2
        assert job(samples, "qrun_jobs_succeeded_total", FAILS) == 0
        assert job(samples, "qrun_jobs_started_total", SLEEPS) == 1
        assert job(samples, "qrun_jobs_succeeded_total", SLEEPS) == 0
        for name in ("qrun_job_duration_seconds_count", "qrun_job_enqueue_to_start_seconds_count"):
            assert job(samples, name, NOOP) == 20
            assert job(samples, name, FAILS) == 3
            assert value(samples, name.replace("_count", "_bucket"), queue="tests", task=NOOP, le="+Inf") == 20
        assert job(samples, "qrun_job_duration_seconds_sum", SLEEPS) > 0  # interrupted: it ran for a while
        # The queue gauges are read from the server at most once a second: wait out the cache.
        wait_until(lambda: value(scrape(port), "qrun_queue_dead", queue="tests") == 1, 5, "the dead gauge")
        samples = scrape(port)
        assert value(samples, "qrun_queue_ready", queue="tests") == 0
        assert value(samples, "qrun_queue_delayed", queue="tests") == 0
        assert value(samples, "qrun_workers_alive") == 2 and value(samples, "qrun_workers_desired") == 2
        assert value(samples, "qrun_server_up") == 1
        assert not any(name == "qrun_jobs_started_total" and dict(labels)["task"] == "(other)" for name, labels in samples)

        (record,) = alive(client, "qrun")
        assert record["metrics"] == {"address": "127.0.0.1", "port": port}
    finally:
        supervisors.stop_all()


def _answers(port: int) -> bool:
    try:
        scrape(port)
    except OSError:
        return False
    return True


def run_qrun(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qrun", "run", *args, "tests.tasks:queue"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


def test_a_metrics_port_in_use_is_one_line_and_starts_nothing(subprocess_env: dict[str, str], client: redis.Redis) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_qrun("--metrics-port", str(port), "--metrics-host", "127.0.0.1", env=subprocess_env)
    assert result.returncode == 1
    assert result.stderr.strip() == f"qrun: --metrics-port {port}: cannot listen on 127.0.0.1:{port}: the port is in use"
    assert alive(client, "qrun") == []  # no supervisor ever ran


def test_metrics_without_the_extra_installed_is_one_line(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    hidden = tmp_path / "hide" / "prometheus_client"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError(\"No module named 'prometheus_client'\")\n")
    env = {**subprocess_env, "PYTHONPATH": os.pathsep.join([str(tmp_path / "hide"), subprocess_env["PYTHONPATH"]])}
    result = run_qrun("--metrics-port", str(free_port()), env=env)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("qrun: --metrics-port needs the prometheus_client package") and "pip install 'qrun[metrics]'" in line


@pytest.fixture(autouse=True)
def _close_queue() -> None:
    tasks.queue.close()
