"""qrun.logs: the JSON and text formatters, and the job fields they read from the running job."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from qrun import logs
from qrun.job import _current

ENTRY = ("{qrun:mail}:stream", "1-0", "a1b2c3", "app.send_email", ("x",), {}, 3, 1_700_000_000_000)


@pytest.fixture
def in_job() -> Iterator[None]:
    token = _current.set((SimpleNamespace(name="mail"), ENTRY))  # type: ignore[arg-type]
    yield
    _current.reset(token)


def record(message: str = "hello %s", *args: Any, level: int = logging.INFO, **extra: Any) -> logging.LogRecord:
    made = logging.getLogger("myapp").makeRecord("myapp", level, __file__, 1, message, args or ("world",), None,
                                                 extra=extra or None)
    return made


def formatted(log_record: logging.LogRecord, **options: Any) -> dict[str, Any]:
    line = logs.JsonFormatter(**options).format(log_record)
    assert "\n" not in line
    fields: dict[str, Any] = json.loads(line)
    return fields


def test_outside_a_job_a_line_has_the_base_fields_only() -> None:
    fields = formatted(record())
    assert list(fields) == ["time", "level", "logger", "message", "pid"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["time"])
    assert (fields["level"], fields["logger"], fields["message"]) == ("INFO", "myapp", "hello world")


def test_inside_a_job_a_line_names_the_job(in_job: None) -> None:
    fields = formatted(record())
    assert {key: fields[key] for key in ("job_id", "task", "queue", "attempt")} == {
        "job_id": "a1b2c3", "task": "app.send_email", "queue": "mail", "attempt": 3,
    }
    assert logs.job_fields() == {"job_id": "a1b2c3", "task": "app.send_email", "queue": "mail", "attempt": 3}


def test_an_exception_becomes_one_traceback_field_on_the_same_line() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        made = logging.getLogger("myapp").makeRecord("myapp", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    fields = formatted(made)
    assert fields["message"] == "failed"
    assert fields["traceback"].startswith("Traceback (most recent call last):")
    assert fields["traceback"].endswith("ValueError: boom\nsecond line")


def test_stack_info_is_a_field_too() -> None:
    made = record()
    made.stack_info = "Stack (most recent call last):\n  File x"
    assert formatted(made)["stack"] == "Stack (most recent call last):\n  File x"


def test_extras_are_carried_and_those_json_cannot_carry_become_their_repr() -> None:
    loop: list[Any] = []
    loop.append(loop)

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    fields = formatted(record(customer="zoë", amount=12.5, tags=["a"], when=object(), loop=loop, broken=Broken()))
    assert (fields["customer"], fields["amount"], fields["tags"]) == ("zoë", 12.5, ["a"])
    assert fields["when"].startswith("<object object at ")
    assert fields["loop"] == "[[...]]"
    assert fields["broken"] == "<unrepresentable Broken>"


def test_an_extra_cannot_overwrite_the_job_fields(in_job: None) -> None:
    fields = formatted(record(task="mine", note="kept"))
    assert (fields["task"], fields["note"]) == ("app.send_email", "kept")


def test_unicode_is_written_as_is_or_escaped_for_a_stream_that_is_not_utf8() -> None:
    made = record("café %s", "😀")
    assert '"message":"café 😀"' in logs.JsonFormatter().format(made)
    escaped = logs.JsonFormatter(ensure_ascii=True).format(made)
    assert escaped.isascii()
    assert json.loads(escaped)["message"] == "café 😀"


def test_a_lone_surrogate_does_not_break_the_line() -> None:
    line = logs.JsonFormatter().format(record("bad %s", "\udcff"))
    assert json.loads(line)["message"] == "bad \udcff"


def test_the_text_format_names_the_job_only_inside_one() -> None:
    formatter = logs.TextFormatter()
    assert re.search(r" INFO myapp: hello world$", formatter.format(record()))
    token = _current.set((SimpleNamespace(name="mail"), ENTRY))  # type: ignore[arg-type]
    try:
        assert re.search(r" INFO myapp \[job a1b2c3\]: hello world$", formatter.format(record()))
    finally:
        _current.reset(token)


@contextmanager
def bare_root() -> Iterator[logging.Logger]:
    """The root logger without handlers (pytest adds its own around each test), restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers.clear()
    yield root
    for handler in root.handlers:
        handler.close()
    root.handlers[:], root.level = saved
    logging.captureWarnings(False)


@pytest.mark.parametrize(("encoding", "ascii_only"), [("utf-8", False), ("ascii", True)])
def test_configure_json_reaches_the_users_own_loggers_in_a_job(in_job: None, encoding: str, ascii_only: bool) -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding=encoding)
    with bare_root():
        logs.configure("info", "json", stream)
        logging.getLogger("myapp.billing").info("charged %s", "zoë", extra={"customer": 7})
        logging.getLogger("myapp.billing").debug("not emitted")
    stream.flush()
    lines = stream.buffer.getvalue().decode(encoding).splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1
    assert lines[0].isascii() is ascii_only
    fields = json.loads(lines[0])
    assert (fields["logger"], fields["message"], fields["job_id"], fields["customer"]) == (
        "myapp.billing", "charged zoë", "a1b2c3", 7,
    )


def test_configure_leaves_a_configured_root_alone() -> None:
    mine = logging.NullHandler()
    with bare_root() as root:
        root.addHandler(mine)
        logs.configure("debug", "json")
        assert root.handlers == [mine]


def test_configure_refuses_an_unknown_format() -> None:
    with bare_root(), pytest.raises(ValueError, match="text, json"):
        logs.configure("info", "xml")
