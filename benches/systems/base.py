"""What a benchmarked system provides. qrun and each peer implement this; the harness times it.

Every system runs the same job: ``benches.marks.mark()`` (one byte appended to a per-process
file), or ``benches.marks.mark_latency(sent_at)`` for latency probes. Workers are started as
a subprocess from the repository root with ``PYTHONPATH`` set to it and ``BENCH_MARK_DIR`` and
``BENCH_URL`` in the environment; the harness stops them by process group.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class System(ABC):
    #: Name in the table.
    name: str
    #: True when enqueue_bulk uses a real bulk API of the system (one or few round trips).
    has_bulk: bool = False

    def __init__(self, url: str) -> None:
        self.url = url

    @abstractmethod
    def version(self) -> str:
        """The library's version, for the table header."""

    @abstractmethod
    def enqueue_one(self) -> None:
        """Enqueue one no-op job the way a web request would: one call, one job."""

    def enqueue_bulk(self, count: int) -> None:
        """Enqueue ``count`` no-op jobs through the system's bulk API (only if has_bulk)."""
        raise NotImplementedError

    def fill(self, count: int) -> None:
        """Put ``count`` no-op jobs on the queue as fast as the system allows (not timed)."""
        if self.has_bulk:
            self.enqueue_bulk(count)
        else:
            for _ in range(count):
                self.enqueue_one()

    @abstractmethod
    def enqueue_probe(self, sent_at: float) -> None:
        """Enqueue one latency probe job carrying ``sent_at``."""

    @abstractmethod
    def worker_command(self, workers: int) -> list[str]:
        """The command that runs ``workers`` worker processes in the system's usual production mode."""

    def result_clients(self) -> list[ResultClient]:
        """This system with results on, the way its docs set them up with Redis (for the
        ``results`` scenario); one per way of waiting the system offers, none by default."""
        return []

    def close(self) -> None:
        """Release connections."""


class ResultClient(ABC):
    """A result-enabled app of a system: its own queue, tasks and worker command, so the
    results-off rows never run with results on."""

    #: Name in the table (the system's), and what is special about this way of waiting.
    name: str
    note: str = ""

    @abstractmethod
    def worker_command(self, workers: int) -> list[str]:
        """The command that runs ``workers`` worker processes of the result-enabled app."""

    @abstractmethod
    def round_trip(self, value: int, timeout_s: float) -> object:
        """Enqueue ``echo(value)``, block (at most ``timeout_s``) through the system's result
        API until its return value is back, and return it; raise if it did not come back."""

    def close(self) -> None:
        """Release connections."""
