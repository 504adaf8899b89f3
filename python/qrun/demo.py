"""The demo workload behind ``qrun demo``: a queue whose jobs mostly succeed, some only on
a second attempt, and a few never, so every path (ack, retry, dead letter) shows up."""

from __future__ import annotations

from .errors import QrunError
from .job import current_job
from .queue import Queue

#: Every n-th job fails on its first attempt and succeeds on the retry.
FLAKY_EVERY = 100

#: Every n-th job always fails and ends in the dead-letter stream.
DOOMED_EVERY = 1_000


class DemoFailure(QrunError):
    """A failure the demo causes on purpose."""


def build_demo_queue(url: str) -> Queue:
    """The demo queue with its one task, ``qrun.demo.work``, registered."""
    queue = Queue("demo", url, prefix="qrun-demo", retries=2, backoff_base=0.05, backoff_cap=0.2)

    @queue.task(name="qrun.demo.work")
    def work(n: int) -> int:
        if n % DOOMED_EVERY == 7:
            raise DemoFailure(f"job {n} always fails (on purpose)")
        job = current_job()
        if n % FLAKY_EVERY == 1 and job is not None and job.attempt == 1:
            raise DemoFailure(f"job {n} fails on its first attempt (on purpose)")
        return n * n

    return queue


def expected_outcome(jobs: int) -> dict[str, int]:
    """What the counters must read once ``jobs`` demo jobs have settled."""
    doomed = sum(1 for n in range(jobs) if n % DOOMED_EVERY == 7)
    flaky = sum(1 for n in range(jobs) if n % FLAKY_EVERY == 1 and n % DOOMED_EVERY != 7)
    return {"succeeded": jobs - doomed, "retried": flaky + 2 * doomed, "dead_lettered": doomed}
