"""`qrun top`: one frame (--once, --json) of a deployment whose supervisor serves metrics."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import qrun

from qrun.embedded import free_port
from tests import admin_tasks
from tests.supervisors import Supervisors, run_cli, supervisors_of, wait_until


@pytest.fixture
def runs(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Supervisors]:
    with supervisors_of(admin_tasks.queue, subprocess_env, tmp_path, "tests.admin_tasks:queue") as started:
        yield started


def test_top_shows_queue_and_task_rates_and_workers(url: str, runs: Supervisors, subprocess_env: dict[str, str]) -> None:
    quiet = run_cli(subprocess_env, "top", "--once", "--interval", "0.2")
    assert quiet.returncode == 0, quiet.stderr
    assert "no supervisor serves metrics" in quiet.stdout and "0 supervisor(s)" in quiet.stdout

    port = free_port()
    supervisor = runs.start("--workers", "2", "--metrics-port", str(port), "--metrics-host", "127.0.0.1")
    runs.wait_for_count(supervisor, 2)
    wait_until(lambda: len(json.loads(run_cli(subprocess_env, "workers", "--json").stdout)) == 1, 20, "presence")
    stop = threading.Event()

    def produce() -> None:  # a steady trickle, bounded in count and time
        with qrun.Queue("admin", url) as producer:
            for n in range(400):
                if stop.is_set():
                    return
                producer.enqueue(admin_tasks.note.name, n)
                time.sleep(0.01)

    feeder = threading.Thread(target=produce)
    feeder.start()
    try:
        time.sleep(0.5)
        frame = json.loads(run_cli(subprocess_env, "top", "--json", "--interval", "1").stdout)
        shown = run_cli(subprocess_env, "top", "--once", "--interval", "0.5")
    finally:
        stop.set()
        feeder.join(timeout=10)
    [queue] = [row for row in frame["queues"] if row["queue"] == "admin"]
    assert queue["jobs_per_s"] > 10 and frame["workers"] == 2 and frame["metrics_from"] == 1
    [task] = [row for row in frame["tasks"] if row["task"] == admin_tasks.note.name]
    assert task["jobs_per_s"] > 10 and task["latency_p50_s"] is not None
    assert shown.returncode == 0 and "admin" in shown.stdout and admin_tasks.note.name in shown.stdout
    assert "2 worker(s) alive" in shown.stdout
