"""Following a job after enqueue, on the real server with real supervisors: results, status
in every state, waiting, cancel in each state, progress, TTL expiry, bad input."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import qrun
import redis

from qrun.batch import CANCEL_SIGNAL
from qrun.worker import Worker
from tests import lifecycle_tasks as lt
from tests.supervisors import supervisors_of, Supervisors, lines, wait_until

TARGET = "tests.lifecycle_tasks:queue"


@pytest.fixture
def life(url: str) -> Iterator[qrun.Queue]:
    yield lt.queue
    lt.queue.close()


@pytest.fixture
def runs(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Supervisors]:
    with supervisors_of(lt.queue, subprocess_env, tmp_path, TARGET) as started:
        yield started


def start_workers(runs: Supervisors, count: int = 1) -> None:
    process = runs.start("--workers", str(count))
    runs.wait_for_count(process, count)


# -- results ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [None, True, 0, -7, 2**60, 1.5, "", "naïve ✓", [], [1, "a", None], {}, {"a": {"b": [1, 2.5]}}]
)
def test_results_of_every_json_type_come_back_equal(life: qrun.Queue, runs: Supervisors, value: object) -> None:
    start_workers(runs)
    job = lt.echo.enqueue(value)
    assert job.result(timeout=20) == value
    status = job.status()
    assert status.state == "succeeded" and status.result == value and status.has_result
    assert status.attempt == 1 and status.finished_at_ms


def test_a_result_written_before_the_waiter_arrives_is_seen(life: qrun.Queue, runs: Supervisors) -> None:
    start_workers(runs)
    job = lt.echo.enqueue("early")
    wait_until(lambda: job.status().state == "succeeded", 20, "the job to succeed")
    assert job.result(timeout=0) == "early"
    assert job.result(timeout=1) == "early"  # and again: waiting does not consume it


def test_failure_results_carry_type_message_traceback_and_attempts(life: qrun.Queue, runs: Supervisors) -> None:
    start_workers(runs)
    job = lt.boom.enqueue("kaput")
    with pytest.raises(qrun.JobFailed) as failed:
        job.result(timeout=20)
    assert failed.value.type == "ValueError" and failed.value.message == "kaput"
    assert "raise ValueError(message)" in failed.value.traceback
    assert failed.value.attempts == 1 and "no retries left" in failed.value.reason
    status = job.status()
    assert status.state == "dead" and status.error is not None and status.error["type"] == "ValueError"


@pytest.mark.parametrize(("task", "words"), [(lt.unencodable, "not JSON-encodable"), (lt.too_big, "max_result_bytes")])
def test_a_result_that_cannot_be_kept_dead_letters_the_job_with_the_reason(
    life: qrun.Queue, runs: Supervisors, task: qrun.Task, words: str
) -> None:
    start_workers(runs)
    job = task.enqueue()
    with pytest.raises(qrun.JobFailed) as failed:
        job.result(timeout=20)
    assert failed.value.type == "ResultError" and words in failed.value.message
    assert failed.value.attempts == 1  # not retried: the same value would fail again
    [dead] = life.dead_letters()
    assert dead["id"] == job.id and words in dead["dead_reason"]


def test_result_times_out_with_the_state_it_is_in(life: qrun.Queue) -> None:
    job = lt.echo.enqueue(1)  # no worker
    started = time.monotonic()
    with pytest.raises(qrun.JobTimeout, match="queued"):
        job.result(timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2


def test_result_of_a_task_without_results_says_so_at_once(life: qrun.Queue) -> None:
    job = lt.no_result.enqueue(1)
    with pytest.raises(qrun.ConfigurationError, match="keeps no results"):
        job.result(timeout=5)


def test_the_handle_from_an_id_alone_works_in_another_process_view(life: qrun.Queue, runs: Supervisors) -> None:
    job = lt.echo.enqueue({"x": 1})
    again = life.job(job.id)
    assert again.status().state == "queued" and again.status().task == lt.echo.name
    start_workers(runs)
    assert again.result(timeout=20) == {"x": 1}


def test_results_expire_with_the_result_ttl(life: qrun.Queue, runs: Supervisors, client: redis.Redis) -> None:
    start_workers(runs)
    job = lt.echo.enqueue(5)
    assert job.result(timeout=20) == 5
    ttl_ms = client.pttl(life.keys.done(job.id))
    assert 50_000 < ttl_ms <= 60_000  # the queue's result_ttl=60
    assert 50_000 < client.pttl(life.keys.job(job.id)) <= 60_000
    client.delete(life.keys.done(job.id), life.keys.job(job.id))  # what expiry does
    with pytest.raises(qrun.JobNotFound, match="not known"):
        job.status()


# -- status in every state ----------------------------------------------------------------------


def test_status_queued_scheduled_running_retrying_succeeded(
    life: qrun.Queue, runs: Supervisors, tmp_path: Path
) -> None:
    queued = lt.mark.enqueue(1)
    scheduled = lt.mark.enqueue_in(3600, 2)
    assert queued.status().state == "queued"
    later = scheduled.status()
    assert later.state == "scheduled" and later.due_at_ms and later.due_at_ms > time.time() * 1000 + 3_000_000
    bulk = life.enqueue_many(lt.mark, [(n,) for n in range(10, 15)])
    assert all(life.job(job_id).status().state == "queued" for job_id in bulk)
    start_workers(runs)
    assert queued.result(timeout=20) == 1
    running = lt.sleeper.enqueue(30, 3)
    # A worker holds it from the read (pending); its record (start time) follows with the job's start.
    wait_until(lambda: running.status().started_at_ms is not None, 20, "the sleeper to start")
    status = running.status()
    assert status.state == "running"
    assert status.worker and status.started_at_ms and status.deliveries == 1
    assert all(life.job(job_id).result(timeout=20) == n for job_id, n in zip(bulk, range(10, 15)))


def test_status_retrying_then_dead(life: qrun.Queue, client: redis.Redis) -> None:
    from qrun import codec

    member = codec.encode_delayed_member("r" * 32, lt.mark.name, b"[1]", b"{}", 2, 1)
    client.zadd(life.keys.delayed, {member: int(time.time() * 1000) + 60_000})
    status = life.job("r" * 32).status()
    assert status.state == "retrying" and status.attempt == 2


def test_status_of_a_job_from_another_language_by_plain_xadd(life: qrun.Queue, client: redis.Redis, runs: Supervisors) -> None:
    life.ensure_group()
    client.xadd(life.keys.stream, {"id": "go-job-1", "task": lt.echo.name, "args": "[42]", "kwargs": "{}",
                                   "attempt": "1", "enqueued_at": "0"})
    job = life.job("go-job-1")
    assert job.status().state == "queued"
    start_workers(runs)
    assert job.result(timeout=20) == 42


def test_unknown_and_malformed_ids_say_so(life: qrun.Queue) -> None:
    with pytest.raises(qrun.JobNotFound, match="never"):
        life.job("0" * 32).status()
    for bad in ["", "a b", "x{y}", "*", "a" * 200, 7]:
        with pytest.raises(qrun.InvalidNameError):
            life.job(bad)  # type: ignore[arg-type]


# -- cancel -------------------------------------------------------------------------------------


def test_cancel_a_queued_job_it_never_runs(life: qrun.Queue, runs: Supervisors, tmp_path: Path) -> None:
    job = lt.mark.enqueue(1)
    other = lt.mark.enqueue(2)
    done = job.cancel()
    assert done.done and done.state == "queued" and "never run" in str(done)
    assert job.status().state == "cancelled"
    start_workers(runs)
    assert other.result(timeout=20) == 2
    with pytest.raises(qrun.JobCancelled):
        job.result(timeout=5)
    assert lines(tmp_path / "ran.txt") == ["2"]
    assert life.stats()["cancelled"] == 1


def test_cancel_a_delayed_job_it_never_runs(life: qrun.Queue, runs: Supervisors, tmp_path: Path) -> None:
    job = lt.mark.enqueue_in(0.5, 1)
    assert job.cancel().state == "scheduled"
    start_workers(runs)
    time.sleep(1.5)
    assert lines(tmp_path / "ran.txt") == [] and job.status().state == "cancelled"


def test_cancel_a_running_job_interrupts_it(life: qrun.Queue, runs: Supervisors, tmp_path: Path) -> None:
    start_workers(runs)
    job = lt.sleeper.enqueue(60, 1)
    wait_until(lambda: lines(tmp_path / "started.txt") == ["1"], 20, "the job to start")
    done = job.cancel()
    assert done.done and done.state == "running"
    with pytest.raises(qrun.JobCancelled):
        job.result(timeout=10)
    status = job.status()
    assert status.state == "cancelled" and status.interrupted is True
    assert lines(tmp_path / "ran.txt") == []  # it never got past the sleep
    after = lt.mark.enqueue(2)  # the worker lives on
    assert after.result(timeout=20) == 2


def test_a_job_that_ignores_cancel_is_killed_after_the_grace_period(
    life: qrun.Queue, runs: Supervisors, tmp_path: Path
) -> None:
    process = runs.start("--workers", "1", "--cancel-grace", "1")
    runs.wait_for_count(process, 1)
    job = lt.stubborn.enqueue(60)
    wait_until(lambda: lines(tmp_path / "started.txt") == ["stubborn"], 20, "the job to start")
    job.cancel()
    with pytest.raises(qrun.JobCancelled):
        job.result(timeout=20)
    assert lines(tmp_path / "ignored.txt") == ["cancel"]
    wait_until(lambda: "was cancelled and still ran" in runs.log(), 10, "the kill to be logged", runs.log)


def test_cancel_of_a_settled_job_says_so(life: qrun.Queue, runs: Supervisors) -> None:
    start_workers(runs)
    job = lt.echo.enqueue(1)
    job.result(timeout=20)
    done = job.cancel()
    assert not done.done and done.state == "succeeded" and "already succeeded" in str(done)
    with pytest.raises(qrun.JobNotFound):
        life.job("f" * 32).cancel()


# -- progress -----------------------------------------------------------------------------------


def test_progress_is_stored_and_published(life: qrun.Queue, runs: Supervisors, client: redis.Redis) -> None:
    start_workers(runs)
    pubsub = client.pubsub()
    try:
        job_id_holder: list[str] = []
        pubsub.psubscribe(f"{life.prefix}:events:job:*")
        pubsub.get_message(timeout=1)
        job = lt.reports.enqueue(3, 0.3)
        job_id_holder.append(job.id)
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(seen) < 3:
            message = pubsub.get_message(timeout=1)
            if message and message["type"] == "pmessage":
                event = json.loads(message["data"])
                if event["event"] == "progress":
                    seen.append(event)
                    if len(seen) == 2:
                        status = job.status()
                        assert status.state == "running" and status.progress is not None
                        assert status.progress_note and status.progress_note.startswith("step")
        assert [event["progress"] for event in seen] == pytest.approx([1 / 3, 2 / 3, 1.0])
        assert seen[-1]["note"] == "step 3/3" and seen[-1]["fields"] == {"step": 3}
        assert job.result(timeout=20) == "reported"
    finally:
        pubsub.close()


def test_progress_in_a_tight_loop_is_rate_limited(life: qrun.Queue, runs: Supervisors) -> None:
    start_workers(runs)
    job = lt.tight_progress.enqueue(100_000)
    written = job.result(timeout=60)
    assert 1 <= written < 100  # 100 000 calls, a handful of writes


def test_waiters_block_on_the_server_instead_of_polling(life: qrun.Queue, runs: Supervisors, client: redis.Redis) -> None:
    waiters = 1_000
    jobs = [lt.echo.enqueue(n) for n in range(waiters)]
    client.config_resetstat()
    results: dict[int, object] = {}

    def wait(n: int) -> None:
        results[n] = jobs[n].result(timeout=60)

    threads = [threading.Thread(target=wait, args=(n,)) for n in range(waiters)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every waiter blocked for a second: a poller would have sent thousands
    stats = client.info("commandstats")
    idle_calls = sum(value["calls"] for key, value in stats.items() if key in ("cmdstat_blmove", "cmdstat_lindex", "cmdstat_hgetall"))
    assert idle_calls <= 2 * waiters
    start_workers(runs)
    for thread in threads:
        thread.join(timeout=60)
    assert results == {n: n for n in range(waiters)}
    stats = client.info("commandstats")
    assert stats["cmdstat_blmove"]["calls"] <= 2 * waiters  # one per waiter, plus the odd retry


def test_results_really_expire(life: qrun.Queue, runs: Supervisors) -> None:
    start_workers(runs)
    job = lt.short_lived.enqueue(9)
    assert job.result(timeout=20) == 9
    wait_until(lambda: not life.redis.exists(life.keys.done(job.id)), 5, "the result to expire")
    with pytest.raises(qrun.JobNotFound):
        job.status()


def test_cancel_publishes_a_cancelled_event(url: str, client: redis.Redis) -> None:
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(f"{lt.evented.prefix}:events:all")
        pubsub.get_message(timeout=1)
        job = lt.evented_mark.enqueue(1)
        assert job.cancel().done
        events = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(e["event"] == "cancelled" for e in events):
            message = pubsub.get_message(timeout=0.5)
            if message and message["type"] == "message":
                events += json.loads(message["data"])
        [cancelled] = [event for event in events if event["event"] == "cancelled"]
        assert cancelled["job"] == job.id and cancelled["interrupted"] is False
    finally:
        pubsub.close()
        lt.evented.close()


@pytest.mark.parametrize("keeps_data", [True, False])
def test_a_waiter_whose_server_restarts_reconnects_and_gets_the_result_or_a_clear_error(
    tmp_path: Path, keeps_data: bool
) -> None:
    from qrun.embedded import EmbeddedValkey
    from qrun.lifecycle import records

    data = tmp_path / "data"
    data.mkdir()
    server = EmbeddedValkey(data_dir=str(data), appendonly=True).start()
    restarted: EmbeddedValkey | None = None
    queue = qrun.Queue("restart-wait", server.url, result_ttl=60)
    try:
        job = queue.enqueue("tests.anything", 1)
        got: list[object] = []

        def wait() -> None:
            try:
                got.append(job.result(timeout=20))
            except qrun.QrunError as error:
                got.append(error)

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.5)  # blocked on the server
        server.stop(kill=True, keep_data=True)
        time.sleep(0.5)
        if not keeps_data:
            for path in data.iterdir():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        restarted = EmbeddedValkey(port=server.port, data_dir=str(data), appendonly=True).start()
        if keeps_data:  # the worker's write, after the restart
            records.record(queue, job.id, 60_000, records.succeeded_outcome(b'"after"', 1, 1), state="succeeded")
        waiter.join(timeout=30)
        assert not waiter.is_alive()
        if keeps_data:
            assert got == ["after"]
        else:  # the job is gone with the data: said at once, not guessed, not waited out
            [error] = got
            assert isinstance(error, qrun.JobNotFound) and "no longer knows" in str(error)
    finally:
        queue.close()
        if restarted is not None:
            restarted.stop()
        server.stop()


def test_status_and_cancel_of_a_job_waiting_to_retry(life: qrun.Queue, runs: Supervisors) -> None:
    start_workers(runs)
    job = lt.retry_later.enqueue(3600)
    wait_until(lambda: job.status().last_error is not None, 20, "the job to wait for its retry")
    status = job.status()
    assert status.attempt == 2 and status.due_at_ms and status.last_error == "Retry: not yet"
    done = job.cancel()
    assert done.done and done.state == "retrying"
    assert job.status().state == "cancelled" and life.redis.zcard(life.keys.delayed) == 0


def test_a_job_cancelled_while_waiting_in_a_workers_batch_is_dropped_before_it_starts(
    life: qrun.Queue, make_worker: Callable[..., Worker], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    client: redis.Redis,
) -> None:
    """The worker holds [canceller, target] in one batch; the canceller cancels the target and
    signals the worker as its supervisor would: the handler drops the target unstarted."""
    monkeypatch.setenv("QRUN_TEST_OUT", str(tmp_path))
    target = lt.mark.enqueue(1)
    life.redis.delete(life.keys.stream)
    life.ensure_group()
    with client.pipeline(transaction=True) as pipe:  # one batch: the canceller, then the target
        for job_id, task, args in [("canceller-1", lt.cancel_then_signal, json.dumps([target.id])),
                                   (target.id, lt.mark, "[1]"), ("after-1", lt.mark, "[2]")]:
            pipe.xadd(life.keys.stream, {"id": job_id, "task": task.name, "args": args, "kwargs": "{}",
                                         "attempt": "1", "enqueued_at": "0"})
        pipe.execute()
    worker = make_worker([life])
    previous = signal.signal(CANCEL_SIGNAL, worker.on_cancel)
    try:
        worker._prefetch = 10  # noqa: SLF001 - read all three at once, as a warmed-up worker does
        worker._fetch_and_run()  # noqa: SLF001
        worker._wire.flush()  # noqa: SLF001
    finally:
        signal.signal(CANCEL_SIGNAL, previous)
    assert lines(tmp_path / "ran.txt") == ["canceller"] or lines(tmp_path / "ran.txt") == ["canceller", "2"]
    status = target.status()
    assert status.state == "cancelled" and status.interrupted is False
    with pytest.raises(qrun.JobCancelled):
        target.result(timeout=1)
    assert client.zcard(life.keys.cancel_entries) == 0 and client.zcard(life.keys.cancelled) == 0
    assert client.xpending(life.keys.stream, "workers")["pending"] == 0
    assert life.job("after-1").status().state in ("queued", "succeeded")  # handed back or run: never lost


def test_a_cancelled_unique_job_frees_its_claim(life: qrun.Queue) -> None:
    first = lt.unique_mark.enqueue(1)
    assert first.cancel().done
    again = lt.unique_mark.enqueue(1)
    assert not again.duplicate and again.id != first.id


def test_a_cancelled_unique_job_frees_its_claim_even_when_cancelled_without_the_app(
    life: qrun.Queue, subprocess_env: dict[str, str]
) -> None:
    import subprocess
    import sys

    from tests.supervisors import ROOT

    first = lt.unique_mark.enqueue(2)
    done = subprocess.run([sys.executable, "-m", "qrun", "cancel", first.id], cwd=ROOT, env=subprocess_env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not lt.unique_mark.enqueue(2).duplicate


def test_waiting_on_an_id_alone_ends_at_once_for_a_job_that_keeps_no_outcome(life: qrun.Queue, runs: Supervisors) -> None:
    start_workers(runs)
    dead = lt.untracked_boom.enqueue()
    wait_until(lambda: life.stats()["dead"] == 1, 20, "the job to die")
    started = time.monotonic()
    with pytest.raises(qrun.JobFailed, match="nobody keeps this"):
        life.job(dead.id).result()  # no timeout: it must not block for ever
    gone = lt.no_result.enqueue(5)
    assert gone  # runs and leaves no record
    wait_until(lambda: life.stats()["succeeded"] >= 1, 20, "the job to succeed")
    with pytest.raises(qrun.JobNotFound, match="without keeping a result"):
        life.job(gone.id).result()
    assert time.monotonic() - started < 5


def test_cancel_events_go_out_on_a_queue_without_events_too(life: qrun.Queue, client: redis.Redis) -> None:
    assert not life.events
    job = lt.mark.enqueue(1)
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(f"{life.prefix}:events:job:{job.id}")
        pubsub.get_message(timeout=1)
        job.cancel()
        message = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (message is None or message["type"] != "message"):
            message = pubsub.get_message(timeout=0.5)
        assert message is not None and json.loads(message["data"])["event"] == "cancelled"
    finally:
        pubsub.close()
