"""Every `qrun` command that talks to a server says in one line why it cannot, and exits non-zero.

Run as real subprocesses, against a closed loopback port and against a wrong password for an
ACL user of the test server. `demo` is left out: when no server answers it starts its own.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from qrun.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]

#: Every command that needs a server, each as a user would type it.
COMMANDS = [
    ["stats", "tests"],
    ["dead", "list", "tests"],
    ["dead", "show", "tests", "1-0"],
    ["dead", "requeue", "tests", "--all", "--yes"],
    ["dead", "delete", "tests", "--all", "--yes"],
    ["workers"],
    ["events", "--timeout", "5"],
    ["run", "tests.tasks:queue"],
    ["tests.tasks:queue"],  # `qrun app:queue`, routed to run
]

#: An ACL user the wrong-password tests log in as.
USER = "qrun-cli-test"


def qrun(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qrun", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def acl_user(client: redis.Redis) -> Iterator[str]:
    """An ACL user with a known password on the test server, removed afterwards (FLUSHALL keeps users)."""
    client.execute_command("ACL", "SETUSER", USER, "on", ">right-password", "~*", "&*", "+@all")
    yield USER
    client.execute_command("ACL", "DELUSER", USER)


def assert_one_line(result: subprocess.CompletedProcess[str], secret: str) -> str:
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == "", result.stdout
    assert secret not in result.stderr
    return result.stderr.strip()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_reports_an_unreachable_server_in_one_line(
    command: list[str], subprocess_env: dict[str, str]
) -> None:
    port = free_port()  # bound, then closed: nothing listens there
    env = {**subprocess_env, "QRUN_URL": f"redis://app:s3cret@127.0.0.1:{port}/0"}
    line = assert_one_line(qrun(*command, env=env), "s3cret")
    assert line == f"qrun: cannot reach the server at redis://app:***@127.0.0.1:{port}/0: Connection refused"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_reports_a_wrong_password_in_one_line(
    command: list[str], subprocess_env: dict[str, str], url: str, acl_user: str
) -> None:
    server = urlsplit(url)
    wrong = f"redis://{acl_user}:wrong-password@{server.hostname}:{server.port}/0"
    line = assert_one_line(qrun(*command, env={**subprocess_env, "QRUN_URL": wrong}), "wrong-password")
    assert line.startswith(
        f"qrun: authentication failed at the server at redis://{acl_user}:***@{server.hostname}:{server.port}/0: "
    ), line


def test_the_url_option_is_the_server_named(subprocess_env: dict[str, str]) -> None:
    port = free_port()
    result = qrun("stats", "tests", "--url", f"redis://127.0.0.1:{port}/3", env=subprocess_env)
    assert assert_one_line(result, "\0") == f"qrun: cannot reach the server at redis://127.0.0.1:{port}/3: Connection refused"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_refuses_a_url_that_is_not_redis_as_a_usage_error(
    command: list[str], subprocess_env: dict[str, str]
) -> None:
    result = qrun(*command, env={**subprocess_env, "QRUN_URL": "http://127.0.0.1:6379/0"})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "must start with redis://, rediss:// or unix://" in result.stderr
