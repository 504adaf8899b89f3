"""A worker that lost the server keeps its process, and first runs what it already held."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError

import qrun
from qrun import settings
from qrun.embedded import EmbeddedValkey
from qrun.maintenance import Maintenance
from qrun.worker import Worker
from tests import tasks
from tests.supervisors import Supervisors, lines, wait_until


@pytest.fixture
def queue(url: str) -> Iterator[qrun.Queue]:
    with qrun.Queue("held", url) as queue:
        yield queue


def test_after_a_reconnect_the_entries_of_a_lost_read_run_before_new_ones(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    ran: list[int] = []

    @queue.task(name="t.note")
    def note(n: int) -> None:
        ran.append(n)

    queue.enqueue_many(note, [(n,) for n in range(3)])
    worker = Worker([queue], consumer="w-lost", read_block_ms=50)
    worker.boot()
    # A read whose reply never arrived: the entries are pending under this worker's name.
    client.xreadgroup(settings.CONSUMER_GROUP, "w-lost", {queue.keys.stream: ">"}, count=3)
    queue.enqueue(note, 3)
    worker.wire.reconnect(ConnectionError("simulated"), lambda: True, lambda: None)  # noqa: SLF001 - the path a dropped socket takes
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while len(ran) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.request_stop()
    thread.join(timeout=5)
    assert ran == [0, 1, 2, 3]
    assert client.xpending(queue.keys.stream, settings.CONSUMER_GROUP)["pending"] == 0
    assert client.xlen(queue.keys.stream) == 0


def test_a_unique_jobs_claim_is_freed_before_the_worker_blocks_on_its_next_read(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    ran = threading.Event()

    @queue.task(name="t.once", unique=True)
    def once(n: int) -> None:
        ran.set()

    queue.enqueue(once, 1)
    worker = Worker([queue], read_block_ms=5_000)  # a long block: a kill during it must not strand the claim
    worker.boot()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert ran.wait(5)
        deadline = time.monotonic() + 2  # well inside the 5 s block that follows the job
        while client.keys(queue.keys.unique("*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.keys(queue.keys.unique("*")) == []
    finally:
        worker.request_stop()
        thread.join(timeout=10)


def test_jobs_run_before_a_restart_are_not_run_again_when_their_acks_bounce_off_a_fresh_server(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    ran: list[int] = []

    @queue.task(name="t.count")
    def count(n: int) -> None:
        ran.append(n)

    queue.enqueue_many(count, [(0,), (1,)])
    worker = Worker([queue], consumer="w-restart", read_block_ms=50)
    worker.boot()
    try:
        while len(ran) < 2:
            worker._fetch_and_run()  # noqa: SLF001 - runs them; their acks wait for the next read
        client.script_flush()  # what a restarted server looks like: the ack script is gone
        worker.wire.read_own_pending = True  # noqa: SLF001 - as after a reconnect
        worker._fetch_and_run()  # noqa: SLF001 - acks bounce (NOSCRIPT); the read returns both again
        worker._fetch_and_run()  # noqa: SLF001
    finally:
        worker.close()
    assert ran == [0, 1]
    assert client.xpending(queue.keys.stream, settings.CONSUMER_GROUP)["pending"] == 0


def test_a_server_that_restarts_empty_gets_its_groups_back_and_the_same_workers_go_on(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """No persistence: the restarted server has no stream and no consumer group. Workers
    must not die on NOGROUP; whoever recreates the group says once, loudly, what was lost."""
    server = EmbeddedValkey().start()
    restarted: EmbeddedValkey | None = None
    runs = Supervisors({**subprocess_env, "QRUN_URL": server.url}, tmp_path, "tests.tasks:queue")
    try:
        with qrun.Queue(tasks.queue.name, server.url) as producer:
            producer.enqueue("tests.tasks.record", 1)
        supervisor = runs.start("--workers", "2")
        workers = {process.pid for process in runs.wait_for_count(supervisor, 2)}
        wait_until(lambda: lines(tmp_path / "ran.txt") == ["1"], 20, "the first job", runs.log)
        with redis.Redis.from_url(server.url) as client:  # both booted and reading (a booting one may fail)
            wait_until(lambda: len(client.xinfo_consumers(tasks.queue.keys.stream, settings.CONSUMER_GROUP)) == 2,
                       20, "both workers to read", runs.log)
        server.stop(kill=True, keep_data=False)  # SIGKILL, and its (empty) data dir goes too
        restarted = EmbeddedValkey(port=server.port).start()
        with qrun.Queue(tasks.queue.name, restarted.url) as producer:
            producer.enqueue("tests.tasks.record", 2)  # a stream again, but no group (yet)
        wait_until(lambda: lines(tmp_path / "ran.txt") == ["1", "2"], 30, "a job enqueued after the restart", runs.log)
        assert {process.pid for process in runs.workers(supervisor)} == workers  # nobody was replaced
        log = runs.log()
        assert log.count("came back WITHOUT the data of queue(s) qrun:tests") == 1, log  # once, whoever noticed
        assert "Traceback" not in log and "NOGROUP" not in log, log
    finally:
        runs.stop_all()
        if restarted is not None:
            restarted.stop()
        server.stop()


def test_the_maintenance_thread_notices_a_restart_that_lost_the_data_and_recreates_the_group(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = EmbeddedValkey().start()
    restarted: EmbeddedValkey | None = None
    try:
        with qrun.Queue("restarts", server.url) as queue:
            queue.ensure_group()
            keeper = Maintenance([queue])
            keeper.check_server()  # remembers the run id
            server.stop(kill=True)
            restarted = EmbeddedValkey(port=server.port).start()
            queue.close()
            with caplog.at_level("ERROR", logger="qrun.recovery"):
                keeper.check_server()
                keeper.check_server()  # same run id now: nothing more to say
            groups = queue.redis.xinfo_groups(queue.keys.stream)
        assert [group["name"] for group in groups] in ([b"workers"], ["workers"])
        assert caplog.text.count("came back WITHOUT the data of queue(s) qrun:restarts") == 1
        assert "it restarted: run id" in caplog.text
    finally:
        if restarted is not None:
            restarted.stop()
        server.stop()
