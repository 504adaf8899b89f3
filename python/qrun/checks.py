"""Validation of numeric settings, shared by queues, tasks and the runner, so every bad
value gets the same kind of message: what was expected, and what came."""

from __future__ import annotations

import math

from .errors import ConfigurationError


def seconds_setting(name: str, value: object, minimum: float) -> float:
    """A finite number of seconds >= ``minimum``, else a ConfigurationError that says so."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        raise ConfigurationError(f"{name} must be a finite number of seconds >= {minimum:g}, got {value!r}")
    return float(value)


def count_setting(name: str, value: object, minimum: int) -> int:
    """An integer >= ``minimum`` (not a bool), else a ConfigurationError that says so."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value
