"""The bench suite still runs (qrun and the raw limit only, smallest sizes): no figures are
asserted, only that every scenario produces its rows. Speed is measured in benches/, not here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_bench_prints_a_row_for_every_scenario(subprocess_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benches", "--quick", "--systems", "qrun", "--url", subprocess_env["QRUN_URL"]],
        cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    scenarios = {row.split("|")[1].strip() for row in rows}
    assert {"enqueue one: p50", "bulk enqueue", "end to end, 2 workers, 20,000 jobs", "enqueue-to-start p50 (idle)",
            "RSS per worker", "codec: decode read (per entry, batch of 500)",
            "result round trip p50 (idle, 10 ms apart)"} <= scenarios
    assert all(row.split("|")[3].strip() not in ("", "n/a") for row in rows), rows
