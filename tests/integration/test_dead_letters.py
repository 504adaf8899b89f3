"""`qrun dead list|show|requeue|delete` as real subprocesses, and qrun.deadletters underneath:
filters, JSON, atomic requeue (a requeued job runs once), unique claims, 100 000 dead letters in
batches (interrupted, then rerun), and bad input (one line, non-zero exit, nothing changed)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

import qrun
from qrun import deadletters
from tests import dead_tasks, tasks
from tests.integration.drain import drain

ROOT = Path(__file__).resolve().parents[2]
DEAD = "{qrun:tests}:dead"
STREAM = "{qrun:tests}:stream"


def qrun_cli(*args: str, env: dict[str, str], timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qrun", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout_s, stdin=subprocess.DEVNULL,
    )


def letter(job_id: str, task: str = "tests.tasks.record", args: str = "[1]", attempt: int = 3,
           dead_at_ms: int | None = None) -> dict[str, str]:
    """The fields of a dead letter as a worker writes them (docs/wire-format.md)."""
    return {
        "id": job_id, "task": task, "args": args, "kwargs": "{}", "attempt": str(attempt), "enqueued_at": "1764125000000",
        "dead_reason": "failed 3 times; no retries left", "dead_error_type": "RuntimeError", "dead_error": "boom",
        "dead_traceback": "Traceback (most recent call last):\nRuntimeError: boom\n",
        "dead_at": str(dead_at_ms or time.time_ns() // 1_000_000), "dead_entry_id": "1-1",
    }


def stream_jobs(client: redis.Redis, key: str = STREAM) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in client.xrange(key)]  # type: ignore[misc]


def one_line(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == "", result
    [line] = result.stderr.strip().splitlines()
    return line


# -- list and show -------------------------------------------------------------------------------


def test_list_filters_by_task_and_age_in_text_and_json(client: redis.Redis, subprocess_env: dict[str, str]) -> None:
    old = time.time_ns() // 1_000_000 - 2 * 3600 * 1000
    client.xadd(DEAD, letter("old1", dead_at_ms=old), id=f"{old}-0")  # type: ignore[arg-type]
    client.xadd(DEAD, letter("new1"))  # type: ignore[arg-type]
    client.xadd(DEAD, letter("new2", task="tests.tasks.noop", args="[]"))  # type: ignore[arg-type]

    text = qrun_cli("dead", "list", "tests", env=subprocess_env)
    assert text.returncode == 0, text.stderr
    assert [line.split()[4] for line in text.stdout.splitlines() if "attempt" in line] == ["new2", "new1", "old1"]
    assert "    reason: failed 3 times; no retries left" in text.stdout
    assert "    error:  RuntimeError: boom" in text.stdout

    recent = qrun_cli("dead", "list", "tests", "--since", "1h", "--task", "tests.tasks.record", "--json", env=subprocess_env)
    assert recent.returncode == 0, recent.stderr
    [only] = json.loads(recent.stdout)
    assert (only["id"], only["task"], only["attempt"], only["dead_error"]) == ("new1", "tests.tasks.record", "3", "boom")
    assert only["dead_id"] == client.xrevrange(DEAD, count=2)[1][0].decode()

    limited = qrun_cli("dead", "list", "tests", "--limit", "1", "--json", env=subprocess_env)
    assert [entry["id"] for entry in json.loads(limited.stdout)] == ["new2"]
    assert qrun.Queue("tests").dead_letters(5, task="tests.tasks.noop")[0]["id"] == "new2"


def test_the_old_form_still_lists_with_a_deprecation_note(client: redis.Redis, subprocess_env: dict[str, str]) -> None:
    client.xadd(DEAD, letter("j1"))  # type: ignore[arg-type]
    result = qrun_cli("dead", "tests", "--traceback", env=subprocess_env)
    assert result.returncode == 0, result.stderr
    assert "j1  tests.tasks.record  attempt 3" in result.stdout and "RuntimeError: boom" in result.stdout
    assert result.stderr.strip() == "qrun: 'qrun dead QUEUE' is deprecated; use 'qrun dead list QUEUE'"


def test_show_finds_a_letter_by_dead_id_or_job_id_with_its_traceback(
    client: redis.Redis, subprocess_env: dict[str, str]
) -> None:
    dead_id = client.xadd(DEAD, {**letter("job-7"), "deliveries": "2"}).decode()  # type: ignore[arg-type]
    text = qrun_cli("dead", "show", "tests", dead_id, env=subprocess_env)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == f"dead letter {dead_id} of tests"
    assert "  job:        job-7" in text.stdout and "  deliveries: 2" in text.stdout
    assert "  traceback:\n    Traceback (most recent call last):\n    RuntimeError: boom" in text.stdout
    as_json = qrun_cli("dead", "show", "tests", "job-7", "--json", env=subprocess_env)
    assert as_json.returncode == 0, as_json.stderr
    shown = json.loads(as_json.stdout)
    assert (shown["dead_id"], shown["id"], shown["dead_traceback"]) == (dead_id, "job-7", letter("x")["dead_traceback"])


# -- requeue ---------------------------------------------------------------------------------------


def test_a_requeued_job_runs_once_with_its_attempts_reset(
    client: redis.Redis, subprocess_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QRUN_TEST_OUT", str(tmp_path))  # the in-process worker's tasks write here
    dead_id = client.xadd(DEAD, letter("job-1", args="[41]")).decode()  # type: ignore[arg-type]
    client.xadd(DEAD, letter("job-2", args="[42]", attempt=2))  # type: ignore[arg-type]
    client.xadd(DEAD, letter("job-3", task="tests.tasks.noop", args="[]"))  # type: ignore[arg-type]
    first = qrun_cli("dead", "requeue", "tests", dead_id, "job-2", env=subprocess_env)
    again = qrun_cli("dead", "requeue", "tests", dead_id, env=subprocess_env)  # already moved: nothing to do
    assert (first.returncode, first.stdout.strip()) == (0, "requeued 2 job(s)"), first.stderr
    assert (again.returncode, again.stdout.strip()) == (1, f"requeued 0 job(s); no dead letter with id {dead_id}")
    entries = stream_jobs(client)
    assert [(e[b"id"], e[b"attempt"], e[b"args"]) for e in entries] == [(b"job-1", b"1", b"[41]"), (b"job-2", b"1", b"[42]")]
    assert list(entries[0]) == [b"id", b"task", b"args", b"kwargs", b"attempt", b"enqueued_at"]  # no dead_* fields
    drain(tasks.queue).close()
    assert sorted((tmp_path / "ran.txt").read_text().split()) == ["41", "42"]
    assert [fields[b"id"] for _, fields in client.xrange(DEAD)] == [b"job-3"]  # type: ignore[misc]
    assert tasks.queue.stats()["requeued"] == 2


def test_requeue_by_task_with_keep_attempts_keeps_them(client: redis.Redis, subprocess_env: dict[str, str]) -> None:
    for n in range(3):
        client.xadd(DEAD, letter(f"job-{n}", attempt=n + 2))  # type: ignore[arg-type]
    client.xadd(DEAD, letter("other", task="tests.tasks.noop", args="[]"))  # type: ignore[arg-type]
    result = qrun_cli("dead", "requeue", "tests", "--task", "tests.tasks.record", "--keep-attempts", env=subprocess_env)
    assert (result.returncode, result.stdout.strip()) == (0, "requeued 3 job(s)"), result.stderr
    assert [(e[b"id"], e[b"attempt"]) for e in stream_jobs(client)] == [(b"job-0", b"2"), (b"job-1", b"3"), (b"job-2", b"4")]
    assert client.xlen(DEAD) == 1


def test_a_job_that_died_runs_its_full_retries_again_after_a_requeue(client: redis.Redis, subprocess_env: dict[str, str]) -> None:
    job = tasks.always_fails.enqueue("boom 1")
    drain(tasks.queue).close()
    result = qrun_cli("dead", "requeue", "tests", job.id, env=subprocess_env)
    assert result.stdout.strip() == "requeued 1 job(s)", result.stderr
    drain(tasks.queue).close()
    stats = tasks.queue.stats()  # retries=2: two retries per life, so four in all
    assert (stats["retried"], stats["dead_lettered"], stats["dead"], stats["requeued"]) == (4, 2, 1, 1)
    assert job.status().state == "dead"


def test_entries_that_are_not_jobs_are_skipped_and_reported(client: redis.Redis, subprocess_env: dict[str, str]) -> None:
    dropped = client.xadd(DEAD, {"fields_dropped": "4000", "dead_reason": "malformed entry: too many"}).decode()
    client.xadd(DEAD, letter("good"))  # type: ignore[arg-type]
    result = qrun_cli("dead", "requeue", "tests", "--all", "--yes", env=subprocess_env)
    assert result.returncode == 1
    assert result.stdout.strip() == f"requeued 1 job(s); skipped 1: {dropped} (not a job: missing field 'id')"
    assert client.xlen(DEAD) == 1 and client.xlen(STREAM) == 1


# -- unique claims -------------------------------------------------------------------------------


def test_requeue_respects_a_unique_claim_held_by_another_job_and_takes_it_when_free(
    client: redis.Redis, subprocess_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QRUN_TEST_OUT", str(tmp_path))
    dead_key = "{qrun:dead-ops}:dead"
    dead_id = client.xadd(dead_key, letter("old-job", task="tests.dead_tasks.unique_mail", args='["a@b.c"]')).decode()  # type: ignore[arg-type]
    live = dead_tasks.unique_mail.enqueue("a@b.c")
    claim = next(iter(client.scan_iter(match="{qrun:dead-ops}:unique:*")))

    for extra in ([], ["--app", "tests.dead_tasks:queue"]):  # with or without the app: the claim is seen
        held = qrun_cli("dead", "requeue", "dead-ops", dead_id, *extra, env=subprocess_env)
        assert held.returncode == 1
        assert held.stdout.strip() == f"requeued 0 job(s); skipped 1: {dead_id} (unique claim held by job {live.id})"
    assert client.xlen(dead_key) == 1

    drain(dead_tasks.queue).close()  # the live job succeeds and frees its claim
    assert client.get(claim) is None
    freed = qrun_cli("dead", "requeue", "dead-ops", dead_id, "--app", "tests.dead_tasks:queue", env=subprocess_env)
    assert freed.stdout.strip() == "requeued 1 job(s)", freed.stderr
    assert client.get(claim) == b"old-job" and 0 < client.pttl(claim) <= 600_000  # unique_for=600
    duplicate = dead_tasks.unique_mail.enqueue("a@b.c")
    assert (duplicate.duplicate, duplicate.id) == (True, "old-job")
    drain(dead_tasks.queue).close()
    assert (tmp_path / "mailed.txt").read_text().split() == ["a@b.c", "a@b.c"]  # the live job, then the requeued one


def test_two_dead_copies_of_one_unique_job_requeue_one(client: redis.Redis, url: str) -> None:
    for job_id in ("first", "second"):
        client.xadd("{qrun:dead-ops}:dead", letter(job_id, task="tests.dead_tasks.unique_mail", args='["x@y.z"]'))  # type: ignore[arg-type]
    result = deadletters.requeue(dead_tasks.queue, everything=True)
    assert (result.done, [why for _, why in result.skipped]) == (1, ["unique claim held by job first"])
    dead_tasks.queue.close()


# -- bulk: 100 000 dead letters --------------------------------------------------------------


def test_a_bulk_requeue_of_100_000_interrupted_then_rerun_loses_and_doubles_nothing(
    client: redis.Redis, subprocess_env: dict[str, str]
) -> None:
    total = 100_000
    started = time.perf_counter()
    with client.pipeline(transaction=False) as pipe:
        for n in range(total):
            pipe.xadd(DEAD, letter(f"j{n}", args=f"[{n}]"))  # type: ignore[arg-type]
            if n % 10_000 == 9_999:
                pipe.execute()
    filled = time.perf_counter() - started

    batches = 0

    def interrupt_after_20(looked: int, result: deadletters.BulkResult) -> None:
        nonlocal batches
        batches += 1
        if batches == 20:
            raise KeyboardInterrupt  # what Ctrl+C between two batches does

    with pytest.raises(KeyboardInterrupt):
        deadletters.requeue(tasks.queue, everything=True, on_batch=interrupt_after_20)
    assert (client.xlen(STREAM), client.xlen(DEAD)) == (20 * 500, total - 20 * 500)

    started = time.perf_counter()
    rerun = qrun_cli("dead", "requeue", "tests", "--all", "--yes", env=subprocess_env)
    took = time.perf_counter() - started
    assert (rerun.returncode, rerun.stdout.strip()) == (0, f"requeued {total - 10_000} job(s)"), rerun.stderr
    ids = [fields[b"id"] for _, fields in client.xrange(STREAM)]  # type: ignore[misc]
    assert len(ids) == total and set(ids) == {f"j{n}".encode() for n in range(total)}
    assert client.xlen(DEAD) == 0 and int(client.hget("{qrun:tests}:stats", "requeued") or 0) == total
    print(f"filled {total} dead letters in {filled:.1f}s; requeued {total - 10_000} with the CLI in {took:.1f}s")


# -- delete ------------------------------------------------------------------------------------


def test_delete_by_id_task_and_all(client: redis.Redis, subprocess_env: dict[str, str]) -> None:
    dead_id = client.xadd(DEAD, letter("a")).decode()  # type: ignore[arg-type]
    client.xadd(DEAD, letter("b", task="tests.tasks.noop", args="[]"))  # type: ignore[arg-type]
    client.xadd(DEAD, letter("c"))  # type: ignore[arg-type]
    client.xadd(DEAD, letter("d"))  # type: ignore[arg-type]
    by_id = qrun_cli("dead", "delete", "tests", dead_id, "--yes", env=subprocess_env)
    by_task = qrun_cli("dead", "delete", "tests", "--task", "tests.tasks.noop", "--yes", env=subprocess_env)
    assert (by_id.returncode, by_id.stdout.strip()) == (0, "deleted 1 job(s)"), by_id.stderr
    assert (by_task.returncode, by_task.stdout.strip()) == (0, "deleted 1 job(s)"), by_task.stderr
    assert [fields[b"id"] for _, fields in client.xrange(DEAD)] == [b"c", b"d"]  # type: ignore[misc]
    everything = qrun_cli("dead", "delete", "tests", "--all", "--yes", env=subprocess_env)
    assert (everything.returncode, everything.stdout.strip()) == (0, "deleted 2 job(s)")
    nothing = qrun_cli("dead", "delete", "tests", "--all", "--yes", env=subprocess_env)
    assert (nothing.returncode, nothing.stdout.strip()) == (1, "deleted 0 job(s)")
    assert client.xlen(STREAM) == 0


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["list", "nope"], ["show", "nope", "1-0"], ["requeue", "nope", "--all", "--yes"], ["delete", "nope", "x", "--yes"]],
    ids=lambda command: command[0],
)
def test_an_unknown_queue_is_one_line_naming_the_queues_that_exist(
    command: list[str], client: redis.Redis, subprocess_env: dict[str, str], url: str
) -> None:
    client.xadd(DEAD, letter("a"))  # type: ignore[arg-type]
    client.xadd("{qrun:other}:stream", {"id": "x", "task": "t"})
    line = one_line(qrun_cli("dead", *command, env=subprocess_env))
    assert line == f"qrun: no queue 'nope' under prefix 'qrun' on {url}: queues here: other, tests"
    assert sorted(client.keys()) == [b"{qrun:other}:stream", DEAD.encode()]


def test_unknown_ids_change_nothing_and_exit_1(client: redis.Redis, subprocess_env: dict[str, str]) -> None:
    client.xadd(DEAD, letter("a"))  # type: ignore[arg-type]
    shown = one_line(qrun_cli("dead", "show", "tests", "no-such-job", env=subprocess_env))
    assert shown == "qrun: no dead letter 'no-such-job' in queue 'tests' (prefix 'qrun')"
    for verb in ("requeue", "delete"):
        result = qrun_cli("dead", verb, "tests", "no-such-job", "9-9", "--yes", env=subprocess_env)
        assert result.returncode == 1
        assert result.stdout.strip().endswith("0 job(s); no dead letter with id no-such-job, 9-9")
    assert client.xlen(DEAD) == 1 and client.xlen(STREAM) == 0


def test_bulk_changes_off_a_terminal_without_yes_are_refused(client: redis.Redis, subprocess_env: dict[str, str]) -> None:
    dead_id = client.xadd(DEAD, letter("a")).decode()  # type: ignore[arg-type]
    assert one_line(qrun_cli("dead", "requeue", "tests", "--all", env=subprocess_env)) == (
        "qrun: refusing to requeue every dead letter (1) of tests without --yes (no terminal to ask on)"
    )
    assert one_line(qrun_cli("dead", "delete", "tests", dead_id, env=subprocess_env)) == (
        "qrun: refusing to delete 1 dead letter(s) of tests without --yes (no terminal to ask on)"
    )
    assert client.xlen(DEAD) == 1


def test_a_selection_must_be_exactly_one_of_ids_all_or_task(client: redis.Redis, subprocess_env: dict[str, str]) -> None:
    client.xadd(DEAD, letter("a"))  # type: ignore[arg-type]
    for args in (["requeue", "tests"], ["delete", "tests", "a", "--all", "--yes"]):
        result = qrun_cli("dead", *args, env=subprocess_env)
        assert result.returncode == 2
        assert "name the dead letters: ID..., --all or --task TASK (exactly one)" in result.stderr
    assert client.xlen(DEAD) == 1
