"""Distributed locks on the queue's server: ``with queue.lock("report", ttl=30, wait=5): ...``

A lock is one string key, ``{prefix:queue}:lock:<name>``, set with ``SET NX PX`` to a random
token only its holder knows. Release and extend are Lua scripts that act only while the key
still holds the caller's token, so a holder whose lock expired can never delete or prolong
the lock somebody else took since. While held, a daemon thread extends the lock every
``ttl / 3`` so a long critical section keeps it; if the process dies, the lock expires after
at most ``ttl`` seconds.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from . import scripts
from .checks import seconds_setting
from .errors import ConfigurationError, LockNotAcquired
from .keys import validate_name

if TYPE_CHECKING:
    from .queue import Queue

log = logging.getLogger(__name__)

#: First pause between two tries to acquire a busy lock; it doubles up to the next constant.
FIRST_RETRY_S = 0.01
#: Longest pause between two tries to acquire a busy lock (each pause gets ±50% jitter).
MAX_RETRY_S = 0.1


class Lock:
    """A named lock shared by every process that uses the same queue (and server).

    Use it as a context manager (``with queue.lock("name"):``) or call :meth:`acquire` and
    :meth:`release`. ``ttl`` (seconds) bounds how long the lock outlives a holder that died;
    ``wait`` is how long :meth:`acquire` keeps trying before it raises
    :class:`qrun.LockNotAcquired` (``0``: one try). With ``auto_extend`` (the default) a
    daemon thread extends the lock to ``ttl`` every ``ttl / 3`` seconds while it is held.
    Locks are not re-entrant. A Lock object may be acquired again after it was released.
    """

    def __init__(
        self, queue: Queue, name: str, *, ttl: float = 30.0, wait: float = 5.0, auto_extend: bool = True
    ) -> None:
        self.name = validate_name("lock", name)
        self.ttl_s = seconds_setting("ttl", ttl, minimum=0.01)
        self.wait_s = seconds_setting("wait", wait, minimum=0.0)
        if not isinstance(auto_extend, bool):
            raise ConfigurationError(f"auto_extend must be True or False, got {auto_extend!r}")
        self.auto_extend = auto_extend
        self.queue = queue
        self.key = queue.keys.lock(self.name)
        self._token: str | None = None
        self._lost = False
        self._state = threading.Lock()  # guards _token/_lost against the extender thread
        self._stop: threading.Event | None = None
        self._extender: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "held" if self.held else "lost" if self._lost else "not held"
        return f"<qrun.Lock {self.key!r} {state}>"

    @property
    def held(self) -> bool:
        """True between a successful :meth:`acquire` and :meth:`release`, unless the lock was
        found lost (an extend came too late: it had expired)."""
        return self._token is not None and not self._lost

    @property
    def lost(self) -> bool:
        """True once an extend (automatic or not) or the release found that this holder's
        token was gone: the lock expired while held, and another process may have taken it."""
        return self._lost

    # -- acquiring -----------------------------------------------------------------------

    def acquire(self) -> Lock:
        """Take the lock, trying until ``wait`` seconds have passed; returns the lock.

        Raises :class:`qrun.LockNotAcquired` when another holder kept it all that time.
        """
        if self._token is not None:
            raise LockNotAcquired(
                f"lock {self.name!r} is already held by this Lock object and locks are not re-entrant: "
                "release it first, or take the lock once around the whole section",
                self.name,
            )
        token = os.urandom(16).hex()
        ttl_ms = _ms(self.ttl_s)
        started = time.monotonic()
        deadline = started + self.wait_s
        pause_s = FIRST_RETRY_S
        while not self.queue.redis.set(self.key, token, nx=True, px=ttl_ms):
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                raise self._not_acquired(time.monotonic() - started)
            time.sleep(min(left_s, pause_s * random.uniform(0.5, 1.5)))
            pause_s = min(pause_s * 2, MAX_RETRY_S)
        with self._state:
            self._token = token
            self._lost = False
        if self.auto_extend:
            self._start_extender(token)
        return self

    def _not_acquired(self, waited_s: float) -> LockNotAcquired:
        try:
            left_ms = int(self.queue.redis.pttl(self.key))
        except RedisError:
            left_ms = -3
        if left_ms >= 0:
            holder = f"another holder has it for {left_ms / 1000:.1f}s more (longer if it keeps extending it)"
        elif left_ms == -2:
            holder = "another holder had it and has just released it"
        else:
            holder = "another holder has it"
        tried = "after one try (wait=0)" if self.wait_s == 0 else f"within wait={self.wait_s:g}s"
        return LockNotAcquired(
            f"lock {self.name!r} ({self.key}) not acquired {tried}: {holder}. "
            "Pass a longer wait= to queue.lock(), or catch qrun.LockNotAcquired and try again later.",
            self.name,
            waited_s,
        )

    # -- holding -------------------------------------------------------------------------

    def extend(self, ttl: float | None = None) -> bool:
        """Reset the lock to expire ``ttl`` seconds from now (default: the lock's ttl; a new
        ttl also becomes the one automatic extension uses).

        Returns True when extended, False when the lock was lost (it expired; :attr:`lost`
        becomes True). Raises :class:`qrun.LockNotAcquired` if this Lock was never acquired
        or was released.
        """
        ttl_s = self.ttl_s if ttl is None else seconds_setting("ttl", ttl, minimum=0.01)
        token = self._token
        if token is None:
            raise LockNotAcquired(
                f"lock {self.name!r} is not held, so it cannot be extended: acquire it first "
                "(use `with queue.lock(...):` or lock.acquire())",
                self.name,
            )
        self.ttl_s = ttl_s
        if scripts.LOCK_EXTEND(self.queue.redis, [self.key], [token, _ms(ttl_s)]):
            return True
        self._mark_lost(token)
        return False

    def _mark_lost(self, token: str) -> None:
        with self._state:
            if self._token != token or self._lost:
                return  # released meanwhile, or already reported
            self._lost = True
        log.warning(
            "lock %r (%s) was lost: it expired before it was extended (ttl %gs), so another process "
            "may hold it now; raise ttl= if the holder can stall longer than that",
            self.name, self.key, self.ttl_s,
        )

    def _start_extender(self, token: str) -> None:
        stop = threading.Event()
        thread = threading.Thread(
            target=self._keep_alive, args=(token, stop), name=f"qrun-lock-{self.name}", daemon=True
        )
        self._stop, self._extender = stop, thread
        thread.start()

    def _keep_alive(self, token: str, stop: threading.Event) -> None:
        """Extend the lock every ttl/3 until released or lost; a server error is logged once
        per outage and retried at the next tick (the lock may still be valid)."""
        failing = False
        while not stop.wait(self.ttl_s / 3):
            try:
                extended = scripts.LOCK_EXTEND(self.queue.redis, [self.key], [token, _ms(self.ttl_s)])
            except RedisError as error:
                if not failing:
                    log.warning("lock %r: could not extend it (%s); retrying", self.name, error)
                failing = True
                continue
            failing = False
            if not extended:
                if not stop.is_set():  # not a race with release(), which deleted it on purpose
                    self._mark_lost(token)
                return

    # -- releasing -----------------------------------------------------------------------

    def release(self) -> None:
        """Give the lock up (only if this holder still has it) and stop extending it.

        Releasing a lock that expired and was taken by someone else deletes nothing and logs
        a warning; releasing a lock that is not held does nothing.
        """
        with self._state:
            token, self._token = self._token, None
            stop, thread = self._stop, self._extender
            self._stop = self._extender = None
        if stop is not None:
            stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)
        if token is None:
            return
        if not scripts.DELETE_IF_HOLDER(self.queue.redis, [self.key], [token]) and not self._lost:
            self._lost = True
            log.warning(
                "lock %r (%s) had already expired when released (ttl %gs): the section it guarded may "
                "have overlapped another holder's; raise ttl= or keep auto_extend=True",
                self.name, self.key, self.ttl_s,
            )

    def __enter__(self) -> Lock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            self.release()
        except RedisError as error:
            if exc is None:
                raise
            # Do not hide the block's own error behind a failed release: the ttl frees the lock.
            log.warning("lock %r: could not release it (%s); it expires within %gs", self.name, error, self.ttl_s)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
