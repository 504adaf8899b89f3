"""The supervisor as a real `qrun run` subprocess: time limits, recycling, signals, hung
workers, bad settings and `qrun workers`.

Every test is bounded by wait loops with deadlines. The `runs` fixture starts supervisors
in sessions of their own and, when the test ends, freezes each supervisor, collects its
workers (they live in process groups of their own), and kills them all by pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import qrun

from tests import tasks
from tests.supervisors import ROOT, Supervisors, lines, wait_until

TARGET = "tests.tasks:limits_queue"


@pytest.fixture
def runs(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Supervisors]:
    tasks.limits_queue.close()
    started = Supervisors(subprocess_env, tmp_path, TARGET)
    yield started
    started.stop_all()
    tasks.limits_queue.close()


@pytest.fixture
def limits(url: str) -> Iterator[qrun.Queue]:
    """The test-side handle on the limits queue (its connection closed at the end)."""
    yield tasks.limits_queue
    tasks.limits_queue.close()


def whoami_pids(out: Path) -> dict[int, int]:
    """job number -> pid of the worker that ran it (the last run, if it ran twice)."""
    return {int(n): int(pid) for n, pid in (line.split() for line in lines(out / "whoami.txt"))}


# -- 1, 2: time limits -----------------------------------------------------------------------


def test_a_soft_time_limit_raises_time_limit_exceeded_inside_the_job(
    runs: Supervisors, limits: qrun.Queue, tmp_path: Path
) -> None:
    job = tasks.soft_limited.enqueue(60.0)
    supervisor = runs.start("--workers", "1", "--burst")
    assert runs.wait_exit(supervisor, 20) == 0, runs.log()  # long before the 60 s sleep ends

    assert lines(tmp_path / "soft_caught.txt") == ["TimeLimitExceeded: ran past its soft time limit of 0.3s"]
    assert lines(tmp_path / "soft_finished.txt") == []
    [dead] = limits.dead_letters()
    assert dead["id"] == job.id
    assert dead["dead_error_type"] == "TimeLimitExceeded"
    assert dead["dead_error"] == "ran past its soft time limit of 0.3s"
    assert dead["dead_reason"] == "failed 1 time; no retries left"
    assert "was killed by the supervisor" not in runs.log()  # the worker lived on
    assert f"1 worker(s) on qrun:{limits.name}" in runs.log()  # the prefix tells tenants apart


def test_a_hard_time_limit_kills_the_worker_and_counts_as_a_failed_attempt(
    runs: Supervisors, limits: qrun.Queue, tmp_path: Path
) -> None:
    job = tasks.hard_limited.enqueue(30.0)
    limits.enqueue_many(tasks.whoami, [(n,) for n in range(5)])
    supervisor = runs.start("--workers", "1", "--burst", "--grace-period", "2")
    assert runs.wait_exit(supervisor, 25) == 0, runs.log()
    log = runs.log()

    attempts = [line.split() for line in lines(tmp_path / "hard_started.txt")]
    assert [attempt for attempt, _ in attempts] == ["1", "2"]  # retried once (retries=1), then dead
    first_pid, second_pid = (int(pid) for _, pid in attempts)
    assert first_pid != second_pid  # each attempt's worker was killed
    assert lines(tmp_path / "hard_finished.txt") == []
    assert log.count("was killed by the supervisor") == 2, log
    assert log.count("ran past its time limit of 0.5s") == 2, log
    [dead] = limits.dead_letters()
    assert dead["id"] == job.id and dead["attempt"] == "2"
    assert dead["dead_error_type"] == "TimeLimitExceeded"
    assert dead["dead_error"] == "killed after running past its time limit of 0.5s"
    assert dead["dead_reason"] == "failed 2 times; no retries left"
    ran_by = whoami_pids(tmp_path)
    assert sorted(ran_by) == list(range(5))  # a replacement worker kept serving
    assert first_pid not in ran_by.values()
    stats = limits.stats()
    assert (stats["succeeded"], stats["retried"], stats["dead_lettered"], stats["in_flight"]) == (5, 1, 1, 0)
    assert stats["redelivered"] == 0  # settled as a failed attempt, not handed back by the claimer


# -- 3, 4: recycling --------------------------------------------------------------------------


def test_max_jobs_per_worker_recycles_workers_and_every_job_is_done(
    runs: Supervisors, limits: qrun.Queue, tmp_path: Path
) -> None:
    jobs = 300
    limits.enqueue_many(tasks.whoami, [(n,) for n in range(jobs)])
    supervisor = runs.start("--workers", "2", "--burst", "--max-jobs-per-worker", "50")
    assert runs.wait_exit(supervisor, 25) == 0, runs.log()
    log = runs.log()

    done = lines(tmp_path / "whoami.txt")
    assert sorted(int(line.split()[0]) for line in done) == list(range(jobs))  # each once
    pids = {int(line.split()[1]) for line in done}
    # ~50-55 jobs each (a batch in progress is finished first), so at least 300 / 2 / 64 generations
    assert len(pids) >= 4, pids
    assert "recycles after" in log and "(--max-jobs-per-worker)" in log
    assert "left to be recycled after" in log
    per_worker = [sum(1 for line in done if int(line.split()[1]) == pid) for pid in pids]
    assert max(per_worker) <= 2 * 55, per_worker
    assert limits.stats()["succeeded"] == jobs


def test_max_memory_per_worker_recycles_between_jobs_and_every_job_still_completes(
    runs: Supervisors, limits: qrun.Queue, tmp_path: Path
) -> None:
    jobs = 20
    limits.enqueue_many(tasks.whoami, [(n,) for n in range(jobs)])
    runs.start("--workers", "1", "--max-memory-per-worker", "1")
    wait_until(lambda: len(lines(tmp_path / "whoami.txt")) >= jobs, 10, "every job to run", runs.log)
    log = runs.log()
    assert sorted(int(line.split()[0]) for line in lines(tmp_path / "whoami.txt")) == list(range(jobs))
    assert "(--max-memory-per-worker 1)" in log and "left to be recycled after" in log
    assert len({line.split()[1] for line in lines(tmp_path / "whoami.txt")}) >= 2


def test_a_worker_that_grew_past_max_memory_per_worker_is_replaced_between_jobs(
    runs: Supervisors, limits: qrun.Queue, tmp_path: Path
) -> None:
    supervisor = runs.start("--workers", "1", "--max-memory-per-worker", "80")
    [grower] = runs.wait_for_workers(supervisor, lambda pids: len(pids) == 1, 15, "the worker")
    tasks.hoard_memory.enqueue(120)
    [fresh] = runs.wait_for_workers(
        supervisor, lambda pids: len(pids) == 1 and grower not in pids, 15, "the grown worker to be replaced"
    )
    assert lines(tmp_path / "hoarded.txt") == [str(grower)]  # it finished its job first
    log = runs.log()
    assert f"worker {grower} recycles at" in log and "(--max-memory-per-worker 80)" in log
    assert f"worker {grower} left to be recycled after 1 job(s); replacing it" in log
    tasks.whoami.enqueue(1)
    wait_until(lambda: whoami_pids(tmp_path).get(1) == fresh, 10, "the new worker to serve a job", runs.log)
    assert runs.worker_pids(supervisor) == {fresh}  # a fresh worker under the limit stays
    stats = limits.stats()
    assert (stats["succeeded"], stats["in_flight"], stats["ready"], stats["redelivered"]) == (2, 0, 0, 0)


# -- visibility of what a live worker holds -----------------------------------------------------


@pytest.fixture
def short_visibility(url: str) -> Iterator[qrun.Queue]:
    yield tasks.short_visibility_queue
    tasks.short_visibility_queue.close()


def test_a_job_finished_earlier_in_a_batch_is_not_redelivered_while_a_slow_job_of_that_batch_runs(
    runs: Supervisors, short_visibility: qrun.Queue, tmp_path: Path
) -> None:
    # Prefetch starts at 1 and doubles after each full batch of fast jobs (and drops to 1
    # after a slow one): reads of 1, 2, then 4 entries, so the third read holds a fast job and
    # then a slow one (4, then again 9), and the fast one finishes first. Twice, so a machine
    # too loaded for the prefetch to grow once still shows it.
    slow_s = 2 * short_visibility.visibility_timeout_s
    for first in (0, 5):
        short_visibility.enqueue_many(tasks.visible_mark, [(n,) for n in range(first, first + 4)])
        tasks.visible_mark.enqueue(first + 4, slow_s)
    supervisor = runs.start("--workers", "1", "--burst", target="tests.tasks:short_visibility_queue")
    assert runs.wait_exit(supervisor, 20) == 0, runs.log()

    ran = sorted(int(n) for n in lines(tmp_path / "visible.txt"))
    stats = short_visibility.stats()
    assert (ran, stats["redelivered"]) == (list(range(10)), 0), runs.log()


# -- 5: TTIN / TTOU ----------------------------------------------------------------------------


def test_ttin_adds_a_worker_and_ttou_removes_one_but_never_the_last(
    runs: Supervisors, limits: qrun.Queue, tmp_path: Path
) -> None:
    supervisor = runs.start("--workers", "1")
    [first] = runs.wait_for_workers(supervisor, lambda pids: len(pids) == 1, 15, "the first worker")

    supervisor.send_signal(signal.SIGTTIN)
    runs.wait_for_workers(supervisor, lambda pids: len(pids) == 2, 10, "a second worker after TTIN")
    supervisor.send_signal(signal.SIGTTIN)
    three = runs.wait_for_workers(supervisor, lambda pids: len(pids) == 3, 10, "a third worker after TTIN")
    assert first in three

    supervisor.send_signal(signal.SIGTTOU)
    two = runs.wait_for_workers(supervisor, lambda pids: len(pids) == 2, 10, "one worker fewer after TTOU")
    assert first not in two  # the oldest leaves
    supervisor.send_signal(signal.SIGTTOU)
    [last] = runs.wait_for_workers(supervisor, lambda pids: len(pids) == 1, 10, "one worker after TTOU")

    supervisor.send_signal(signal.SIGTTOU)
    wait_until(lambda: "TTOU: keeping the last worker" in runs.log(), 5, "the refusal to be logged", runs.log)
    time.sleep(1.5)  # room for a wrong removal to show
    assert runs.worker_pids(supervisor) == {last}
    log = runs.log()
    assert "TTIN: 2 worker(s)" in log and "TTIN: 3 worker(s)" in log
    assert "TTOU: 2 worker(s)" in log and "TTOU: 1 worker(s)" in log

    tasks.whoami.enqueue(7)  # and the last worker still serves
    wait_until(lambda: whoami_pids(tmp_path).get(7) == last, 10, "the job to run on the last worker", runs.log)


# -- 6: HUP reload ------------------------------------------------------------------------------

APP = '''
import os
from pathlib import Path

import qrun

VERSION = {version}

queue = qrun.Queue("hupapp")


@queue.task(name="hupapp.mark")
def mark(n: int) -> None:
    Path(os.environ["QRUN_TEST_OUT"], "marker.txt").write_text(f"v{{VERSION}} {{n}} {{os.getpid()}}")
'''


def _write_app(folder: Path, source: str) -> None:
    path = folder / "hupapp.py"
    before = path.stat().st_mtime if path.exists() else 0.0
    path.write_text(source)
    bumped = max(time.time(), before + 2.0)  # a new mtime even within the same second
    os.utime(path, (bumped, bumped))
    shutil.rmtree(folder / "__pycache__", ignore_errors=True)


@pytest.fixture
def app_dir(tmp_path: Path, subprocess_env: dict[str, str], url: str) -> Iterator[tuple[Path, dict[str, str], qrun.Queue]]:
    folder = tmp_path / "app"
    folder.mkdir()
    env = {**subprocess_env, "PYTHONPATH": os.pathsep.join([str(folder), subprocess_env["PYTHONPATH"]])}
    with qrun.Queue("hupapp", url) as producer:
        yield folder, env, producer


def _marker(tmp_path: Path) -> list[str]:
    path = tmp_path / "marker.txt"
    return path.read_text().split() if path.exists() else []


def test_hup_reloads_the_app_code_into_new_workers(
    runs: Supervisors, tmp_path: Path, app_dir: tuple[Path, dict[str, str], qrun.Queue]
) -> None:
    folder, env, producer = app_dir
    _write_app(folder, APP.format(version=1))
    supervisor = runs.start("--workers", "1", target="hupapp:queue", cwd=folder, env=env)
    [old] = runs.wait_for_workers(supervisor, lambda pids: len(pids) == 1, 15, "the first worker")
    producer.enqueue("hupapp.mark", 1)
    wait_until(lambda: _marker(tmp_path)[:2] == ["v1", "1"], 10, "v1 to run job 1", runs.log)
    assert _marker(tmp_path)[2] == str(old)

    _write_app(folder, APP.format(version=2))
    supervisor.send_signal(signal.SIGHUP)
    [new] = runs.wait_for_workers(
        supervisor, lambda pids: len(pids) == 1 and old not in pids, 15, "the old worker to be replaced"
    )
    producer.enqueue("hupapp.mark", 2)
    wait_until(lambda: _marker(tmp_path)[:2] == ["v2", "2"], 10, "v2 to run job 2", runs.log)
    assert _marker(tmp_path)[2] == str(new)
    assert "reloading: new workers on qrun:hupapp" in runs.log()
    assert "reload failed" not in runs.log()


def test_hup_with_a_broken_module_logs_reload_failed_and_the_old_workers_keep_serving(
    runs: Supervisors, tmp_path: Path, app_dir: tuple[Path, dict[str, str], qrun.Queue]
) -> None:
    folder, env, producer = app_dir
    _write_app(folder, APP.format(version=1))
    supervisor = runs.start("--workers", "1", target="hupapp:queue", cwd=folder, env=env)
    [old] = runs.wait_for_workers(supervisor, lambda pids: len(pids) == 1, 15, "the first worker")

    _write_app(folder, APP.format(version=2) + "\ndef broken(:\n")
    supervisor.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload failed" in runs.log(), 10, "the failed reload to be logged", runs.log)
    assert "SyntaxError" in runs.log()
    producer.enqueue("hupapp.mark", 1)
    wait_until(lambda: _marker(tmp_path)[:2] == ["v1", "1"], 10, "the old code to run job 1", runs.log)
    assert _marker(tmp_path)[2] == str(old)
    assert runs.worker_pids(supervisor) == {old}

    _write_app(folder, APP.format(version=3))  # fixed: the next HUP reloads
    supervisor.send_signal(signal.SIGHUP)
    runs.wait_for_workers(supervisor, lambda pids: len(pids) == 1 and old not in pids, 15, "a new worker")
    producer.enqueue("hupapp.mark", 2)
    wait_until(lambda: _marker(tmp_path)[:2] == ["v3", "2"], 10, "v3 to run job 2", runs.log)


# -- 7: hung workers ---------------------------------------------------------------------------


def test_a_worker_that_stops_polling_is_killed_as_hung_and_replaced(
    runs: Supervisors, limits: qrun.Queue, tmp_path: Path
) -> None:
    supervisor = runs.start("--workers", "1", "--hung-worker-timeout", "11")
    [frozen] = runs.wait_for_workers(supervisor, lambda pids: len(pids) == 1, 15, "the worker")
    tasks.whoami.enqueue(1)
    wait_until(lambda: 1 in whoami_pids(tmp_path), 10, "the worker to serve a job", runs.log)
    os.kill(frozen, signal.SIGSTOP)
    stopped_at = time.monotonic()

    [fresh] = runs.wait_for_workers(
        supervisor, lambda pids: len(pids) == 1 and frozen not in pids, 20, "the hung worker to be replaced"
    )
    assert 10 <= time.monotonic() - stopped_at <= 20
    log = runs.log()
    assert f"worker {frozen} was killed by the supervisor" in log
    assert "has not polled the server for" in log and "(hung?)" in log
    tasks.whoami.enqueue(2)
    wait_until(lambda: whoami_pids(tmp_path).get(2) == fresh, 10, "the new worker to serve a job", runs.log)


# -- 8: bad values ---------------------------------------------------------------------------------


def test_a_hung_worker_timeout_below_the_read_block_is_refused_naming_the_flag(
    subprocess_env: dict[str, str],
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qrun", "run", "--hung-worker-timeout", "1", TARGET],
        cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "--hung-worker-timeout must be a finite number of seconds >= 11, got 1.0" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("flag", "value"), [("--max-jobs-per-worker", "0"), ("--max-memory-per-worker", "0"), ("--grace-period", "-1")]
)
def test_other_bad_runner_values_are_refused_naming_the_flag(
    subprocess_env: dict[str, str], flag: str, value: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qrun", "run", flag, value, TARGET],
        cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 2, result.stderr
    assert flag in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"visibility_timeout": 0}, "visibility_timeout must be a finite number of seconds >= 1, got 0"),
        ({"visibility_timeout": float("inf")}, "visibility_timeout"),
        ({"max_deliveries": 0}, "max_deliveries must be an integer >= 1, got 0"),
        ({"max_deliveries": True}, "max_deliveries"),
        ({"dead_retention": -1}, "dead_retention must be a finite number of seconds >= 0, got -1"),
    ],
)
def test_bad_queue_delivery_settings_raise_configuration_error_naming_the_setting(
    settings: dict[str, object], named: str
) -> None:
    with pytest.raises(qrun.ConfigurationError) as raised:
        qrun.Queue("x", **settings)  # type: ignore[arg-type]
    assert named in str(raised.value)


def test_a_soft_time_limit_not_shorter_than_the_hard_one_is_a_configuration_error() -> None:
    queue = qrun.Queue("x")
    with pytest.raises(qrun.ConfigurationError, match=r"soft_time_limit \(2\.0\) must be shorter than time_limit \(1\.0\)"):
        queue.task(time_limit=1, soft_time_limit=2)(lambda: None)
    with pytest.raises(qrun.ConfigurationError, match="soft_time_limit"):
        queue.task(time_limit=1, soft_time_limit=1)(lambda: None)
    with pytest.raises(qrun.ConfigurationError, match="time_limit must be"):
        queue.task(time_limit=0)(lambda: None)
    assert queue.tasks == {}


# -- 9: qrun workers ---------------------------------------------------------------------------------


def test_qrun_workers_lists_the_running_supervisor_and_the_job_its_worker_runs(
    runs: Supervisors, limits: qrun.Queue, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    supervisor = runs.start("--workers", "1")
    [worker] = runs.wait_for_workers(supervisor, lambda pids: len(pids) == 1, 15, "the worker")
    job = tasks.whoami.enqueue(1, 15.0)
    wait_until(lambda: lines(tmp_path / "whoami_started.txt") != [], 10, "the job to start", runs.log)

    def listing() -> str:
        result = subprocess.run(
            [sys.executable, "-m", "qrun", "workers"],
            cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=30, check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    shown = ""

    def shows_the_job() -> bool:
        nonlocal shown
        shown = listing()
        return job.id in shown

    wait_until(shows_the_job, 10, "`qrun workers` to show the running job", lambda: shown)
    header, columns, row = shown.splitlines()[:3]
    assert header.startswith(f"supervisor {supervisor.pid} on ")
    assert "queues limits" in header and "1 worker," in header
    assert columns.split() == ["host", "supervisor", "worker", "queues", "up", "jobs", "current"]
    cells = row.split()
    assert cells[1:4] == [str(supervisor.pid), str(worker), "limits"]
    assert f"tests.tasks.whoami {job.id} (limits) running for" in row


def test_a_graceful_stop_lets_what_a_job_started_finish_too(runs: Supervisors, limits: qrun.Queue, tmp_path: Path) -> None:
    limits.enqueue(tasks.run_child, 1.5)
    supervisor = runs.start("--workers", "1", "--grace-period", "10")
    wait_until(lambda: len(lines(tmp_path / "child_started.txt")) == 1, 15, "the job to start its child", runs.log)
    time.sleep(0.2)
    supervisor.send_signal(signal.SIGTERM)  # to the worker only, not to its process group
    assert runs.wait_exit(supervisor, 15) == 0
    assert lines(tmp_path / "child_exit.txt") == ["0"], runs.log()
    assert limits.stats()["succeeded"] == 1


def test_a_second_term_stops_at_once_and_hands_the_running_job_back(runs: Supervisors, limits: qrun.Queue, tmp_path: Path) -> None:
    limits.enqueue(tasks.whoami, 1, 20.0)
    supervisor = runs.start("--workers", "1", "--grace-period", "30")
    wait_until(lambda: len(lines(tmp_path / "whoami_started.txt")) == 1, 15, "the long job to start", runs.log)
    supervisor.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    term_again_at = time.monotonic()
    supervisor.send_signal(signal.SIGTERM)  # do not wait 30 s for it
    assert runs.wait_exit(supervisor, 10) == 0
    assert time.monotonic() - term_again_at < 5
    assert lines(tmp_path / "whoami.txt") == []
    stats = limits.stats()
    assert (stats["ready"], stats["in_flight"]) == (1, 0), stats  # handed back, not left pending
    assert "stopping now" in runs.log()
