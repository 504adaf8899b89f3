"""Importing the user's app from a ``module:attribute`` string, with errors that say the fix."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

from .errors import ConfigurationError
from .queue import Queue


def load_queues(target: str) -> list[Queue]:
    """Import ``module:attribute`` and return the queue(s) it names.

    The attribute may be a :class:`Queue` or a list/tuple of queues. The current directory
    is importable, as it is for ``python -m``.
    """
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"{target!r} is not module:attribute, e.g. 'app:queue'")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise ConfigurationError(
                f"cannot import {module_name!r} (from {target!r}): is it on PYTHONPATH or in this directory?"
            ) from error
        raise
    try:
        value = getattr(module, attribute)
    except AttributeError:
        raise ConfigurationError(f"module {module_name!r} has no attribute {attribute!r}") from None
    queues = list(value) if isinstance(value, (list, tuple)) else [value]
    if not queues or not all(isinstance(queue, Queue) for queue in queues):
        raise ConfigurationError(f"{target!r} must name a qrun.Queue or a list of them, got {value!r}")
    return queues


class AppLoader:
    """Loads the queues of ``targets``, and loads them again from fresh code (SIGHUP).

    A reload forgets every module imported since this loader was made (the app and what it
    pulled in), so the next import reads the files as they are now.
    """

    def __init__(self, targets: Sequence[str]) -> None:
        self.targets = list(targets)
        self._modules_before = set(sys.modules)

    def load(self) -> list[Queue]:
        return [queue for target in self.targets for queue in load_queues(target)]

    def reload(self) -> list[Queue]:
        for name in set(sys.modules) - self._modules_before:
            del sys.modules[name]
        importlib.invalidate_caches()
        return self.load()
