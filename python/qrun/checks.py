"""Validation of numeric settings, shared by queues, tasks and the runner, so every bad
value gets the same kind of message: what was expected, and what came."""

from __future__ import annotations

import math
import re

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


#: Seconds per unit of a duration written for a person (``30s``, ``15m``, ``1h``, ``7d``).
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?")


def duration_s(text: str) -> float:
    """Seconds in a duration like ``30s``, ``15m``, ``1h``, ``7d``, ``1.5h`` or ``500ms`` (a bare
    number is seconds), else a ConfigurationError that shows the accepted forms."""
    match = _DURATION.fullmatch(text.strip().lower()) if isinstance(text, str) else None
    if match is None:
        raise ConfigurationError(
            f"invalid duration {text!r}: use a number and a unit, ms, s, m, h, d or w (e.g. 30s, 15m, 1h, 7d)"
        )
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
