"""How long a failed job waits before its next attempt."""

from __future__ import annotations

import random


def retry_delay_s(attempt: int, base_s: float, cap_s: float, rand: float | None = None) -> float:
    """Exponential backoff with jitter for the retry after ``attempt`` failed.

    The ceiling doubles each attempt (``base_s``, ``2*base_s``, ``4*base_s`` ... up to
    ``cap_s``) and the delay is drawn from its upper half, so retries of jobs that failed
    together spread out instead of hitting a recovering dependency at the same instant.
    """
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt - 1, 62))
    fraction = random.random() if rand is None else rand
    return ceiling * (0.5 + 0.5 * fraction)
