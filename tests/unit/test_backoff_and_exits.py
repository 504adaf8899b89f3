"""Pure policy: retry delays, exit descriptions, the demo's arithmetic."""

from __future__ import annotations

import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qrun.backoff import retry_delay_s
from qrun.demo import expected_outcome
from qrun.supervisor import describe_exit


def test_backoff_doubles_from_the_base_until_the_cap() -> None:
    ceilings = [retry_delay_s(attempt, 1.0, 10.0, rand=1.0) for attempt in range(1, 7)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


@given(attempt=st.integers(1, 10_000), base=st.floats(0.001, 100), rand=st.floats(0, 1))
def test_backoff_stays_within_the_upper_half_of_its_ceiling(attempt: int, base: float, rand: float) -> None:
    cap = base * 50
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 62))
    assert ceiling / 2 <= retry_delay_s(attempt, base, cap, rand) <= ceiling


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (0, "exited with status 0"),
        (3 << 8, "exited with status 3"),
        (signal.SIGKILL, "killed by SIGKILL (out of memory?)"),
        (signal.SIGSEGV, "killed by SIGSEGV"),
    ],
)
def test_worker_exits_are_described_in_plain_words(status: int, words: str) -> None:
    assert describe_exit(status) == words


def test_the_demo_expects_what_its_task_does() -> None:
    assert expected_outcome(3_000) == {"succeeded": 2_997, "retried": 36, "dead_lettered": 3}
