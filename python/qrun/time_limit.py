"""The soft time limit: ``TimeLimitExceeded`` raised inside a job that runs too long.

A context manager around ``setitimer`` (sub-second precision) that restores whatever SIGALRM
handler was there before. The hard limit is not here: the supervisor enforces it from the
deadline in the worker's slot, because a job stuck in C code never sees a Python exception.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from .errors import TimeLimitExceeded


@contextmanager
def soft_time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in the calling (main) thread after ``seconds``."""
    if seconds is None:
        yield
        return

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise TimeLimitExceeded(f"ran past its soft time limit of {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
