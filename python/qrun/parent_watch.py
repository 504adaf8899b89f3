"""Tie a child process's life to its parent's: when the parent dies, the child is signalled.

A process that forks helpers (``qrun demo`` forks a supervisor and starts a valkey-server)
runs cleanup code when it exits normally, but not when it is SIGKILLed: then only the
children themselves can notice. Two ways to arrange that:

- :func:`die_with_parent` - call it in a freshly forked child (before it does any work).
  On Linux the kernel sends the signal (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon
  thread polls ``os.getppid()`` every :data:`POLL_INTERVAL_S` and signals its own process.
- :func:`pdeathsig_preexec` - a ``preexec_fn`` for :class:`subprocess.Popen`, for a program
  that is exec'd (no Python thread survives exec). Linux only; ``None`` elsewhere.

On Linux the parent-death signal fires when the *thread* that forked the child ends, not the
whole process: fork or start the child from the main thread, or from a thread that lives as
long as the process. The setting is cleared in the child's own children (a supervisor's
workers notice their supervisor is gone by themselves).

Both take the parent's pid as seen *before* the fork, so a parent that died before the
setting took effect is caught at once instead of never.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

#: How often the fallback thread (not Linux) looks at ``os.getppid()``.
POLL_INTERVAL_S = 0.5

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.restype = ctypes.c_int
    return prctl


# Resolved once, in the parent: a child between fork and exec should not dlopen anything.
_prctl = _load_prctl()


def _set_pdeathsig(signum: int) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent thread ends."""
    if _prctl is None:
        return False
    return _prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signum), 0, 0, 0) == 0


def die_with_parent(parent_pid: int, signum: int = signal.SIGTERM) -> None:
    """In a forked child: have ``signum`` delivered to this process once ``parent_pid``
    (the forking process, ``os.getpid()`` taken before the fork) is gone.

    The signal's usual handling applies: SIGTERM kills a process with no handler, and asks
    one that handles it (a :class:`~qrun.supervisor.Supervisor`) to stop gracefully.
    """
    if not _set_pdeathsig(signum):
        _watch_in_thread(parent_pid, signum)
    if os.getppid() != parent_pid:  # it died before the setting took effect
        os.kill(os.getpid(), signum)


def _watch_in_thread(parent_pid: int, signum: int, interval_s: float = POLL_INTERVAL_S) -> threading.Thread:
    """The portable fallback: a daemon thread that signals this process once reparented."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=watch, name="qrun-parent-watch", daemon=True)
    thread.start()
    return thread


def pdeathsig_preexec(signum: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes an exec'd program receive ``signum`` when the calling
    thread (its parent) ends; ``None`` where the kernel cannot do that (not Linux).

    Call it, and start the program, from the thread whose life the program should share.
    """
    if _prctl is None:
        return None
    parent_pid = os.getpid()

    def preexec() -> None:
        _set_pdeathsig(signum)
        if os.getppid() != parent_pid:  # the parent died between fork and here
            os.kill(os.getpid(), signum)

    return preexec
