"""The examples users copy from run as written, against the test server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import qrun

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_plain_example_enqueues_then_a_burst_worker_settles_everything(subprocess_env: dict[str, str]) -> None:
    folder = EXAMPLES / "plain"
    produced = subprocess.run(
        [sys.executable, "produce.py"], cwd=folder, env=subprocess_env, capture_output=True, text=True, timeout=60
    )
    assert produced.returncode == 0, produced.stderr
    assert "enqueued 1000 charges" in produced.stdout
    assert "refused: cannot enqueue tasks.send_email: argument 'subject' is not JSON-encodable" in produced.stdout

    worked = subprocess.run(
        [sys.executable, "-m", "qrun", "--workers", "2", "--burst", "tasks:queue"],
        cwd=folder, env=subprocess_env, capture_output=True, text=True, timeout=60,
    )
    assert worked.returncode == 0, worked.stderr
    assert "sending 'a second later' to a@example.com (attempt 1)" in worked.stdout
    with qrun.Queue("emails", subprocess_env["QRUN_URL"]) as queue:
        stats = queue.stats()
    assert (stats["enqueued"], stats["succeeded"], stats["dead_lettered"]) == (1003, 1003, 0)
