"""Operating queues from the CLI as a subprocess: settings stored in the server (and applied
by running supervisors without a restart), list/info/purge/delete, push/pop/ack/extend,
health; with and without --json; bad input as one line and a non-zero exit."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import qrun
import redis

from qrun import settings
from tests import admin_tasks
from tests.supervisors import Supervisors, lines, run_cli, supervisors_of, wait_until


cli = run_cli


@pytest.fixture
def runs(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Supervisors]:
    with supervisors_of(admin_tasks.queue, subprocess_env, tmp_path, "tests.admin_tasks:queue") as started:
        yield started


def test_create_info_list_update_purge_delete(url: str, subprocess_env: dict[str, str], client: redis.Redis) -> None:
    created = cli(subprocess_env, "queue", "create", "emails", "--visibility-timeout", "60s",
                  "--max-deliveries", "5", "--dead-retention", "7d")
    assert created.returncode == 0, created.stderr
    assert "created queue emails (settings version 1)" in created.stdout and "dead_retention=604800" in created.stdout
    again = cli(subprocess_env, "queue", "create", "emails")
    assert again.returncode == 1 and "already has settings" in again.stderr

    info = json.loads(cli(subprocess_env, "queue", "info", "emails", "--json").stdout)
    assert info["settings"]["visibility_timeout"] == {"value": 60.0, "source": "server"}
    assert info["settings"]["retries"]["source"] == "code" and info["counts"]["ready"] == 0
    shown = cli(subprocess_env, "queue", "info", "emails")
    assert "visibility_timeout" in shown.stdout and "(server)" in shown.stdout

    updated = cli(subprocess_env, "queue", "update", "emails", "--max-deliveries", "10")
    assert updated.returncode == 0 and "settings version 2" in updated.stdout

    pushed = cli(subprocess_env, "push", "emails", "app.send_email", "--kwargs", '{"to": "a@b.c"}')
    assert pushed.returncode == 0, pushed.stderr
    listed = json.loads(cli(subprocess_env, "queue", "list", "--json").stdout)
    assert [(row["queue"], row["ready"], row["settings_version"]) for row in listed] == [("emails", 1, 2)]
    assert "emails" in cli(subprocess_env, "queue", "list").stdout

    refused = cli(subprocess_env, "queue", "purge", "emails")  # no terminal, no --yes
    assert refused.returncode == 1 and "without --yes" in refused.stderr and client.xlen("{qrun:emails}:stream") == 1
    purged = cli(subprocess_env, "queue", "purge", "emails", "--yes")
    assert purged.returncode == 0 and "1 ready" in purged.stdout and client.xlen("{qrun:emails}:stream") == 0
    assert json.loads(cli(subprocess_env, "queue", "info", "emails", "--json").stdout)["settings_version"] == 2

    cli(subprocess_env, "push", "emails", "app.send_email")
    kept = cli(subprocess_env, "queue", "delete", "emails")
    assert kept.returncode == 1 and "--force" in kept.stderr
    deleted = cli(subprocess_env, "queue", "delete", "emails", "--force")
    assert deleted.returncode == 0 and "deleted queue emails" in deleted.stdout
    assert client.keys("{qrun:emails}*") == []


def test_unknown_queues_and_bad_values_are_one_line_errors_that_change_nothing(
    url: str, subprocess_env: dict[str, str], client: redis.Redis
) -> None:
    cli(subprocess_env, "queue", "create", "known")
    for args in (["queue", "info", "nope"], ["queue", "update", "nope", "--retries", "1"], ["push", "nope", "t.x"],
                 ["pop", "nope"], ["ack", "nope", "1-0"], ["queue", "purge", "nope", "--yes"]):
        done = cli(subprocess_env, *args)
        assert done.returncode == 1 and "no queue 'nope'" in done.stderr and "known" in done.stderr, args
        assert "Traceback" not in done.stderr
    for args, words in [
        (["queue", "update", "known", "--visibility-timeout", "soon"], "invalid duration"),
        (["queue", "update", "known", "--visibility-timeout", "0.5"], "visibility_timeout"),
        (["queue", "update", "known", "--backoff-base", "10", "--backoff-cap", "1"], "backoff_cap"),
        (["push", "known", "t.x", "--kwargs", "{not json"], "not valid JSON"),
        (["push", "known", "t.x", "--args", '{"a": 1}'], "JSON array"),
        (["push", "known", "bad task"], "task name"),
    ]:
        done = cli(subprocess_env, *args)
        assert done.returncode != 0 and words in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
    assert client.hget("{qrun:known}:settings", "version") == b"1"
    assert client.xlen("{qrun:known}:stream") == 0


def test_pop_ack_extend_keep_the_delivery_guarantee(url: str, subprocess_env: dict[str, str], client: redis.Redis) -> None:
    cli(subprocess_env, "queue", "create", "hand", "--visibility-timeout", "2s")
    for n in range(3):
        cli(subprocess_env, "push", "hand", "app.work", "--args", f"[{n}]")
    popped = json.loads(cli(subprocess_env, "pop", "hand", "--count", "2", "--json").stdout)
    assert [job["args"] for job in popped] == [[0], [1]]
    first, second = (job["receipt"] for job in popped)
    shown = cli(subprocess_env, "pop", "hand")
    assert shown.returncode == 0 and "receipt" in shown.stdout and "[2]" in shown.stdout
    assert cli(subprocess_env, "pop", "hand").returncode == 1  # nothing ready

    acked = cli(subprocess_env, "ack", "hand", first)
    assert acked.returncode == 0 and f"acked {first}" in acked.stdout
    twice = cli(subprocess_env, "ack", "hand", first)
    assert twice.returncode == 1 and "not pending" in twice.stderr
    extended = cli(subprocess_env, "extend", "hand", second, "60")
    assert extended.returncode == 0 and "hidden until" in extended.stdout
    assert cli(subprocess_env, "extend", "hand", "9-9", "60").returncode == 1

    # the claimer (any supervisor's) gives back what was not acked, not what was extended
    from qrun import recovery

    with qrun.Queue("hand", url, visibility_timeout=2) as queue:
        time.sleep(2.2)
        done = recovery.reclaim(queue)
        assert done.redelivered == 1  # the third job, never acked nor extended
        again = json.loads(cli(subprocess_env, "pop", "hand", "--json").stdout)
        assert [job["args"] for job in again] == [[2]] and again[0]["deliveries"] == 2
    assert client.xpending("{qrun:hand}:stream", settings.CONSUMER_GROUP)["pending"] == 2


def test_a_settings_update_reaches_running_supervisors_and_workers_without_a_restart(
    url: str, runs: Supervisors, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """The code says retries=0; the server is told retries=2 while workers run: the next failing
    job runs three times, and the supervisor logs that the server overrides the code."""
    supervisor = runs.start("--workers", "2")
    runs.wait_for_count(supervisor, 2)
    created = cli(subprocess_env, "queue", "create", "admin", "--retries", "2", "--backoff-base", "0.05", "--backoff-cap", "0.1")
    assert created.returncode == 0, created.stderr
    time.sleep(settings.SETTINGS_CHECK_INTERVAL_S + 1)  # a few seconds: every process looked again
    admin_tasks.fails.enqueue(7)
    wait_until(lambda: len(lines(tmp_path / "fails.txt")) == 3, 30, "three attempts", runs.log)
    wait_until(lambda: admin_tasks.queue.stats()["dead"] == 1, 30, "the job to die", runs.log)
    assert len(lines(tmp_path / "fails.txt")) == 3
    log = runs.log()
    assert "retries=2 from the server's settings (version 1) overrides 0 from the code" in log
    assert "settings version 1 applied" in log


def test_health_says_what_is_wrong_and_exits_by_it(url: str, runs: Supervisors, subprocess_env: dict[str, str]) -> None:
    admin_tasks.queue.ensure_group()
    admin_tasks.queue.enqueue(admin_tasks.note, 1)
    down = cli(subprocess_env, "health", "--queue", "admin")
    assert down.returncode == 1 and "FAIL  admin: workers: no live supervisor serves it" in down.stderr
    producer = cli(subprocess_env, "health", "--queue", "admin", "--no-workers", "--json")
    assert producer.returncode == 0 and json.loads(producer.stdout)["ok"] is True
    time.sleep(1.1)
    lagging = cli(subprocess_env, "health", "--queue", "admin", "--no-workers", "--max-lag", "1s")
    assert lagging.returncode == 1 and "oldest ready job waited" in lagging.stderr
    runs.wait_for_count(runs.start("--workers", "1"), 1)
    wait_until(lambda: cli(subprocess_env, "health", "--queue", "admin", "--max-lag", "10s").returncode == 0,
               20, "the queue to be healthy", runs.log)
    everything = json.loads(cli(subprocess_env, "health", "--json").stdout)
    assert everything["ok"] and {check["name"] for check in everything["checks"]} >= {"server", "admin: workers"}
    unreachable = cli({**subprocess_env, "QRUN_URL": "redis://127.0.0.1:1/0"}, "health")
    assert unreachable.returncode == 1 and "server: no answer" in unreachable.stderr


def test_stats_and_workers_print_json_too(url: str, runs: Supervisors, subprocess_env: dict[str, str]) -> None:
    admin_tasks.queue.enqueue(admin_tasks.note, 1)
    stats = json.loads(cli(subprocess_env, "stats", "admin", "--json").stdout)
    assert stats["admin"]["ready"] == 1 and stats["admin"]["enqueued"] == 1
    assert json.loads(cli(subprocess_env, "workers", "--json").stdout) == []
    supervisor = runs.start("--workers", "2")
    runs.wait_for_count(supervisor, 2)
    wait_until(lambda: len(json.loads(cli(subprocess_env, "workers", "--json").stdout)) == 1, 20, "presence", runs.log)
    [record] = json.loads(cli(subprocess_env, "workers", "--json").stdout)
    assert record["pid"] == supervisor.pid and record["queues"] == ["admin"]
