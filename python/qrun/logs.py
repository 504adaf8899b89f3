"""Log output of the ``qrun`` command: plain text (the default) or one JSON object per line.

Both formats name the job a record was logged in, read from ``qrun.job._current`` when the record
is formatted, so the hot path pays nothing: a worker already sets ``_current`` around every job,
and nothing here runs unless a record reaches the handler. Records a job's own code logs (any
logger that propagates to the root, e.g. ``logging.getLogger("myapp")``) carry the job too,
because the handler formats them in the job's thread, inside its context.

JSON fields: ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``, ``pid``;
inside a job ``job_id``, ``task``, ``queue``, ``attempt``; ``traceback`` and ``stack`` when the
record has them; then the record's ``extra`` fields (a value JSON cannot carry as its ``repr``).

Worker processes inherit the handler across ``fork()``: the logging module re-creates its own
locks and every handler's lock in the child (``os.register_at_fork``), and nothing here holds
a lock of its own.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from .job import _current

FORMATS = ("text", "json")

#: The text format; ``%(job)s`` is `` [job ID]`` inside a job, empty elsewhere.
TEXT_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s%(job)s: %(message)s"

#: Attributes every LogRecord has (and those formatting adds): anything else came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName", "job",
}


def job_fields() -> dict[str, Any] | None:
    """``job_id``, ``task``, ``queue`` and ``attempt`` of the job the caller runs inside, or
    None outside a job."""
    running = _current.get()
    if running is None:
        return None
    queue, entry = running
    return {"job_id": entry[2], "task": entry[3], "queue": queue.name, "attempt": entry[6]}


class TextFormatter(logging.Formatter):
    """The classic one-line text format, with `` [job ID]`` after the logger name inside a job."""

    def __init__(self, fmt: str = TEXT_FORMAT, datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (the stdlib's name)
        running = _current.get()
        record.job = "" if running is None else f" [job {running[1][2]}]"
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One compact JSON object per record, on one line (newlines in values are escaped).

    ``ensure_ascii=False`` (the default) writes non-ASCII characters as they are, for a UTF-8
    stream; True escapes them (``\\u00e9``), for a stream that cannot encode them.
    """

    def __init__(self, *, ensure_ascii: bool = False) -> None:
        super().__init__()
        self._ensure_ascii = ensure_ascii

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        job = job_fields()
        if job is not None:
            fields.update(job)
        if record.exc_info:
            if not record.exc_text:  # cached on the record, as the stdlib formatter does
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            fields["traceback"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        extras = {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES}
        for key, value in extras.items():
            fields.setdefault(key, value)  # qrun's own fields win over an extra of the same name
        try:
            return self._dumps(fields)
        except (TypeError, ValueError, RecursionError):  # an extra JSON cannot carry
            for key in extras:
                if fields[key] is extras[key]:
                    fields[key] = _carried(extras[key])
            return self._dumps(fields)

    def _dumps(self, fields: dict[str, Any]) -> str:
        return json.dumps(fields, ensure_ascii=self._ensure_ascii, separators=(",", ":"))


def _carried(value: Any) -> Any:
    """The value itself when JSON can carry it, else its ``repr`` (a formatter must not fail)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        try:
            return repr(value)
        except Exception:  # a broken __repr__
            return f"<unrepresentable {type(value).__name__}>"
    return value


def _writes_utf8(stream: TextIO) -> bool:
    encoding = getattr(stream, "encoding", None) or ""
    return encoding.lower().replace("-", "").replace("_", "") == "utf8"


def configure(level: str, log_format: str = "text", stream: TextIO | None = None) -> None:
    """Set up the root logger for the ``qrun`` command: ``level`` and one handler on ``stream``
    (stderr) in ``log_format`` (``text`` or ``json``). Like ``logging.basicConfig``, it does
    nothing to a root logger that already has handlers. In JSON mode, ``warnings`` are logged
    too, so every line of the output is JSON."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    if logging.getLogger().handlers:  # configured already (embedding code, a test runner)
        return
    target = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(target)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(ensure_ascii=not _writes_utf8(target)))
        logging.captureWarnings(True)
    else:
        handler.setFormatter(TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
