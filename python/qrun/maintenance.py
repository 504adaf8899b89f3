"""The supervisor's maintenance thread: the periodic work no single worker owns.

Today: promoting due delayed jobs and noticing when every queue has settled (for
``--burst``). It runs in the supervisor, never in workers; forked workers never reuse its sockets
because each queue's client is rebuilt in a new process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from redis.exceptions import RedisError, ResponseError

from . import settings
from .queue import Queue

log = logging.getLogger(__name__)


class Maintenance:
    """Runs :meth:`tick` every ``interval_s`` on a daemon thread until stopped."""

    def __init__(self, queues: Sequence[Queue], interval_s: float = settings.MAINTENANCE_INTERVAL_S) -> None:
        self.queues = list(queues)
        self.interval_s = interval_s
        #: Set once a tick saw every queue with nothing ready, in flight or delayed.
        self.idle = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self._idle_before = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="qrun-maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def tick(self) -> None:
        """One pass: promote what is due, then record whether everything has settled.

        Idle means two passes in a row saw every queue empty: one pass reads the queues one
        after another, so a job moving between them could slip past a single look.
        """
        idle = True
        for queue in self.queues:
            try:
                queue.promote_due()
                idle = queue.is_idle() and idle
            except ResponseError as error:  # a script or data error, not an outage: other queues go on
                log.error("maintenance: queue %s: %s", queue.name, error)
                idle = False
        if idle and self._idle_before:
            self.idle.set()
        elif not idle:
            self.idle.clear()
        self._idle_before = idle

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
                if self._failing:
                    log.warning("maintenance: server reachable again")
                    self._failing = False
            except RedisError as error:
                if not self._failing:  # once per outage, not once per tick
                    log.warning("maintenance: server unreachable (%s); retrying", error)
                    self._failing = True
            except Exception:  # never let the thread die silently
                log.exception("maintenance: unexpected error; continuing")
