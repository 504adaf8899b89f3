"""Fixtures of the chaos tier: supervisors as real subprocesses, and a report of what each
test measured (jobs, kills, lost, duplicates, seconds), printed at the end of the run.

Every process a test starts is stopped by pid when it ends, the supervisor's workers too
(they run in process groups of their own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.chaos import chaos_tasks
from tests.supervisors import Supervisors
from tests.supervisors import lines as read_lines


@pytest.fixture
def supervisors(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Supervisors]:
    chaos_tasks.queue.close()
    started = Supervisors(subprocess_env, tmp_path, "tests.chaos.chaos_tasks:queue")
    yield started
    started.stop_all()
    chaos_tasks.queue.close()


@pytest.fixture
def lines(tmp_path: Path) -> Callable[[str], list[str]]:
    """The lines the chaos tasks wrote to a file under the test's output directory."""
    return lambda name: read_lines(tmp_path / name)


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record a test's figures for the summary table printed at the end of the run."""

    def add(**figures: object) -> None:
        rows = request.config.stash.setdefault(CHAOS_ROWS, [])
        rows.append((request.node.name, figures))

    return add


CHAOS_ROWS = pytest.StashKey[list]()
