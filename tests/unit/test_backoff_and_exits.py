"""Pure policy: retry delays, exit descriptions, the demo's arithmetic."""

from __future__ import annotations

import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qrun.backoff import retry_delay_s
from qrun.demo import expected_outcome
from qrun.supervisor import describe_exit, oom_kill_count


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
        (signal.SIGKILL, "killed by SIGKILL (another process, its own job, or the kernel's out-of-memory killer)"),
        (signal.SIGSEGV, "killed by SIGSEGV (a crash in C code (segmentation fault))"),
    ],
)
def test_worker_exits_are_described_in_plain_words(status: int, words: str) -> None:
    assert describe_exit(status) == words


def test_a_sigkill_is_called_out_of_memory_only_when_the_kernel_counted_an_oom_kill() -> None:
    assert describe_exit(signal.SIGKILL, oom_killed=True) == "killed by SIGKILL (the kernel's out-of-memory killer)"
    assert describe_exit(signal.SIGKILL, oom_killed=False, job="job j1 (app.crunch)") == (
        "killed by SIGKILL while running job j1 (app.crunch) "
        "(another process or its own job; the kernel recorded no out-of-memory kill)"
    )
    assert "out of memory" not in describe_exit(signal.SIGKILL, oom_killed=False)


def test_the_oom_kill_count_is_read_from_the_memory_cgroup_when_there_is_one() -> None:
    count = oom_kill_count()
    assert count is None or count >= 0


def test_the_demo_expects_what_its_task_does() -> None:
    assert expected_outcome(3_000) == {"succeeded": 2_997, "retried": 36, "dead_lettered": 3}
