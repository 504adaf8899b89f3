"""Metrics of a supervisor and its workers, for Prometheus and ``qrun top``.

Off unless ``qrun run --metrics-port PORT`` asks for them; then:

- :mod:`qrun.metrics.counts` (no third-party import): the shared-memory table the workers
  count into, one region per worker slot plus the supervisor's own, laid out before the fork
  from the app's queues and tasks (one row per (queue, task), and a ``(other)`` row per queue
  for tasks nobody declared); :class:`~qrun.metrics.counts.CountJobs`, the worker hook
  (:mod:`qrun.hooks`) that counts into it: a few integer increments and two bisects per job,
  no I/O. A worker without metrics registers no hook and pays nothing.
- :mod:`qrun.metrics.exporter` (needs ``prometheus_client``: ``pip install 'qrun[metrics]'``):
  the supervisor's ``/metrics`` endpoint; its collector reads the table, the supervisor's
  restart and reclaim counts and (cached for a second) each queue's ``Queue.stats()`` at
  scrape time.
- :mod:`qrun.metrics.top` (parses with ``prometheus_client``; ``qrun top`` draws with
  ``rich``: ``pip install 'qrun[top]'``): samples of the queues, the presence records and
  the supervisors' ``/metrics``, and the rates between two samples.
"""

from __future__ import annotations

from ..errors import ConfigurationError


class MetricsError(ConfigurationError):
    """Metrics were asked for and cannot be served: the extra is not installed, or the port
    cannot be bound. Reported as one line, before anything starts."""


def require(module: str, extra: str, what: str) -> None:
    """Raise :class:`MetricsError` naming the extra to install if ``module`` cannot be imported."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as error:
        raise MetricsError(
            f"{what} needs the {module} package, which is not installed ({error}): pip install 'qrun[{extra}]'"
        ) from None
