"""`qrun --log-format json` as a real subprocess: every line of its output is one JSON object,
and the lines logged inside jobs, by qrun and by the application's own logger, name the job."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import log_tasks

ROOT = Path(__file__).resolve().parents[2]
JOB_FIELDS = ("job_id", "task", "queue", "attempt")


@pytest.fixture
def queue(url: str) -> Iterator[Any]:
    yield log_tasks.queue
    log_tasks.queue.close()


@pytest.mark.parametrize(
    "args",
    [
        ["--log-format", "json", "--workers", "2", "--burst", "tests.log_tasks:queue"],
        ["--workers", "2", "--log-format", "json", "--burst", "tests.log_tasks:queue"],
        ["run", "--log-format=json", "--workers", "2", "--burst", "tests.log_tasks:queue"],
    ],
)
def test_every_line_is_json_and_lines_inside_jobs_name_the_job(
    queue: Any, subprocess_env: dict[str, str], args: list[str]
) -> None:
    names = ["zoë", "bob", "李", "ann"]
    greeted = {log_tasks.greet.enqueue(name).id: name for name in names}
    doomed = log_tasks.explode.enqueue("kaboom").id
    result = subprocess.run(
        [sys.executable, "-m", "qrun", *args], cwd=ROOT, env=subprocess_env,
        capture_output=True, encoding="utf-8", timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (result.stdout + result.stderr).splitlines()]  # every line, or fail
    for line in lines:
        assert {"time", "level", "logger", "message", "pid"} <= set(line)

    supervisor = [line for line in lines if line["logger"] == "qrun.supervisor"]
    assert supervisor and all(not set(JOB_FIELDS) & set(line) for line in supervisor)
    supervisor_pid = supervisor[0]["pid"]

    charged = [line for line in lines if line["logger"] == "myapp.billing" and line["level"] == "INFO"]
    assert {line["job_id"]: line["customer"] for line in charged} == greeted
    for line in charged:
        assert (line["task"], line["queue"], line["attempt"], line["amount_cents"]) == (
            "tests.log_tasks.greet", "logs", 1, 1250,
        )
        assert line["message"] == f"charged {greeted[line['job_id']]}"
        assert line["pid"] != supervisor_pid  # a worker process

    warned = [line for line in lines if line["logger"] == "myapp.billing" and line["level"] == "WARNING"]
    assert [(line["job_id"], line["task"], line["attempt"]) for line in warned] == [
        (doomed, "tests.log_tasks.explode", 1), (doomed, "tests.log_tasks.explode", 2),
    ]
    settled = [line for line in lines if line["logger"] == "qrun.settle"]
    assert [(line["level"], line["job_id"], line["attempt"]) for line in settled] == [
        ("WARNING", doomed, 1), ("ERROR", doomed, 2),
    ]
    assert "dead-lettered" in settled[1]["message"]
    assert settled[1]["traceback"].rstrip().endswith("RuntimeError: kaboom")


def test_text_stays_the_default_and_names_the_job(queue: Any, subprocess_env: dict[str, str]) -> None:
    job_id = log_tasks.greet.enqueue("zoë").id
    result = subprocess.run(
        [sys.executable, "-m", "qrun", "--burst", "tests.log_tasks:queue"], cwd=ROOT, env=subprocess_env,
        capture_output=True, encoding="utf-8", timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f" INFO myapp.billing [job {job_id}]: charged zoë\n" in result.stderr
    assert " INFO qrun.supervisor: qrun supervisor " in result.stderr
